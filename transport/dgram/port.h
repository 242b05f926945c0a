// The datagram port: the seam between the reliable log engine (dgram_engine.h) and whatever
// carries datagrams: kernel UDP sockets (transport/udp), DPDK queues (later), the in-memory
// network of the tests (memory_port.h), and the fault-injecting decorator over any of them
// (transport/fault). A port knows addresses; the engine knows only member ids.
//
// A port moves bursts and never blocks: send_burst() and recv_burst() return counts, as DPDK's
// rte_eth_tx_burst and rte_eth_rx_burst do, so the engine makes one call per burst, not per
// datagram. Both take the loop's clock reading, because a decorator that delays datagrams needs
// time and the engine never reads a clock itself (tests drive it with a fake one).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include "transport/transport.h"

namespace cohort::transport::dgram {

// The sender of a received datagram whose source address is not a member's.
inline constexpr MemberId kUnknownPeer = ~MemberId{0};

// The most datagrams one send_burst() is handed (a decorator sizes its buffers by it).
inline constexpr uint32_t kMaxTxBurst = 4096;

// A datagram to send: `bytes` stay owned by the caller, and the port is done with them when
// send_burst() returns (it copied them into the kernel, an mbuf or a queue).
struct TxDatagram {
  MemberId to;
  std::span<const std::byte> bytes;
};

// A received datagram: `bytes` belong to the port and stay valid until its next recv_burst().
// `from` is the member whose address sent it, or kUnknownPeer.
struct RxDatagram {
  MemberId from;
  std::span<const std::byte> bytes;
};

// send_burst(tx, n, now_ns): consumes datagrams in order and returns how many it consumed, each
//   either sent or dropped for a reason the port counts; it stops early only when the device or
//   the kernel has no room now (the caller keeps the rest and tries again on its next flush).
// recv_burst(rx, max, now_ns): fills up to max datagrams and returns how many.
template <typename P>
concept DatagramPort = requires(P p, const TxDatagram* tx, RxDatagram* rx, uint32_t n,
                                uint64_t now_ns) {
  { p.send_burst(tx, n, now_ns) }
  noexcept->std::same_as<uint32_t>;
  { p.recv_burst(rx, n, now_ns) }
  noexcept->std::same_as<uint32_t>;
};

}  // namespace cohort::transport::dgram
