// EngineTransport: what the group engine needs of a transport, behind one small interface, so
// one GroupEngine runs the protocol over shm, udp and dpdk alike.
//
// Why an interface and not a template (transport.h prefers templates): the engine copies every
// record it polls and calls the Member per record, so one indirect call per burst and per peer
// is noise beside that; and one engine binary serves every transport the process chooses at
// start. The record loops inside each transport stay templates and inline.
//
// Threads: in shared mode one thread calls everything. In dedicated mode the control thread
// owns send_control(), poll_control() and beat(), the data thread the rest: the transports
// keep those two sets apart (udp_transport.h, dpdk_transport.h; shm's control socket and its
// heartbeat counter touch no data-path state), and nothing here adds state shared by both.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "membership/protocol/types.h"
#include "runtime/idle.h"
#include "runtime/result.h"
#include "transport/log/log.h"
#include "transport/transport.h"

namespace cohort::transport::shm {
struct ShmOptions;
}
namespace cohort::transport::udp {
struct UdpOptions;
}
namespace cohort::transport::dpdk {
struct DpdkOptions;
}
namespace cohort::transport::rdma {
struct RdmaOptions;
}

namespace cohort::membership {

class EngineTransport {
 public:
  virtual ~EngineTransport() = default;

  virtual const char* kind() const noexcept = 0;  // "shm", "udp", "dpdk"
  virtual NodeId self() const noexcept = 0;
  virtual uint32_t members() const noexcept = 0;

  // --- data path ---------------------------------------------------------------------------
  virtual transport::LogWriter& publication() noexcept = 0;
  // Up to max records of `peer`'s log, valid until release(peer); 0 for a peer not read.
  virtual uint32_t poll_records(NodeId peer, transport::RecordView* out, uint32_t max) noexcept = 0;
  virtual void release(NodeId peer) noexcept = 0;
  // Datagram transports: receive a burst (before the logs are read) and send what is due
  // (after the appends). Shared memory receives nothing; its flush rings the doorbells of the
  // peers parked on our log, and returns 0 (ringing is not work for the idle policy).
  virtual uint32_t receive(TimeNs now) noexcept {
    (void)now;
    return 0;
  }
  virtual uint32_t flush(TimeNs now) noexcept {
    (void)now;
    return 0;
  }
  // A word in shared memory that peers bump, after they append to a log this member reads, to
  // end the park of its data loop: the loop's Waker binds to it (GroupEngine::set_waker). shm
  // only (its doorbell, transport/NOTES.md); nullptr elsewhere.
  virtual WakeWord* doorbell() noexcept { return nullptr; }
  // The one-hop order counter (protocol/types.h, TicketCounter) where every member shares
  // memory (shm), with `incarnation` (this member's, in the protocol) stored as its owner; nullptr
  // where the transport has none (the sequencer orders).
  virtual TicketCounter* ticket_counter(uint32_t incarnation) noexcept {
    (void)incarnation;
    return nullptr;
  }
  // A view was installed: stop counting departed peers against the writer, and (shm) attach
  // joiners before anything of the view is appended. `in_view` has bit n set for node n.
  virtual void on_install(uint32_t in_view) noexcept = 0;

  // --- control path ------------------------------------------------------------------------
  virtual transport::SendStatus send_control(NodeId to,
                                             std::span<const std::byte> bytes) noexcept = 0;
  virtual uint32_t poll_control(transport::ControlMessage* out, uint32_t max) noexcept = 0;
  // This member's liveness signal, every millisecond (shm: a counter in its control page).
  virtual void beat() noexcept {}
  // Data path, every 20 ms: looks for new peers (shm: attaches their files) and returns, as a
  // bit set, the peers the transport itself saw fail since the last call (shm: the peer's
  // process died, SIGKILL included, or was replaced). Transports that cannot see that return
  // 0 and leave detection to the protocol's heartbeats.
  virtual uint32_t maintain(TimeNs now) noexcept = 0;

  // One line of counters for logs (control path: it allocates).
  virtual std::string describe() const = 0;
};

// The transports the engine runs on. Each error names the option to fix.
Result<std::unique_ptr<EngineTransport>> make_shm_engine_transport(
    const transport::shm::ShmOptions& options);
Result<std::unique_ptr<EngineTransport>> make_udp_engine_transport(
    const transport::udp::UdpOptions& options);
// Built only with DPDK (meson option 'dpdk'); COHORT_HAVE_DPDK in cohort_build_config.h.
Result<std::unique_ptr<EngineTransport>> make_dpdk_engine_transport(
    const transport::dpdk::DpdkOptions& options);
// Built only with libibverbs (meson option 'rdma'); COHORT_HAVE_RDMA.
Result<std::unique_ptr<EngineTransport>> make_rdma_engine_transport(
    const transport::rdma::RdmaOptions& options);

}  // namespace cohort::membership
