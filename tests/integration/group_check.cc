// The checker driver (group_check.h).
#include "tests/integration/group_check.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "apps/cli/node_log.h"
#include "tests/sim/checker.h"

namespace cohort::itest {
namespace {

using membership::Delivery;
using membership::Mode;
using membership::SendResult;

enum class Kind : uint8_t {
  kStart,
  kSend,
  kSent,
  kDeliver,
  kView,
  kRestore,
  kLeave,
  kLeft,
  kRemoved,
  kCutOff,
  kPeerFailed,
  kStop,
  kKill,  // the harness's SIGKILL (not a log line)
};

struct KindName {
  std::string_view name;
  Kind kind;
};
constexpr KindName kKinds[] = {
    {"start", Kind::kStart},     {"send", Kind::kSend},
    {"sent", Kind::kSent},       {"deliver", Kind::kDeliver},
    {"view", Kind::kView},       {"restore", Kind::kRestore},
    {"leave", Kind::kLeave},     {"left", Kind::kLeft},
    {"removed", Kind::kRemoved}, {"cut_off", Kind::kCutOff},
    {"peer_failed", Kind::kPeerFailed}, {"stop", Kind::kStop},
};

// One line of a log: its time, kind and key=value fields (views into the file's text).
struct Line {
  uint64_t t = 0;
  Kind kind = Kind::kStart;
  size_t file = 0;
  size_t number = 0;  // 1-based, in the file
  std::string_view text;
  std::array<std::pair<std::string_view, std::string_view>, 8> fields{};
  uint32_t field_count = 0;
  Uid uid;  // the incarnation it belongs to (set once the file is sorted)

  std::string_view get(std::string_view key) const {
    for (uint32_t i = 0; i < field_count; ++i) {
      if (fields[i].first == key) return fields[i].second;
    }
    return {};
  }
};

bool parse_u64(std::string_view s, uint64_t* out, int base = 10) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_u32(std::string_view s, uint32_t* out) {
  uint64_t v = 0;
  if (!parse_u64(s, &v) || v > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

// "nN.I"
bool parse_uid(std::string_view s, Uid* out) {
  if (s.size() < 4 || s[0] != 'n') return false;
  const size_t dot = s.find('.');
  if (dot == std::string_view::npos) return false;
  return parse_u32(s.substr(1, dot - 1), &out->node) &&
         parse_u32(s.substr(dot + 1), &out->incarnation) && out->node < membership::kMaxMembers &&
         out->incarnation != 0;
}

// "N.I.S" -> the message id of apps/cli/node_log.h.
bool parse_msg_id(std::string_view s, uint64_t* out) {
  const size_t a = s.find('.');
  const size_t b = a == std::string_view::npos ? a : s.find('.', a + 1);
  if (b == std::string_view::npos) return false;
  uint32_t node = 0, inc = 0, seq = 0;
  if (!parse_u32(s.substr(0, a), &node) || !parse_u32(s.substr(a + 1, b - a - 1), &inc) ||
      !parse_u32(s.substr(b + 1), &seq)) {
    return false;
  }
  if (node >= membership::kMaxMembers || inc == 0 || seq >= (1U << cli::kSeqBits)) return false;
  *out = cli::message_id(node, inc, seq);
  return true;
}

bool parse_mode(std::string_view s, Mode* out) {
  if (s == "fifo") *out = Mode::kFifo;
  else if (s == "total") *out = Mode::kTotal;
  else if (s == "safe") *out = Mode::kSafe;
  else return false;
  return true;
}

bool parse_members(std::string_view s, View* view) {
  view->count = 0;
  while (!s.empty()) {
    const size_t comma = s.find(',');
    Uid u;
    if (!parse_uid(s.substr(0, comma), &u) || view->count >= membership::kMaxMembers) return false;
    view->members[view->count++] = u;
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return view->count > 0;
}

bool parse_hex_bytes(std::string_view s, std::vector<std::byte>* out) {
  out->clear();
  if (s == "-") return true;
  if (s.size() % 2 != 0) return false;
  for (size_t i = 0; i < s.size(); i += 2) {
    uint64_t b = 0;
    if (!parse_u64(s.substr(i, 2), &b, 16)) return false;
    out->push_back(static_cast<std::byte>(b));
  }
  return true;
}

bool split_line(std::string_view text, Line* line) {
  const size_t sp = text.find(' ');
  if (sp == std::string_view::npos || !parse_u64(text.substr(0, sp), &line->t)) return false;
  std::string_view rest = text.substr(sp + 1);
  const size_t sp2 = rest.find(' ');
  const std::string_view kind = rest.substr(0, sp2);
  bool known = false;
  for (const KindName& k : kKinds) {
    if (k.name == kind) {
      line->kind = k.kind;
      known = true;
    }
  }
  if (!known) return false;
  rest = sp2 == std::string_view::npos ? std::string_view() : rest.substr(sp2 + 1);
  while (!rest.empty()) {
    const size_t end = rest.find(' ');
    const std::string_view kv = rest.substr(0, end);
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos || line->field_count == line->fields.size()) return false;
    line->fields[line->field_count++] = {kv.substr(0, eq), kv.substr(eq + 1)};
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return true;
}

// The 16 bytes the checker sees for a payload: the id, then the hash of the real bytes.
std::array<std::byte, 16> stand_in(uint64_t id, uint64_t hash) {
  std::array<std::byte, 16> p{};
  std::memcpy(p.data(), &id, 8);
  std::memcpy(p.data() + 8, &hash, 8);
  return p;
}

// (snprintf rather than string concatenation: g++ 12 warns falsely on the latter, -Wrestrict.)
std::string uid_name(Uid u) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "n%u.%u", u.node, u.incarnation);
  return buf;
}

class Driver {
 public:
  explicit Driver(std::span<const LogInput> logs) : logs_(logs) {}
  CheckReport run();

 private:
  void read_file(size_t file);
  void attribute(size_t file, std::vector<Line>& lines);
  void bad(const Line& line, const std::string& why);
  void feed(const Line& line);
  MemberFacts* facts(Uid uid);

  std::span<const LogInput> logs_;
  std::vector<std::string> texts_;  // the files' contents; Lines point into them
  std::vector<Line> timeline_;
  std::unordered_map<std::string_view, SendResult> results_;  // "N.I.S" -> what send() said
  std::vector<std::string> driver_violations_;
  sim::Checker checker_;
  CheckReport report_;
  std::unordered_map<uint64_t, size_t> facts_index_;  // uid key -> report_.members
};

void Driver::bad(const Line& line, const std::string& why) {
  driver_violations_.push_back("log " + logs_[line.file].path + ":" + std::to_string(line.number) +
                               ": " + why + ": '" + std::string(line.text.substr(0, 160)) + "'");
}

MemberFacts* Driver::facts(Uid uid) {
  auto it = facts_index_.find(uid.key());
  return it == facts_index_.end() ? nullptr : &report_.members[it->second];
}

void Driver::read_file(size_t file) {
  std::ifstream in(logs_[file].path, std::ios::binary);
  if (!in) {
    driver_violations_.push_back("log " + logs_[file].path + ": cannot be read");
    return;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  texts_[file] = ss.str();
  const std::string_view text = texts_[file];
  const bool killed = logs_[file].killed_ns != 0;
  std::vector<Line> lines;
  size_t at = 0, number = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    const bool torn = nl == std::string_view::npos;
    if (torn) nl = text.size();
    Line line;
    line.file = file;
    line.number = ++number;
    line.text = text.substr(at, nl - at);
    at = nl + 1;
    if (line.text.empty()) continue;
    const bool parsed = split_line(line.text, &line);
    if (torn && killed) break;  // a SIGKILL tore the last line: what was written before stands
    if (!parsed) {
      bad(line, "not a cohort node log line");
      continue;
    }
    if (torn) bad(line, "the last line has no end, and the process was not killed");
    lines.push_back(line);
  }
  attribute(file, lines);
  for (const Line& l : lines) timeline_.push_back(l);
  if (killed) {
    // The SIGKILL, as a line of its own: it ends the last incarnation started before it.
    Line kill;
    kill.t = logs_[file].killed_ns;
    kill.kind = Kind::kKill;
    kill.file = file;
    kill.number = number + 1;
    kill.text = "(SIGKILL by the harness)";
    for (const Line& l : lines) {
      if (l.kind == Kind::kStart && l.t <= kill.t) kill.uid = l.uid;
    }
    if (kill.uid.valid()) timeline_.push_back(kill);
  }
}

// Two threads write a member's log (the sender's sends, the member thread's deliveries), so the
// file is in order per thread only: sort by time. Each line then belongs to the incarnation
// whose start precedes it (a rejoin stops the old Group before it stamps the new start).
void Driver::attribute(size_t file, std::vector<Line>& lines) {
  std::stable_sort(lines.begin(), lines.end(),
                   [](const Line& a, const Line& b) { return a.t < b.t; });
  Uid current;
  for (Line& l : lines) {
    if (l.kind == Kind::kStart) {
      if (!parse_uid(l.get("self"), &current)) bad(l, "start without a valid self=");
    }
    l.uid = current;
    if (!current.valid()) bad(l, "a line before the log's first start");
    if (l.kind == Kind::kSent && current.valid()) {
      SendResult r = SendResult::kOk;
      const std::string_view res = l.get("result");
      if (res == "ok") r = SendResult::kOk;
      else if (res == "full") r = SendResult::kFull;
      else if (res == "too_large") r = SendResult::kTooLarge;
      else if (res == "not_member") r = SendResult::kNotMember;
      else bad(l, "unknown send result");
      results_[l.get("id")] = r;
    }
  }
  (void)file;
}

void Driver::feed(const Line& l) {
  if (!l.uid.valid()) return;
  const Uid uid = l.uid;
  MemberFacts* f = facts(uid);
  if (f == nullptr && l.kind != Kind::kStart) {
    bad(l, "a line of " + uid_name(uid) + " before its start");
    return;
  }
  switch (l.kind) {
    case Kind::kStart: {
      const bool founder = l.get("founder") == "1";
      checker_.on_start(uid, founder, l.t);
      if (f != nullptr) return;  // the checker reports the second start
      facts_index_[uid.key()] = report_.members.size();
      MemberFacts nf;
      nf.uid = uid;
      nf.file = l.file;
      nf.founder = founder;
      nf.start_ns = l.t;
      report_.members.push_back(nf);
      return;
    }
    case Kind::kSend: {
      uint64_t id = 0, hash = 0;
      Mode mode;
      if (!parse_msg_id(l.get("id"), &id) || !parse_u64(l.get("hash"), &hash, 16) ||
          !parse_mode(l.get("mode"), &mode)) {
        bad(l, "a send without a valid id=, hash= or mode=");
        return;
      }
      if (cli::message_id(uid.node, uid.incarnation, 0) !=
          (id & ~((uint64_t{1} << cli::kSeqBits) - 1))) {
        bad(l, "a send whose id is not its sender's");
      }
      SendResult result = SendResult::kOk;
      auto r = results_.find(l.get("id"));
      if (r != results_.end()) {
        result = r->second;
      } else if (logs_[l.file].killed_ns == 0) {
        bad(l, "a send whose result was never logged, and the process was not killed");
      }  // else killed between send() and its result line: it may have gone out; say kOk
      const auto payload = stand_in(id, hash);
      checker_.on_send(uid, id, mode, payload, result, l.t);
      if (result == SendResult::kOk) {
        if (f->sends_ok == 0) f->first_send_ns = l.t;
        f->last_send_ns = l.t;
        f->sends_ok++;
        report_.sends_ok++;
      }
      return;
    }
    case Kind::kDeliver: {
      Delivery d;
      uint64_t id = 0, hash = 0, sseq = 0;
      if (!parse_u64(l.get("view"), &d.view) || !parse_u64(l.get("gseq"), &d.gseq) ||
          !parse_uid(l.get("from"), &d.sender) || !parse_u64(l.get("sseq"), &sseq) ||
          !parse_mode(l.get("mode"), &d.mode) || !parse_msg_id(l.get("id"), &id) ||
          !parse_u64(l.get("hash"), &hash, 16)) {
        bad(l, "a delivery with a field missing or malformed");
        return;
      }
      d.sseq = static_cast<uint32_t>(sseq);
      const auto payload = stand_in(id, hash);
      d.payload = payload;
      checker_.on_deliver(uid, d, l.t);
      f->deliveries++;
      f->last_delivery_view = std::max(f->last_delivery_view, d.view);
      report_.deliveries++;
      return;
    }
    case Kind::kView: {
      View v;
      if (!parse_u64(l.get("id"), &v.id) || !parse_members(l.get("members"), &v)) {
        bad(l, "a view without a valid id= or members=");
        return;
      }
      checker_.on_install(uid, v, l.t);
      f->views.push_back(v);
      f->views_ns.push_back(l.t);
      report_.views.emplace(v.id, v);
      return;
    }
    case Kind::kRestore: {
      std::vector<std::byte> snap;
      if (!parse_hex_bytes(l.get("snap"), &snap)) {
        bad(l, "a restore whose snap= is not hex");
        return;
      }
      checker_.on_restore(uid, snap, l.t);
      f->restored = true;
      f->restore_ns = l.t;
      return;
    }
    case Kind::kLeave:
      checker_.on_leave_request(uid, l.t);
      f->leave_requested = true;
      return;
    case Kind::kLeft:
    case Kind::kRemoved:
      if (l.kind == Kind::kLeft) checker_.on_left(uid, l.t);
      else checker_.on_removed(uid, l.t);
      if (f->end == MemberFacts::End::kNone) {
        f->end = l.kind == Kind::kLeft ? MemberFacts::End::kLeft : MemberFacts::End::kRemoved;
        f->end_ns = l.t;
      }
      return;
    case Kind::kCutOff:
      checker_.on_cut_off(uid, l.t);
      f->cut_off = true;
      return;
    case Kind::kStop:
    case Kind::kKill:
      // A Group stopped without leaving or being removed is gone without a word: a crash.
      if (f->end == MemberFacts::End::kNone) {
        checker_.on_crash(uid, l.t);
        f->end = l.kind == Kind::kKill ? MemberFacts::End::kKilled : MemberFacts::End::kStopped;
        f->end_ns = l.t;
      }
      return;
    case Kind::kPeerFailed: {
      uint32_t node = 0;
      if (!parse_u32(l.get("node"), &node)) {
        bad(l, "a peer_failed without a valid node=");
        return;
      }
      f->peer_failed.emplace_back(l.t, node);
      return;
    }
    case Kind::kSent: return;
  }
}

CheckReport Driver::run() {
  texts_.resize(logs_.size());
  for (size_t i = 0; i < logs_.size(); ++i) read_file(i);
  // One timeline; at equal times, file order, then line order.
  std::stable_sort(timeline_.begin(), timeline_.end(), [](const Line& a, const Line& b) {
    if (a.t != b.t) return a.t < b.t;
    if (a.file != b.file) return a.file < b.file;
    return a.number < b.number;
  });
  for (const Line& l : timeline_) feed(l);
  std::vector<Uid> live;
  for (const MemberFacts& f : report_.members) {
    if (f.end == MemberFacts::End::kNone) live.push_back(f.uid);
  }
  // Liveness was not converged in the simulator's sense (the run ends with leaves), so the
  // checker's own "nothing of a survivor lost" is replaced by the leavers' check below.
  checker_.finish(live, /*converged=*/false);
  for (const MemberFacts& f : report_.members) {
    if (f.end != MemberFacts::End::kLeft) continue;
    const uint64_t lost = checker_.undelivered_at_sender(f.uid);
    if (lost != 0) {
      driver_violations_.push_back("survivor lost a message: " + uid_name(f.uid) +
                                   " left the group, and " + std::to_string(lost) + " of the " +
                                   std::to_string(f.sends_ok) +
                                   " messages it sent with kOk were never delivered to it");
    }
  }
  report_.violations = checker_.violations();
  for (std::string& v : driver_violations_) report_.violations.push_back(std::move(v));
  return std::move(report_);
}

}  // namespace

const char* end_name(MemberFacts::End end) noexcept {
  switch (end) {
    case MemberFacts::End::kNone: return "running";
    case MemberFacts::End::kLeft: return "left";
    case MemberFacts::End::kRemoved: return "removed";
    case MemberFacts::End::kKilled: return "killed";
    case MemberFacts::End::kStopped: return "stopped without leaving";
  }
  return "?";
}

std::string CheckReport::verdict() const {
  if (ok()) {
    return "checker: OK (members " + std::to_string(members.size()) + ", views " +
           std::to_string(views.size()) + ", deliveries " + std::to_string(deliveries) +
           ", sends " + std::to_string(sends_ok) + ")";
  }
  std::string s = "checker: FAILED (" + std::to_string(violations.size()) + " violations; members " +
                  std::to_string(members.size()) + ", views " + std::to_string(views.size()) +
                  ", deliveries " + std::to_string(deliveries) + ", sends " +
                  std::to_string(sends_ok) + ")";
  for (const std::string& v : violations) s += "\n  " + v;
  return s;
}

const MemberFacts* CheckReport::find(Uid uid) const noexcept {
  for (const MemberFacts& f : members) {
    if (f.uid == uid) return &f;
  }
  return nullptr;
}

std::vector<const MemberFacts*> CheckReport::of_file(size_t file) const {
  std::vector<const MemberFacts*> out;
  for (const MemberFacts& f : members) {
    if (f.file == file) out.push_back(&f);
  }
  return out;
}

CheckReport check_logs(std::span<const LogInput> logs) {
  Driver d(logs);
  return d.run();
}

}  // namespace cohort::itest
