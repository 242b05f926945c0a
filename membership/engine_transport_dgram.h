// The engine's adapter for the replicated-log transports (udp, dpdk, rdma): they read peers'
// logs through transport/dgram's replica subscriptions and have the same data and control
// calls, so one template serves them.
// Internal to membership/ (engine_transport.cc, engine_transport_dpdk.cc).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "membership/engine_transport.h"

namespace cohort::membership {

template <typename T>
class DgramEngineTransport final : public EngineTransport {
 public:
  DgramEngineTransport(std::unique_ptr<T> t, const char* kind) : t_(std::move(t)), kind_(kind) {}

  const char* kind() const noexcept override { return kind_; }
  NodeId self() const noexcept override { return t_->self(); }
  uint32_t members() const noexcept override { return t_->members(); }

  transport::LogWriter& publication() noexcept override { return t_->publication(); }
  uint32_t poll_records(NodeId peer, transport::RecordView* out, uint32_t max) noexcept override {
    auto* sub = t_->subscription(peer);
    return sub == nullptr ? 0 : sub->poll(out, max);
  }
  void release(NodeId peer) noexcept override {
    if (auto* sub = t_->subscription(peer); sub != nullptr) sub->release();
  }
  // A few bursts, so a busy peer's frames do not wait a whole loop iteration each.
  uint32_t receive(TimeNs now) noexcept override {
    uint32_t got = 0;
    for (int i = 0; i < 4; ++i) {
      const uint32_t n = t_->poll(now);
      got += n;
      if (n == 0) break;
    }
    return got;
  }
  uint32_t flush(TimeNs now) noexcept override { return t_->flush(now); }
  // The member list is fixed at start (addresses): a peer that leaves a view it was in is
  // declared gone for good, so it stops holding our writer back. A peer never yet in a view
  // (still joining) is not: its log is read from 0 once it starts.
  void on_install(uint32_t in_view) noexcept override {
    const uint32_t departed = was_in_view_ & ~in_view;
    for (NodeId n = 0; n < t_->members(); ++n) {
      if (n != t_->self() && (departed >> n & 1U) != 0) t_->declare_gone(n);
    }
    was_in_view_ |= in_view;
    was_in_view_ &= ~departed;
  }

  transport::SendStatus send_control(NodeId to,
                                     std::span<const std::byte> bytes) noexcept override {
    return t_->send_control(to, bytes);
  }
  uint32_t poll_control(transport::ControlMessage* out, uint32_t max) noexcept override {
    return t_->poll_control(out, max);
  }
  // udp and dpdk have no liveness signal of their own (the protocol's heartbeats detect
  // failures); rdma sees a peer's TCP connection close when its process dies, SIGKILL
  // included, and reports it here.
  uint32_t maintain(TimeNs now) noexcept override {
    (void)now;
    if constexpr (requires(T & t) { t.take_failed(); }) {
      return t_->take_failed();
    } else {
      return 0;
    }
  }
  std::string describe() const override { return t_->describe(); }

  T& transport() noexcept { return *t_; }

 private:
  std::unique_ptr<T> t_;
  const char* kind_;
  uint32_t was_in_view_ = 0;
};

}  // namespace cohort::membership
