// The dpdk rows of bench_transport: two members over net_memif in this one process (a memif
// server port and a client port on one socket, each member on its own port and thread).
// Every frame crosses the memif rings in shared memory: the DPDK path without a NIC.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "bench/transport/dgram_bench.h"
#include "bench/transport/udp_bench.h"
#include "transport/dpdk/dpdk_transport.h"

namespace cohort::bench {
namespace {

using transport::dpdk::DpdkOptions;
using transport::dpdk::DpdkTransport;

struct DpdkPair {
  DpdkTransport* a;
  DpdkTransport* b;
};

// The EAL starts once per process and a port closed by a transport's destructor cannot be
// probed again, so one pair (8 MiB logs) serves every run of the process: each run starts
// where the last left its logs, drained.
const std::string& memif_socket() {
  static const std::string path = "/tmp/cohort-bench-memif-" + std::to_string(getpid());
  return path;
}
const std::string& eal_prefix() {
  static const std::string prefix = "cohort-bench-" + std::to_string(getpid());
  return prefix;
}
// Leaves nothing behind: the memif socket and the EAL's (empty, with --no-shconf) folder.
void remove_leftovers() {
  unlink(memif_socket().c_str());
  rmdir(("/var/run/dpdk/" + eal_prefix()).c_str());
}

DpdkPair make_dpdk_pair(uint64_t /*log_bytes*/) {
  static DpdkPair pair = [] {
    const std::string& socket = memif_socket();
    const std::string& prefix = eal_prefix();
    std::atexit(remove_leftovers);
    DpdkOptions o;
    o.eal_args = {"--no-huge",
                  "--no-pci",
                  "-m",
                  "512",
                  "--no-shconf",
                  "--file-prefix",
                  prefix,
                  "--vdev=net_memif0,role=server,id=0,socket=" + socket,
                  "--vdev=net_memif1,role=client,id=0,socket=" + socket,
                  "--log-level=3"};
    o.members = {"10.203.0.1:7000", "10.203.0.2:7000"};
    o.group = "bench";
    o.log_bytes = uint64_t{8} << 20;
    // The client port starts after the server's create(), so neither waits for its link: the
    // first frames are lost until it is up, and the engine's NACKs repair them.
    o.link_wait_ms = 0;
    o.self = 0;
    o.port_index = 0;
    auto a = DpdkTransport::create(o);
    o.self = 1;
    o.port_index = 1;
    auto b = DpdkTransport::create(o);
    if (!a.ok() || !b.ok()) {
      std::fprintf(stderr, "bench_transport: %s\n",
                   (!a.ok() ? a.error() : b.error()).message().c_str());
      std::exit(1);
    }
    return DpdkPair{a->release(), b->release()};  // kept for the life of the process
  }();
  return pair;
}

}  // namespace

void dpdk_latency(int round_trips) {
  dgram_latency<DpdkTransport>("dpdk", round_trips, make_dpdk_pair);
}
void dpdk_throughput() {
  dgram_throughput<DpdkTransport>("dpdk", make_dpdk_pair);
}

}  // namespace cohort::bench
