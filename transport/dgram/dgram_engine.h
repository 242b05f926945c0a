// DgramEngine: a DgramLog connected to a datagram port. It is a template over the port, as
// eRPC's Rpc is over its transport, so the port costs no indirect call; the udp transport and
// the tests instantiate it with their ports, and the dpdk transport will with its own, sending
// exactly the same frames.
//
// The caller reads its clock once per loop iteration and passes it to poll() and flush();
// nothing here reads a clock. One thread (the data core) calls everything, the application's
// log operations included.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include "runtime/result.h"
#include "transport/dgram/dgram_log.h"
#include "transport/dgram/port.h"

namespace cohort::transport::dgram {

// Datagrams received and processed per poll(): a burst, as DPDK's rx bursts.
inline constexpr uint32_t kRxBurst = 64;

template <DatagramPort Port>
class DgramEngine {
 public:
  // `port` is not owned and must outlive the engine.
  static Result<DgramEngine> create(const DgramOptions& options, Port* port) {
    COHORT_ASSERT(port != nullptr);
    auto log = DgramLog::create(options);
    if (!log.ok()) return std::move(log).error();
    return DgramEngine(port, std::move(log).value());
  }

  // Receives up to a burst of datagrams and processes them; returns how many arrived.
  uint32_t poll(uint64_t now_ns) noexcept {
    RxDatagram rx[kRxBurst];
    const uint32_t n = port_->recv_burst(rx, kRxBurst, now_ns);
    for (uint32_t i = 0; i < n; ++i) log_->on_datagram(rx[i].from, rx[i].bytes, now_ns);
    return n;
  }

  // Sends what is due: status and NACKs for the peers' logs, repairs, newly committed bytes of
  // ours, the heartbeat. Call once per loop iteration, after the application's commits. Returns
  // how many datagrams the port took. The port is called even with nothing to send, so a
  // decorator that holds datagrams back can release them.
  uint32_t flush(uint64_t now_ns) noexcept {
    const std::span<const TxDatagram> tx = log_->prepare_tx(now_ns);
    const uint32_t accepted =
        port_->send_burst(tx.data(), static_cast<uint32_t>(tx.size()), now_ns);
    log_->on_sent(accepted);
    return accepted;
  }

  LogWriter& publication() noexcept { return log_->publication(); }
  ReplicaSubscription* subscription(MemberId peer) noexcept { return log_->subscription(peer); }
  void declare_gone(MemberId peer) noexcept { log_->declare_gone(peer); }
  DgramLog& log() noexcept { return *log_; }
  const DgramLog& log() const noexcept { return *log_; }
  Port& port() noexcept { return *port_; }

 private:
  DgramEngine(Port* port, std::unique_ptr<DgramLog> log) noexcept
      : port_(port), log_(std::move(log)) {}

  Port* port_;
  std::unique_ptr<DgramLog> log_;
};

}  // namespace cohort::transport::dgram
