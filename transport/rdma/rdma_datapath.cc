// The rdma transport's data path: poll() looks at what peers wrote into our memory, flush()
// writes what is due into theirs. No allocation, no lock; one ibv_post_send (one doorbell) per
// peer per flush, and one completion asked for every signal_every work requests.
#include <infiniband/verbs.h>

#include <cstddef>
#include <cstring>

#include "transport/rdma/rdma_transport.h"

namespace cohort::transport::rdma {

namespace {
constexpr uint64_t kSeqMask = (uint64_t{1} << 56) - 1;
// The most one push posts: two pieces of log bytes (at the wrap), the tail, the read
// position, the heartbeat.
constexpr uint32_t kMaxWrsPerPush = 5;
}  // namespace

uint32_t RdmaTransport::poll(uint64_t now_ns) noexcept {
  manage_connections(now_ns);
  uint32_t news = reap_completions();
  for (MemberId m = 0; m < members(); ++m) {
    Peer& p = peers_[m];
    // A failed peer's words are still read: what it wrote before it died is delivered.
    if (m == self() || (p.conn != Conn::kConnected && p.conn != Conn::kFailed)) continue;
    // acquire: pairs with the peer's WRITE of its tail, posted after the WRITEs of the bytes
    // below it on the same queue pair (NOTES.md, "ordering"); the subscription reads up to it.
    const uint64_t tail = p.words->tail[0].load(std::memory_order_acquire);
    const uint64_t tail_copy = p.words->tail[1].load(std::memory_order_acquire);
    // relaxed: written by the peer's NIC, and published to our LogWriter below by this thread.
    const uint64_t position = p.words->read_position[0].load(std::memory_order_relaxed);
    const uint64_t position_copy = p.words->read_position[1].load(std::memory_order_relaxed);
    // relaxed: a liveness counter, of which only a change matters.
    const uint64_t beat = p.words->heartbeat.load(std::memory_order_relaxed);
    if (tail != tail_copy || position != position_copy) {
      ++stats_.torn_words;  // a WRITE of them is landing: the next poll sees it whole
      continue;
    }
    if (tail != p.received) {
      // The peer's tail only grows, by whole records, and never past one lap of what we
      // released: anything else is a broken or hostile writer, and its log is not read on.
      if (tail < p.received || tail % kRecordAlign != 0 ||
          tail > p.released.load(std::memory_order_relaxed) + options_.log_bytes) {
        if (p.conn == Conn::kConnected) fail_peer(m, "its tail word went wrong");
        continue;
      }
      p.received = tail;
    }
    if (position != p.seen_position) {
      // Its released position in our log only grows and never passes what we wrote to it.
      if (position < p.seen_position || position > p.pushed) {
        if (p.conn == Conn::kConnected) fail_peer(m, "its read position went wrong");
        continue;
      }
      // release: pairs with the acquire load in LogWriter::min_reader_position() (the same
      // thread today; the pairing keeps it right if the writer ever moves).
      p.position.store(position, std::memory_order_release);
    }
    if (tail != p.seen_tail || position != p.seen_position || beat != p.seen_heartbeat) {
      p.seen_tail = tail;
      p.seen_position = position;
      p.seen_heartbeat = beat;
      p.last_heard_ns = now_ns;
      ++news;
    }
  }
  return news;
}

uint32_t RdmaTransport::flush(uint64_t now_ns) noexcept {
  reap_completions();
  uint32_t posted = 0;
  for (MemberId m = 0; m < members(); ++m) {
    if (m != self() && peers_[m].conn == Conn::kConnected) posted += push(m, now_ns);
  }
  return posted;
}

uint32_t RdmaTransport::reap_completions() noexcept {
  if (cq_ == nullptr) return 0;
  ibv_wc wc[32];
  const int n = ibv_poll_cq(cq_, 32, wc);
  if (n <= 0) return 0;
  for (int i = 0; i < n; ++i) {
    const auto peer = static_cast<MemberId>(wc[i].wr_id >> 56);
    const uint64_t seq = wc[i].wr_id & kSeqMask;
    if (peer >= kMaxMembers) continue;
    Peer& p = peers_[peer];
    ++stats_.completions;
    if (wc[i].status == IBV_WC_SUCCESS) [[likely]] {
      // Completions come in order on a queue pair: every request up to seq is done.
      if (seq + 1 > p.completed) p.completed = seq + 1;
      continue;
    }
    // The queue pair is in error now: everything queued on it is flushed, and it takes no more.
    ++stats_.completion_errors;
    p.completed = p.posted;
    if (p.conn == Conn::kConnected && wc[i].status != IBV_WC_WR_FLUSH_ERR) {
      fail_peer(peer, std::string("an RDMA WRITE failed: ") + ibv_wc_status_str(wc[i].status) +
                          (wc[i].status == IBV_WC_RETRY_EXC_ERR
                               ? " (the peer stopped answering: it died, or the path is down)"
                               : ""));
    }
  }
  return static_cast<uint32_t>(n);
}

uint32_t RdmaTransport::push(MemberId peer, uint64_t now_ns) noexcept {
  Peer& p = peers_[peer];
  if (p.posted - p.completed + kMaxWrsPerPush > options_.send_queue_depth) {
    ++stats_.send_queue_full;  // a signalled request is queued (signal_every's bound): it drains
    return 0;
  }
  ibv_send_wr wrs[kMaxWrsPerPush];
  ibv_sge sges[kMaxWrsPerPush];
  uint64_t words[5];  // inline: copied by ibv_post_send, so the stack will do
  uint32_t n = 0;
  auto add = [&](uint64_t local, uint32_t length, uint32_t lkey, uint64_t remote, bool inline_) {
    sges[n] = ibv_sge{local, length, lkey};
    ibv_send_wr& wr = wrs[n];
    std::memset(&wr, 0, sizeof wr);
    wr.sg_list = &sges[n];
    wr.num_sge = 1;
    wr.opcode = IBV_WR_RDMA_WRITE;
    wr.send_flags = inline_ ? IBV_SEND_INLINE : 0;
    wr.wr.rdma.remote_addr = remote;
    wr.wr.rdma.rkey = p.remote_rkey;
    ++n;
  };
  const uint64_t replica = p.remote_inbox + kInboxHeaderBytes;
  const uint64_t tail = publication_.position();
  if (p.pushed < tail) {
    // The committed bytes, where they lie in our log (zero copy), to the same offsets of the
    // replica; two pieces when they wrap. Then the tail word, which makes them readable.
    const uint64_t mask = options_.log_bytes - 1;
    for (uint64_t from = p.pushed; from < tail;) {
      const uint64_t offset = from & mask;
      const uint64_t piece =
          tail - from < options_.log_bytes - offset ? tail - from : options_.log_bytes - offset;
      add(reinterpret_cast<uint64_t>(log_mem_ + offset), static_cast<uint32_t>(piece),
          log_mr_->lkey, replica + offset, false);
      ++stats_.write_wrs;
      stats_.write_bytes += piece;
      from += piece;
    }
    words[0] = tail;  // two copies: the reader takes it when they agree
    words[1] = tail;
    add(reinterpret_cast<uint64_t>(&words[0]), 16, 0, p.remote_inbox + offsetof(InboxWords, tail),
        true);
    ++stats_.tail_wrs;
    p.pushed = tail;
  }
  // relaxed: the subscription's release() stores it on this same thread.
  const uint64_t released = p.released.load(std::memory_order_relaxed);
  if (released != p.position_sent) {
    words[2] = released;
    words[3] = released;
    add(reinterpret_cast<uint64_t>(&words[2]), 16, 0,
        p.remote_inbox + offsetof(InboxWords, read_position), true);
    ++stats_.position_wrs;
    p.position_sent = released;
  }
  if (now_ns - p.heartbeat_sent_ns >= options_.heartbeat_interval_ns) {
    // relaxed: a counter; the peer only looks for a change.
    words[4] = heartbeat_.fetch_add(1, std::memory_order_relaxed) + 1;
    add(reinterpret_cast<uint64_t>(&words[4]), 8, 0,
        p.remote_inbox + offsetof(InboxWords, heartbeat), true);
    ++stats_.heartbeat_wrs;
    p.heartbeat_sent_ns = now_ns;
  }
  if (n == 0) return 0;
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t seq = p.posted + i;
    wrs[i].wr_id = (static_cast<uint64_t>(peer) << 56) | (seq & kSeqMask);
    wrs[i].next = i + 1 < n ? &wrs[i + 1] : nullptr;
    if (seq - p.last_signalled >= options_.signal_every) {
      wrs[i].send_flags |= IBV_SEND_SIGNALED;
      p.last_signalled = seq;
      ++stats_.signalled;
    }
  }
  ibv_send_wr* bad = nullptr;
  ++stats_.doorbells;
  if (const int e = ibv_post_send(p.qp, wrs, &bad); e != 0) [[unlikely]] {
    // Only a queue pair in error refuses requests that fit: the peer is lost.
    ++stats_.post_errors;
    ibv_qp_attr qa{};
    ibv_qp_init_attr qi{};
    ibv_query_qp(p.qp, &qa, IBV_QP_STATE, &qi);
    fail_peer(peer, std::string("ibv_post_send: ") + std::strerror(e) + " at request " +
                        std::to_string(bad == nullptr ? -1 : bad - wrs) + " of " +
                        std::to_string(n) + ", queue pair state " + std::to_string(qa.qp_state));
    return 0;
  }
  p.posted += n;
  return n;
}

}  // namespace cohort::transport::rdma
