// The command-line options of a transport that the member programs of the integration tests
// share (udp_member, dpdk_member, rdma_member, shm_member, shm_dynamic_member): one parser, so
// that every program reads them alike. A program tries its own options when this one says no.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "transport/transport.h"

namespace cohort::testing {

// Parses one option `key` with value `v` into a transport's options `o` (UdpOptions,
// DpdkOptions, RdmaOptions, ShmOptions): --members (a comma-separated list of addresses, or
// for shm the number of slots), --self, --group, --log-bytes, and those the options have:
// --dir (shm), --mtu and the fault decorator's --loss, --dup, --reorder, --delay and
// --fault-seed (udp, dpdk). Returns false when `key` is none of them.
template <typename Options>
bool parse_transport_option(const std::string& key, const char* v, Options* o) {
  if (key == "--members") {
    if constexpr (std::is_integral_v<decltype(o->members)>) {
      o->members = static_cast<decltype(o->members)>(std::strtoul(v, nullptr, 10));
    } else {
      const std::string s = v;
      for (size_t start = 0; start <= s.size();) {
        const size_t comma = s.find(',', start);
        const size_t end = comma == std::string::npos ? s.size() : comma;
        o->members.push_back(s.substr(start, end - start));
        start = end + 1;
      }
    }
    return true;
  }
  if (key == "--self") {
    o->self = static_cast<cohort::transport::MemberId>(std::strtoul(v, nullptr, 10));
    return true;
  }
  if (key == "--group") {
    o->group = v;
    return true;
  }
  if (key == "--log-bytes") {
    o->log_bytes = std::strtoull(v, nullptr, 10);
    return true;
  }
  if constexpr (requires(Options & x) { x.dir; }) {
    if (key == "--dir") {
      o->dir = v;
      return true;
    }
  }
  if constexpr (requires(Options & x) { x.mtu_payload; }) {
    if (key == "--mtu") {
      o->mtu_payload = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
      return true;
    }
  }
  if constexpr (requires(Options & x) { x.fault; }) {
    if (key == "--loss") {
      o->fault.drop_rate = std::strtod(v, nullptr);
    } else if (key == "--dup") {
      o->fault.duplicate_rate = std::strtod(v, nullptr);
    } else if (key == "--reorder") {
      o->fault.reorder_rate = std::strtod(v, nullptr);
    } else if (key == "--delay") {
      o->fault.delay_rate = std::strtod(v, nullptr);
    } else if (key == "--fault-seed") {
      o->fault.seed = std::strtoull(v, nullptr, 10);
    } else {
      return false;
    }
    return true;
  }
  return false;
}

}  // namespace cohort::testing
