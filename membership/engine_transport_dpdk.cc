// Built only with DPDK (membership/meson.build).
#include "membership/engine_transport.h"
#include "membership/engine_transport_dgram.h"
#include "transport/dpdk/dpdk_transport.h"

namespace cohort::membership {

Result<std::unique_ptr<EngineTransport>> make_dpdk_engine_transport(
    const transport::dpdk::DpdkOptions& options) {
  auto t = transport::dpdk::DpdkTransport::create(options);
  if (!t.ok()) return std::move(t).error();
  return std::unique_ptr<EngineTransport>(
      std::make_unique<DgramEngineTransport<transport::dpdk::DpdkTransport>>(std::move(*t),
                                                                            "dpdk"));
}

}  // namespace cohort::membership
