// The udp rows of bench_transport: two members on 127.0.0.1. Kernel UDP costs a system call
// per burst each way, so these figures sit beside shm's as the price of leaving the host.
#include "bench/transport/udp_bench.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "bench/transport/dgram_bench.h"
#include "transport/udp/udp_transport.h"

namespace cohort::bench {
namespace {

using transport::udp::UdpOptions;
using transport::udp::UdpTransport;

struct UdpPair {
  std::unique_ptr<UdpTransport> a;
  std::unique_ptr<UdpTransport> b;
};

UdpPair make_udp_pair(uint64_t log_bytes) {
  // Ports from the pid, so two runs side by side do not collide; each member takes two.
  const int base = 20000 + static_cast<int>(getpid() % 20000) * 2;
  UdpOptions o;
  o.members = {"127.0.0.1:" + std::to_string(base), "127.0.0.1:" + std::to_string(base + 2)};
  o.group = "bench";
  o.log_bytes = log_bytes;
  o.self = 0;
  auto a = UdpTransport::create(o);
  o.self = 1;
  auto b = UdpTransport::create(o);
  if (!a.ok() || !b.ok()) {
    std::fprintf(stderr, "bench_transport: %s\n",
                 (!a.ok() ? a.error() : b.error()).message().c_str());
    std::exit(1);
  }
  return UdpPair{std::move(*a), std::move(*b)};
}

}  // namespace

void udp_latency(int round_trips) {
  dgram_latency<UdpTransport>("udp", round_trips, make_udp_pair);
}
void udp_throughput() {
  dgram_throughput<UdpTransport>("udp", make_udp_pair);
}

}  // namespace cohort::bench
