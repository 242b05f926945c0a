// The shm transport's own data path: ringing the doorbells of parked readers after a burst of
// commits (transport/NOTES.md, "shm: the doorbell"). The records themselves go through
// transport/log/log.h. Data-path thread only.
#include <atomic>

#include "transport/shm/shm_transport.h"

namespace cohort::transport::shm {

uint32_t ShmTransport::ring_doorbells() noexcept {
  // Once per burst, not per record: a reader woken by the first record of a burst would only
  // find the rest of it, and the busy path pays this one compare when it appended nothing.
  const uint64_t position = publication_.position();
  if (position == rung_position_) return 0;
  rung_position_ = position;
  // seq_cst: the records committed above (each length stored with release) are ordered before
  // the loads of the sleepers' counts below; pairs with the fence in a reader's
  // Waker::prepare_wait() between its announcement and its recheck of our log. Either we see
  // its announcement, or it sees our records.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint32_t woken = 0;
  for (MemberId m = 0; m < options_.members; ++m) {
    DoorbellPage* bell = peers_[m].bell;
    // A peer that only maps us (not subscribed yet) is woken for nothing: harmless, and rare.
    if (bell != nullptr && wake_announced(bell->bell, /*shared=*/true)) ++woken;
  }
  doorbell_wakes_ += woken;
  return woken;
}

}  // namespace cohort::transport::shm
