// The independent checker (checker.h).
#include "tests/sim/checker.h"

#include <algorithm>
#include <sstream>

namespace cohort::sim {
namespace {

std::string name(Uid u) {
  return "n" + std::to_string(u.node) + "." + std::to_string(u.incarnation);
}

std::string members_text(const View& v) {
  std::string s = "{";
  for (uint32_t i = 0; i < v.count; ++i) {
    if (i) s += ",";
    s += name(v.members[i]);
  }
  return s + "}";
}

constexpr size_t kMaxViolations = 40;

}  // namespace

Checker::MemberLog* Checker::find(Uid member) noexcept {
  auto it = members_.find(member.key());
  return it == members_.end() ? nullptr : &it->second;
}

const Checker::MemberLog* Checker::find(Uid member) const noexcept {
  auto it = members_.find(member.key());
  return it == members_.end() ? nullptr : &it->second;
}

Checker::MemberLog& Checker::get(Uid member, const char* what) {
  MemberLog* m = find(member);
  if (m == nullptr) {
    violation(std::string("driver: ") + what + " from unknown member " + name(member));
    MemberLog& fresh = members_[member.key()];
    fresh.uid = member;
    return fresh;
  }
  return *m;
}

void Checker::violation(std::string text) {
  if (violations_.size() < kMaxViolations) {
    violations_.push_back(std::move(text));
  } else {
    suppressed_++;
  }
}

void Checker::fail(std::string what) {
  violation(std::move(what));
}

// --- observations ------------------------------------------------------------------------------

void Checker::on_start(Uid member, bool founder, TimeNs /*now*/) {
  if (find(member) != nullptr) {
    violation("identity: " + name(member) + " started twice (an incarnation came back)");
    return;
  }
  MemberLog& m = members_[member.key()];
  m.uid = member;
  m.founder = founder;
  m.restored = founder;
}

void Checker::on_send(Uid sender, uint64_t id, Mode mode, std::span<const std::byte> payload,
                      SendResult result, TimeNs /*now*/) {
  if (result != SendResult::kOk) return;
  MemberLog& m = get(sender, "send");
  const uint64_t order = sends_per_sender_[sender.key()]++;
  sent_.emplace(id, Sent{sender, mode, bytes_hash(payload), order});
  m.sent_ok.push_back(id);
  m.undelivered_own++;
}

void Checker::on_deliver(Uid member, const Delivery& d, TimeNs now) {
  MemberLog& m = get(member, "delivery");
  const uint64_t id = payload_id(d.payload);
  std::ostringstream at;
  at << " (member " << name(member) << ", view " << d.view << ", msg " << id << ", gseq " << d.gseq
     << ", t=" << now / 1000 << "us)";
  if (m.end == End::kLeft || m.end == End::kRemoved) {
    violation("no delivery after leaving: delivered after kLeft/kRemoved" + at.str());
  }
  if (m.installs.empty()) {
    violation("integrity: delivery before any view was installed" + at.str());
  } else if (d.view != m.installs.back()) {
    violation("virtual synchrony: delivery tagged with view " + std::to_string(d.view) +
              " while view " + std::to_string(m.installs.back()) + " is installed" + at.str());
  }
  if (!m.restored) violation("state transfer: a joiner delivered before its restore" + at.str());
  auto s = sent_.find(id);
  if (s == sent_.end()) {
    violation("integrity: invented message (no such send returned kOk)" + at.str());
    return;
  }
  const Sent& sent = s->second;
  if (!(sent.sender == d.sender)) {
    violation("integrity: delivery names sender " + name(d.sender) + " but " + name(sent.sender) +
              " sent it" + at.str());
  }
  if (bytes_hash(d.payload) != sent.payload_hash) {
    violation("integrity: payload bytes differ from those sent" + at.str());
  }
  if (d.mode != sent.mode) {
    violation(std::string("integrity: delivered in mode ") + membership::mode_name(d.mode) +
              ", sent in " + membership::mode_name(sent.mode) + at.str());
  }
  if (!m.delivered_ids.insert(id).second) {
    violation("integrity: message delivered twice" + at.str());
    return;
  }
  uint64_t& next = m.fifo_next[sent.sender.key()];
  if (sent.order < next) {
    violation("fifo: " + name(sent.sender) + "'s send #" + std::to_string(sent.order) +
              " delivered after its send #" + std::to_string(next - 1) + at.str());
  } else {
    next = sent.order + 1;
  }
  std::vector<Deliv>& in_view = m.deliveries[d.view];
  if (d.mode == Mode::kFifo) {
    if (d.gseq != 0) violation("integrity: FIFO delivery with a gseq" + at.str());
  } else {
    uint64_t last = 0;
    for (auto it = in_view.rbegin(); it != in_view.rend(); ++it) {
      if (it->mode != Mode::kFifo) {
        last = it->gseq;
        break;
      }
    }
    if (d.gseq <= last) {
      violation("total order: gseq " + std::to_string(d.gseq) + " delivered after gseq " +
                std::to_string(last) + at.str());
    }
  }
  in_view.push_back(Deliv{id, d.gseq, d.mode});
  app_apply(&m.state, id);
  if (sent.sender == member) m.undelivered_own--;
}

void Checker::on_install(Uid member, const View& view, TimeNs now) {
  MemberLog& m = get(member, "install");
  const std::string at = " (member " + name(member) + ", view " + std::to_string(view.id) + " " +
                         members_text(view) + ", t=" + std::to_string(now / 1000) + "us)";
  if (m.end != End::kNone) violation("views: install after the member left or was removed" + at);
  if (!view.contains(member)) violation("views: a member installed a view it is not in" + at);
  if (!m.installs.empty() && view.id != m.installs.back() + 1) {
    violation("views: installed view ids not consecutive: " + std::to_string(m.installs.back()) +
              " then " + std::to_string(view.id) + at);
  }
  auto [it, inserted] = views_.emplace(view.id, view);
  if (inserted) {
    view_first_installer_.emplace(view.id, member);
    view_first_install_ns_.emplace(view.id, now);
  } else if (!(it->second == view)) {
    violation("view agreement: " + name(view_first_installer_[view.id]) + " installed view " +
              std::to_string(view.id) + " as " + members_text(it->second) + ", " + name(member) +
              " as " + members_text(view) + at);
  }
  latest_view_ = std::max(latest_view_, view.id);
  if (!m.installs.empty() && view.id == m.installs.back() + 1 && m.restored) {
    m.boundary[view.id] = m.state;
  }
  m.installs.push_back(view.id);
}

void Checker::on_restore(Uid member, std::span<const std::byte> snapshot, TimeNs now) {
  MemberLog& m = get(member, "restore");
  const std::string at = " (member " + name(member) + ", t=" + std::to_string(now / 1000) + "us)";
  if (m.founder) violation("state transfer: the founder was asked to restore" + at);
  if (m.has_restore) violation("state transfer: restored twice" + at);
  AppState s;
  if (!app_decode(snapshot, &s)) {
    violation("state transfer: the restored bytes are not a snapshot (" +
              std::to_string(snapshot.size()) + " bytes)" + at);
    return;
  }
  if (m.state.count != 0) violation("state transfer: restore after deliveries" + at);
  m.has_restore = true;
  m.restored = true;
  m.restore_state = s;
  m.state = s;
}

void Checker::on_leave_request(Uid member, TimeNs now) {
  MemberLog& m = get(member, "leave request");
  m.leave_requested_ns = std::min(m.leave_requested_ns, now);
}

void Checker::on_left(Uid member, TimeNs /*now*/) {
  MemberLog& m = get(member, "left");
  if (m.end == End::kNone) m.end = End::kLeft;
}

void Checker::on_removed(Uid member, TimeNs /*now*/) {
  MemberLog& m = get(member, "removed");
  if (m.end == End::kNone) m.end = End::kRemoved;
}

void Checker::on_crash(Uid member, TimeNs /*now*/) {
  MemberLog& m = get(member, "crash");
  if (m.end == End::kNone) m.end = End::kCrashed;
}

void Checker::on_cut_off(Uid member, TimeNs /*now*/) {
  get(member, "cut off").cut_off = true;
}

// --- queries -----------------------------------------------------------------------------------

uint64_t Checker::undelivered_at_sender(Uid sender) const noexcept {
  const MemberLog* m = find(sender);
  return m == nullptr ? 0 : m->undelivered_own;
}

const View* Checker::view(ViewId id) const noexcept {
  auto it = views_.find(id);
  return it == views_.end() ? nullptr : &it->second;
}

AppState Checker::state(Uid member) const noexcept {
  const MemberLog* m = find(member);
  return m == nullptr ? AppState{} : m->state;
}

uint64_t Checker::delivered(Uid member) const noexcept {
  const MemberLog* m = find(member);
  return m == nullptr ? 0 : m->delivered_ids.size();
}

bool Checker::delivered_msg(Uid member, uint64_t id) const noexcept {
  const MemberLog* m = find(member);
  return m != nullptr && m->delivered_ids.count(id) != 0;
}

// --- the checks across members -----------------------------------------------------------------

void Checker::finish(std::span<const Uid> live, bool converged) {
  check_views();
  for (const auto& [v, view] : views_) {
    check_view_pair(v);
    check_safe_prefixes(v, live);
  }
  check_states();
  if (converged) check_survivors(live);
  if (suppressed_ != 0) {
    violations_.push_back("... and " + std::to_string(suppressed_) + " more violations");
    suppressed_ = 0;
  }
}

// View ids grow by one, and each view holds a strict majority of the one before.
void Checker::check_views() {
  if (views_.empty()) return;
  const ViewId first = views_.begin()->first;
  if (first != 1) violation("views: the first view installed is " + std::to_string(first));
  for (const auto& [v, view] : views_) {
    if (v == first) continue;
    auto prev = views_.find(v - 1);
    if (prev == views_.end()) {
      violation("views: view " + std::to_string(v) + " installed, view " + std::to_string(v - 1) +
                " never was");
      continue;
    }
    // A member that asked to leave before the view was decided took part in its flush and
    // counts toward the quorum (membership/protocol/NOTES.md, "leavers count toward the
    // majority"): kept + leavers > |previous| / 2.
    uint32_t kept = 0;
    uint32_t leavers = 0;
    std::string leaver_names;
    const TimeNs decided_ns = view_first_install_ns_[v];
    for (Uid u : prev->second.list()) {
      if (view.contains(u)) {
        kept++;
      } else if (const MemberLog* m = find(u);
                 m != nullptr && m->leave_requested_ns <= decided_ns) {
        leavers++;
        leaver_names += " " + name(u);
      }
    }
    if (2 * (kept + leavers) <= prev->second.count) {
      violation("primary partition: view " + std::to_string(v) + " " + members_text(view) +
                " holds " + std::to_string(kept) + " of the " + std::to_string(prev->second.count) +
                " members of view " + std::to_string(v - 1) + " " + members_text(prev->second) +
                ", and " + std::to_string(leavers) + " asked to leave" +
                (leaver_names.empty() ? std::string() : " (" + leaver_names.substr(1) + ")"));
    }
  }
}

namespace {

template <typename D>
std::vector<D> ordered_only(const std::vector<D>& all) {
  std::vector<D> out;
  for (const D& d : all) {
    if (d.mode != Mode::kFifo) out.push_back(d);
  }
  return out;
}

}  // namespace

// Members that install v and then v+1 delivered the same set in v, and the same sequence of
// total and safe messages with the same gseqs.
void Checker::check_view_pair(ViewId v) {
  const MemberLog* ref = nullptr;
  std::vector<uint64_t> ref_set;
  std::vector<Deliv> ref_seq;
  static const std::vector<Deliv> kNone;
  for (const auto& [key, m] : members_) {
    if (m.boundary.count(v + 1) == 0) continue;  // did not go from v to v+1
    auto it = m.deliveries.find(v);
    const std::vector<Deliv>& all = it == m.deliveries.end() ? kNone : it->second;
    std::vector<uint64_t> set;
    for (const Deliv& d : all) set.push_back(d.id);
    std::sort(set.begin(), set.end());
    std::vector<Deliv> seq = ordered_only(all);
    if (ref == nullptr) {
      ref = &m;
      ref_set = std::move(set);
      ref_seq = std::move(seq);
      continue;
    }
    const std::string who = name(ref->uid) + " and " + name(m.uid);
    if (set != ref_set) {
      std::vector<uint64_t> only_a, only_b;
      std::set_difference(ref_set.begin(), ref_set.end(), set.begin(), set.end(),
                          std::back_inserter(only_a));
      std::set_difference(set.begin(), set.end(), ref_set.begin(), ref_set.end(),
                          std::back_inserter(only_b));
      std::string text =
          "virtual synchrony: " + who + " both installed views " + std::to_string(v) + " and " +
          std::to_string(v + 1) + " but delivered different sets in view " + std::to_string(v) +
          " (" + std::to_string(ref_set.size()) + " vs " + std::to_string(set.size()) + " messages";
      if (!only_a.empty()) text += "; e.g. msg " + std::to_string(only_a[0]) + " only at the first";
      if (!only_b.empty()) {
        text += "; e.g. msg " + std::to_string(only_b[0]) + " only at the second";
      }
      violation(text + ")");
      continue;
    }
    for (size_t i = 0; i < std::min(seq.size(), ref_seq.size()); ++i) {
      if (seq[i].id != ref_seq[i].id || seq[i].gseq != ref_seq[i].gseq) {
        violation("total order: " + who + " delivered in view " + std::to_string(v) + " position " +
                  std::to_string(i) + ": msg " + std::to_string(ref_seq[i].id) + " gseq " +
                  std::to_string(ref_seq[i].gseq) + " vs msg " + std::to_string(seq[i].id) +
                  " gseq " + std::to_string(seq[i].gseq));
        break;
      }
    }
  }
}

// Safe delivery is uniform: what any member delivered in v up to its last safe delivery, crashed
// or removed or not, is the start of the survivors' total order in v.
void Checker::check_safe_prefixes(ViewId v, std::span<const Uid> live) {
  std::vector<std::pair<const MemberLog*, std::vector<Deliv>>> refs;
  bool complete = false;
  for (const auto& [key, m] : members_) {
    if (m.boundary.count(v + 1) == 0) continue;
    auto it = m.deliveries.find(v);
    refs.emplace_back(&m,
                      it == m.deliveries.end() ? std::vector<Deliv>{} : ordered_only(it->second));
    complete = true;
    break;  // check_view_pair() showed the survivors agree
  }
  if (!complete) {
    // Nobody went on from v: compare with the live members still in v, which all may lag.
    for (Uid u : live) {
      const MemberLog* m = find(u);
      if (m == nullptr || m->end != End::kNone || m->installs.empty() || m->installs.back() != v) {
        continue;
      }
      auto it = m->deliveries.find(v);
      refs.emplace_back(
          m, it == m->deliveries.end() ? std::vector<Deliv>{} : ordered_only(it->second));
    }
    // Members of the final view agree on their common prefix.
    for (size_t a = 1; a < refs.size(); ++a) {
      const auto& x = refs[0].second;
      const auto& y = refs[a].second;
      for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
        if (x[i].id != y[i].id || x[i].gseq != y[i].gseq) {
          violation("total order: live members " + name(refs[0].first->uid) + " and " +
                    name(refs[a].first->uid) + " of view " + std::to_string(v) +
                    " differ at position " + std::to_string(i));
          break;
        }
      }
    }
  }
  if (refs.empty()) return;
  for (const auto& [key, m] : members_) {
    auto it = m.deliveries.find(v);
    if (it == m.deliveries.end()) continue;
    const std::vector<Deliv> seq = ordered_only(it->second);
    size_t safe_end = 0;
    for (size_t i = 0; i < seq.size(); ++i) {
      if (seq[i].mode == Mode::kSafe) safe_end = i + 1;
    }
    if (safe_end == 0) continue;
    for (const auto& [ref, rseq] : refs) {
      if (ref == &m) continue;
      const size_t n = complete ? safe_end : std::min(safe_end, rseq.size());
      for (size_t i = 0; i < n; ++i) {
        if (i >= rseq.size() || seq[i].id != rseq[i].id || seq[i].gseq != rseq[i].gseq) {
          std::string text = "safe delivery not uniform: " + name(m.uid) + " delivered in view " +
                             std::to_string(v) + " msg " + std::to_string(seq[i].id) + " gseq " +
                             std::to_string(seq[i].gseq) + " at position " + std::to_string(i) +
                             " (safe up to " + std::to_string(safe_end) + "), survivor " +
                             name(ref->uid) + " has ";
          text += i >= rseq.size() ? std::string("nothing there")
                                   : "msg " + std::to_string(rseq[i].id) + " gseq " +
                                         std::to_string(rseq[i].gseq);
          violation(text);
          break;
        }
      }
    }
  }
}

// Members that go from v-1 to v have equal states at the boundary, and a joiner of v restores
// exactly that state.
void Checker::check_states() {
  std::map<ViewId, std::pair<Uid, AppState>> at_boundary;
  for (const auto& [key, m] : members_) {
    for (const auto& [v, s] : m.boundary) {
      auto [it, inserted] = at_boundary.emplace(v, std::make_pair(m.uid, s));
      if (!inserted && !(it->second.second == s)) {
        violation("virtual synchrony: " + name(it->second.first) + " and " + name(m.uid) +
                  " enter view " + std::to_string(v) + " with different states (" +
                  std::to_string(it->second.second.count) + " vs " + std::to_string(s.count) +
                  " messages)");
      }
    }
  }
  for (const auto& [key, m] : members_) {
    if (!m.has_restore || m.installs.empty()) continue;
    auto it = at_boundary.find(m.installs.front());
    if (it == at_boundary.end()) continue;
    if (!(it->second.second == m.restore_state)) {
      violation("state transfer: joiner " + name(m.uid) + " restored a state of " +
                std::to_string(m.restore_state.count) + " messages into view " +
                std::to_string(m.installs.front()) + ", " + name(it->second.first) +
                " entered it with " + std::to_string(it->second.second.count));
    }
  }
}

// Nothing a survivor sent is lost: a live member of the final view delivered all it sent.
void Checker::check_survivors(std::span<const Uid> live) {
  for (Uid u : live) {
    const MemberLog* m = find(u);
    if (m == nullptr || m->end != End::kNone || m->installs.empty() ||
        m->installs.back() != latest_view_) {
      continue;
    }
    for (uint64_t id : m->sent_ok) {
      if (m->delivered_ids.count(id) == 0) {
        violation("survivor lost a message: " + name(u) + " sent msg " + std::to_string(id) +
                  " (send() said kOk), is in the final view " + std::to_string(latest_view_) +
                  ", and never delivered it");
        break;
      }
    }
  }
}

}  // namespace cohort::sim
