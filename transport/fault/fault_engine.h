// The reliable log engine behind the fault decorator, built as the udp and dpdk transports run
// it over their datagram port: one place for what both set up the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "runtime/log.h"
#include "runtime/result.h"
#include "transport/dgram/dgram_engine.h"
#include "transport/fault/fault_port.h"
#include "transport/wire/frame.h"

namespace cohort::transport::fault {

// Emplaces into `fault_port` the decorator over `port` with `o.fault` (it holds whole frames
// of o.mtu_payload), logs its seed when it injects anything, and emplaces into `engine` the
// engine of `o`'s log over it. `name` ("udp", "dpdk") starts the errors and the log line.
// Options: UdpOptions, DpdkOptions. Control path, at create().
template <typename Options, typename Inner>
Status start_engine_behind_faults(const char* name, const Options& o, uint64_t group_id,
                                  Inner* port, std::optional<FaultPort<Inner>>* fault_port,
                                  std::optional<dgram::DgramEngine<FaultPort<Inner>>>* engine) {
  const std::string prefix = std::string(name) + ": ";
  FaultOptions f = o.fault;
  // The decorator holds whole frames.
  f.max_datagram_bytes = static_cast<uint32_t>(wire::frame_size(o.mtu_payload));
  auto fp = FaultPort<Inner>::create(port, f);
  if (!fp.ok()) return std::move(fp).error().with_context(prefix);
  fault_port->emplace(std::move(fp).value());
  if ((*fault_port)->injector().enabled()) {
    COHORT_LOG_INFO("{}: member {} injects faults with seed {} (replay with fault.seed)", name,
                    o.self, (*fault_port)->injector().seed());
  }

  dgram::DgramOptions d;
  d.group_id = group_id;
  d.self = o.self;
  d.members = static_cast<uint32_t>(o.members.size());
  d.log_bytes = o.log_bytes;
  d.mtu_payload = o.mtu_payload;
  d.timers = o.timers;
  auto e = dgram::DgramEngine<FaultPort<Inner>>::create(d, &**fault_port);
  if (!e.ok()) return std::move(e).error().with_context(prefix);
  engine->emplace(std::move(e).value());
  return {};
}

}  // namespace cohort::transport::fault
