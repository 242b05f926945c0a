// The loop of a member process of the datagram transport tests (udp_member, dpdk_member,
// rdma_member):
// it writes its records, reads every peer's, checks each one (test_records.h), declares
// silent peers gone, and backs off when idle, over any transport built on the dgram engine.
// With --control N, a second thread plays the control core: it sends N control datagrams to
// every peer through send_control() and checks every one poll_control() hands it
// (ControlExchange below), while the loop above keeps polling and flushing the data path.
#pragma once

#include <sched.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "runtime/idle.h"
#include "tests/integration/member_options.h"
#include "tests/integration/test_records.h"
#include "transport/dgram/dgram_engine.h"
#include "transport/transport.h"

namespace cohort::testing {

using namespace cohort::transport;

// What a member does, from its command line.
struct MemberSettings {
  uint64_t records = 0;            // records each writer writes
  uint32_t writers = kMaxMembers;  // members below this id write; the rest only read
  uint64_t silence_gone_ms = 0;    // a peer silent this long is declared gone (0: never)
  uint64_t deadline_s = 50;        // give up (exit 4) after this long
  uint64_t slow_ns = 0;            // busy delay per record read: a slower reader
  uint64_t control = 0;            // control datagrams to send to each peer (0: no control thread)
};

// Parses the options every datagram member takes: the transport's (member_options.h: members,
// self, group, log size, and where the options have them the MTU and the fault decorator's rates
// and seed) into `o` (UdpOptions, DpdkOptions, RdmaOptions), and the MemberSettings. Returns
// false when `key` is not one of them, so the program tries its own.
template <typename Options>
bool parse_member_option(const std::string& key, const char* v, Options* o, MemberSettings* m) {
  if (parse_transport_option(key, v, o)) return true;
  if (key == "--records") {
    m->records = std::strtoull(v, nullptr, 10);
  } else if (key == "--writers") {
    m->writers = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
  } else if (key == "--silence-gone-ms") {
    m->silence_gone_ms = std::strtoull(v, nullptr, 10);
  } else if (key == "--deadline-s") {
    m->deadline_s = std::strtoull(v, nullptr, 10);
  } else if (key == "--slow-ns") {
    m->slow_ns = std::strtoull(v, nullptr, 10);
  } else if (key == "--control") {
    m->control = std::strtoull(v, nullptr, 10);
  } else {
    return false;
  }
  return true;
}

// A datagram member program's command line: `--key value` pairs, each one of
// parse_member_option's or one of the program's own, which `own(key, value)` parses (false for
// a key it does not know). False when a value is missing, a key is unknown, or no member was
// named, so the program prints its usage.
template <typename Options, typename Own>
bool parse_member_args(int argc, char** argv, Options* o, MemberSettings* m, Own&& own) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    if (!parse_member_option(k, v, o, m) && !own(k, v)) return false;
  }
  return !o->members.empty();
}

// The counters of the fault decorator and of the log's repair, machine-readable, for the
// totals of the tests (transports with a FaultPort: udp, dpdk).
template <typename Transport>
void print_fault_counts(const Transport& t) {
  const auto& s = t.log().stats();
  const auto& f = t.faults().stats();
  std::printf(
      "counts dropped %lu duplicated %lu reordered %lu delayed %lu nacks_sent %lu "
      "nacks_served %lu repair_frames %lu duplicates_dropped %lu\n",
      static_cast<unsigned long>(f.dropped), static_cast<unsigned long>(f.duplicated),
      static_cast<unsigned long>(f.reordered), static_cast<unsigned long>(f.delayed),
      static_cast<unsigned long>(s.tx_nacks), static_cast<unsigned long>(s.rx_nacks),
      static_cast<unsigned long>(s.tx_repair_frames), static_cast<unsigned long>(s.rx_duplicate));
}

inline uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// The control core of a member process: sends `count` control datagrams to every peer, one
// round every millisecond, and checks every datagram poll_control() hands out. Datagram i of
// sender w is kSizes[i % 6] bytes: (w, i) and a pattern of both, so a damaged, misattributed,
// duplicated or reordered one is seen. The sizes straddle the frame: 1424 bytes is the
// largest control datagram in one 1500-byte IPv4 packet (20 + 8 + 48 + 1424), 1425 the smallest
// in two fragments, 8192 (kMaxControlBytes) takes six.
//
// It starts sending once the data loop has heard every peer (so each side knows the other's
// MAC and is running) and is done when it has sent everything and received everything, or
// two seconds after the last datagram came once its own are sent. It prints one line per
// peer: "control from P received K of N bad B duplicate D reordered R fragmented F largest L"
// (F: those over 1424 bytes, L: those of kMaxControlBytes).
template <typename Transport>
class ControlExchange {
 public:
  static constexpr uint32_t kSizes[6] = {16, 600, 1424, 1425, 4000, kMaxControlBytes};

  ControlExchange(uint64_t count, Transport* t)
      : count_(count), t_(*t), self_(t->self()), seen_(kMaxMembers) {
    for (MemberId p = 0; p < t_.members(); ++p) seen_[p].assign(count, false);
  }

  // The data loop: every peer has been heard from; sending may start.
  void peers_heard() { heard_.store(true, std::memory_order_release); }
  bool done() const { return done_.load(std::memory_order_acquire); }
  // The data loop ended: stop now, reporting what came.
  void stop() { stop_.store(true, std::memory_order_release); }

  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  static uint32_t size_of(uint64_t i) { return kSizes[i % 6]; }
  static std::byte byte_at(MemberId w, uint64_t i, uint32_t k) {
    return std::byte{static_cast<uint8_t>(i * 13 + k * 5 + w * 101)};
  }

  void run() {
    while (!heard_.load(std::memory_order_acquire) && !stop_.load(std::memory_order_acquire)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    uint64_t last_rx_ns = now_ns();
    uint64_t sent_all_ns = 0;
    while (!stop_.load(std::memory_order_acquire)) {
      receive(&last_rx_ns);
      send_round();
      const uint64_t now = now_ns();
      if (next_ == count_ && sent_all_ns == 0) sent_all_ns = now;
      if (sent_all_ns != 0 && (received_all() || (now - sent_all_ns > 2'000'000'000 &&
                                                  now - last_rx_ns > 2'000'000'000))) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    report();
    done_.store(true, std::memory_order_release);
  }

  // One datagram to every peer, the next index; a peer that would block gets it next round.
  void send_round() {
    if (next_ == count_) return;
    const uint32_t n = size_of(next_);
    std::byte buf[kMaxControlBytes];
    const uint64_t head[2] = {self_, next_};
    std::memcpy(buf, head, sizeof head);
    for (uint32_t k = 16; k < n; ++k) buf[k] = byte_at(self_, next_, k);
    bool all = true;
    for (MemberId p = 0; p < t_.members(); ++p) {
      if (p == self_ || sent_to_[p] > next_) continue;
      const SendStatus st = t_.send_control(p, std::span<const std::byte>(buf, n));
      if (st == SendStatus::kWouldBlock) {
        ++would_block_;
        all = false;
        continue;
      }
      if (st != SendStatus::kOk) ++not_sent_;
      sent_to_[p] = next_ + 1;
    }
    if (all) ++next_;
  }

  void receive(uint64_t* last_rx_ns) {
    ControlMessage msgs[32];
    for (;;) {
      const uint32_t n = t_.poll_control(msgs, 32);
      for (uint32_t i = 0; i < n; ++i) check(msgs[i]);
      if (n != 0) *last_rx_ns = now_ns();
      if (n < 32) return;
    }
  }

  void check(const ControlMessage& m) {
    if (m.from >= t_.members() || m.from == self_ || m.bytes.size() < 16) {
      ++bad_[m.from < kMaxMembers ? m.from : 0];
      return;
    }
    uint64_t head[2];
    std::memcpy(head, m.bytes.data(), sizeof head);
    const uint64_t i = head[1];
    bool ok = head[0] == m.from && i < count_ && m.bytes.size() == size_of(i);
    for (uint32_t k = 16; ok && k < m.bytes.size(); ++k) ok = m.bytes[k] == byte_at(m.from, i, k);
    if (!ok) {
      ++bad_[m.from];
      return;
    }
    if (seen_[m.from][i]) {
      ++duplicate_[m.from];
      return;
    }
    seen_[m.from][i] = true;
    if (received_[m.from] != 0 && i < last_[m.from]) ++reordered_[m.from];
    last_[m.from] = i;
    ++received_[m.from];
    if (m.bytes.size() > 1424) ++fragmented_[m.from];
    if (m.bytes.size() == kMaxControlBytes) ++largest_[m.from];
  }

  bool received_all() const {
    for (MemberId p = 0; p < t_.members(); ++p) {
      if (p != self_ && received_[p] != count_) return false;
    }
    return true;
  }

  void report() const {
    for (MemberId p = 0; p < t_.members(); ++p) {
      if (p == self_) continue;
      std::printf(
          "control from %u received %lu of %lu bad %lu duplicate %lu reordered %lu fragmented "
          "%lu largest %lu\n",
          p, static_cast<unsigned long>(received_[p]), static_cast<unsigned long>(count_),
          static_cast<unsigned long>(bad_[p]), static_cast<unsigned long>(duplicate_[p]),
          static_cast<unsigned long>(reordered_[p]), static_cast<unsigned long>(fragmented_[p]),
          static_cast<unsigned long>(largest_[p]));
    }
    std::printf("control sent %lu rounds would_block %lu not_sent %lu\n",
                static_cast<unsigned long>(next_), static_cast<unsigned long>(would_block_),
                static_cast<unsigned long>(not_sent_));
  }

  const uint64_t count_;
  Transport& t_;
  const MemberId self_;
  std::thread thread_;
  std::atomic<bool> heard_{false};
  std::atomic<bool> done_{false};
  std::atomic<bool> stop_{false};
  // The control thread's alone.
  uint64_t next_ = 0;  // the index being sent
  uint64_t sent_to_[kMaxMembers] = {};
  uint64_t would_block_ = 0;
  uint64_t not_sent_ = 0;
  std::vector<std::vector<bool>> seen_;
  uint64_t received_[kMaxMembers] = {};
  uint64_t last_[kMaxMembers] = {};
  uint64_t bad_[kMaxMembers] = {};
  uint64_t duplicate_[kMaxMembers] = {};
  uint64_t reordered_[kMaxMembers] = {};
  uint64_t fragmented_[kMaxMembers] = {};
  uint64_t largest_[kMaxMembers] = {};
};

// One member's loop state: what it wrote, what it read of each peer, and its checks.
template <typename Transport>
class DgramMember {
 public:
  DgramMember(const MemberSettings& a, const RecordPattern& records, Transport* t)
      : a_(a), records_(records), t_(*t), self_(t->self()), control_(a.control, t) {
    to_write_ = self_ < a.writers ? a.records : 0;
    for (MemberId p = 0; p < t_.members(); ++p) expect_[p] = p < a.writers ? a.records : 0;
    done_with_[self_] = true;
    start_ns_ = now_ns();
  }

  // The loop: receive, read, write, send, liveness, until done (0) or an error (its code).
  // The control thread, if any, runs beside it and is joined before this returns.
  int run() {
    if (a_.control != 0) control_.start();
    const int code = loop();
    if (a_.control != 0) {
      control_.stop();  // already done, unless the loop failed: then it reports what it got
      control_.join();
    }
    return code;
  }

  // The common lines of the closing report; each program adds its transport's counters.
  void report() const {
    std::printf("done wrote %lu errors %lu back_pressure %lu\n",
                static_cast<unsigned long>(written_), static_cast<unsigned long>(errors_),
                static_cast<unsigned long>(t_.publication().stats().back_pressure));
    std::printf("summary member %u: %s\n", self_, t_.describe().c_str());
  }

 private:
  int loop() {
    cohort::IdleOptions idle_options;
    idle_options.max_park_ns = 200'000;
    cohort::IdleStrategy idle(idle_options);
    const uint64_t deadline_ns = start_ns_ + a_.deadline_s * 1'000'000'000ull;
    for (;;) {
      const uint64_t now = now_ns();
      uint64_t work = 0;
      for (int k = 0; k < 4; ++k) {  // a few bursts, so a full socket buffer drains
        const uint32_t n = t_.poll(now);
        work += n;
        if (n < dgram::kRxBurst) break;
      }
      const int64_t read = read_peers();
      if (read < 0) return 1;
      const int64_t wrote = write_burst();
      if (wrote < 0) return 1;
      work += static_cast<uint64_t>(read + wrote) + t_.flush(now);
      check_liveness(now);
      if (a_.control != 0 && !heard_all_) heard_all_ = check_heard();
      if (finished(now)) return errors_ == 0 ? 0 : 3;
      if (now > deadline_ns) {
        report_deadline();
        return 4;
      }
      idle_step(work, &idle);
    }
  }

  // Every peer has sent us a valid frame: the control thread may start sending.
  bool check_heard() {
    for (MemberId p = 0; p < t_.members(); ++p) {
      if (p != self_ && t_.last_heard_ns(p) == dgram::GapTracker::kNever) return false;
    }
    control_.peers_heard();
    return true;
  }

  // Reads every peer's log, checking each record; returns how many, or -1 on a log fault.
  int64_t read_peers() {
    int64_t n_total = 0;
    all_read_ = true;
    for (MemberId p = 0; p < t_.members(); ++p) {
      if (done_with_[p]) continue;
      dgram::ReplicaSubscription* sub = t_.subscription(p);
      if (sub == nullptr) {
        done_with_[p] = true;  // declared gone
        continue;
      }
      const uint32_t n = sub->poll(views_, 64);
      for (uint32_t i = 0; i < n; ++i) {
        if (!records_.check(views_[i], p, next_[p])) ++errors_;
        ++next_[p];
        if (a_.slow_ns != 0) busy_ns(a_.slow_ns);
      }
      sub->release();
      if (sub->fault() != LogFault::kNone) {
        std::printf("error log of %u: %s\n", p, log_fault_name(sub->fault()));
        return -1;
      }
      n_total += n;
      if (next_[p] == expect_[p]) {
        done_with_[p] = true;
        std::printf("read %lu records from %u\n", static_cast<unsigned long>(next_[p]), p);
      } else {
        all_read_ = false;
      }
    }
    return n_total;
  }

  // Writes up to 32 records, stopping at back pressure; returns how many, or -1.
  int64_t write_burst() {
    int64_t n = 0;
    for (; n < 32 && written_ < to_write_; ++n) {
      const uint32_t size = records_.size(written_);
      Claim c;
      const ClaimStatus st = t_.publication().try_claim(size, kRecordUser, &c);
      if (st == ClaimStatus::kBackPressure) break;
      if (st != ClaimStatus::kOk) {
        std::printf("error claim: %s\n", claim_status_name(st));
        return -1;
      }
      records_.fill(c.data, self_, written_);
      t_.publication().commit(c);
      ++written_;
    }
    return n;
  }

  // A peer silent for silence_gone_ms is declared gone (checked every 5 ms).
  void check_liveness(uint64_t now) {
    if (a_.silence_gone_ms == 0 || now - last_liveness_ns_ < 5'000'000) return;
    last_liveness_ns_ = now;
    for (MemberId p = 0; p < t_.members(); ++p) {
      if (p == self_ || !t_.publication().counts_reader(p)) continue;
      const uint64_t heard = t_.last_heard_ns(p);
      const uint64_t since = heard == dgram::GapTracker::kNever ? start_ns_ : heard;
      if (now - since > a_.silence_gone_ms * 1'000'000) {
        t_.declare_gone(p);
        std::printf("declared member %u gone after %lu of its records\n", p,
                    static_cast<unsigned long>(next_[p]));
      }
    }
  }

  // Done once everything is written and read, every live reader has released all of our
  // log, and a grace period has passed in which our last status frames reach the writers
  // (each is repeated every status interval, so losing a few does not matter).
  bool finished(uint64_t now) {
    if (written_ != to_write_ || !all_read_) return false;
    if (a_.control != 0 && !control_.done()) return false;  // it needs the data core's polls
    if (finished_ns_ == 0) finished_ns_ = now;
    const bool released = t_.publication().min_reader_position() >= t_.publication().position();
    return released && now - finished_ns_ > 300'000'000;
  }

  void report_deadline() const {
    std::printf("error deadline: wrote %lu, position %lu, sent %lu;",
                static_cast<unsigned long>(written_),
                static_cast<unsigned long>(t_.publication().position()),
                static_cast<unsigned long>(t_.log().sent_position()));
    for (MemberId p = 0; p < t_.members(); ++p) {
      if (p == self_) continue;
      std::printf(" peer %u read %lu received %lu released ours %lu;", p,
                  static_cast<unsigned long>(next_[p]),
                  static_cast<unsigned long>(t_.log().gaps(p).contiguous()),
                  static_cast<unsigned long>(t_.log().peer_released(p)));
    }
    std::printf(" %s\n", t_.describe().c_str());
  }

  // Backs off when an iteration found nothing to do, as shm_member does: a 2-core machine
  // runs three members and the test.
  static void idle_step(uint64_t work, cohort::IdleStrategy* idle) {
    if (work > 0) {
      idle->reset();
      return;
    }
    switch (idle->next()) {
      case cohort::IdleStrategy::Action::kSpin: cohort::cpu_relax(); break;
      case cohort::IdleStrategy::Action::kYield: sched_yield(); break;
      case cohort::IdleStrategy::Action::kPark: {
        const timespec ts{0, static_cast<long>(idle->park_ns())};
        nanosleep(&ts, nullptr);
        idle->parked();
        break;
      }
    }
  }

  const MemberSettings& a_;
  const RecordPattern& records_;
  Transport& t_;
  const MemberId self_;
  uint64_t to_write_ = 0;
  uint64_t expect_[kMaxMembers] = {};
  uint64_t written_ = 0;
  uint64_t next_[kMaxMembers] = {};
  bool done_with_[kMaxMembers] = {};
  bool all_read_ = false;
  uint64_t errors_ = 0;
  uint64_t start_ns_ = 0;
  uint64_t finished_ns_ = 0;
  uint64_t last_liveness_ns_ = 0;
  RecordView views_[64];
  ControlExchange<Transport> control_;
  bool heard_all_ = false;
};

}  // namespace cohort::testing
