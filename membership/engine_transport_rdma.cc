// Built only with libibverbs (membership/meson.build).
#include "membership/engine_transport.h"
#include "membership/engine_transport_dgram.h"
#include "transport/rdma/rdma_transport.h"

namespace cohort::membership {

Result<std::unique_ptr<EngineTransport>> make_rdma_engine_transport(
    const transport::rdma::RdmaOptions& options) {
  auto t = transport::rdma::RdmaTransport::create(options);
  if (!t.ok()) return std::move(t).error();
  return std::unique_ptr<EngineTransport>(
      std::make_unique<DgramEngineTransport<transport::rdma::RdmaTransport>>(std::move(*t),
                                                                             "rdma"));
}

}  // namespace cohort::membership
