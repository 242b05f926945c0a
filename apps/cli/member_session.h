// What the commands that run a service as one member of a group (`cohort lock`, `cohort cache`)
// share: the group's options, stopping on SIGTERM and SIGINT, joining a view, serving until
// signalled, and leaving. Called from the command's main thread only.
#pragma once

#include <cstdint>
#include <string>

#include "cohort/group.h"
#include "runtime/result.h"

namespace cohort::cli {

// The options of a member over shm in `shm_dir` (empty: the default folder), polled by one
// thread ("shared"): a command member is not where latency is measured.
GroupOptions member_options(const std::string& group, const std::string& shm_dir, uint32_t slots,
                            bool bootstrap);

// The error when every slot from the top was refused; `what` names the command ("cohort lock").
Error no_free_slot(const char* what, uint32_t slots, const std::string& group,
                   const std::string& last);

// From now on SIGTERM and SIGINT ask the command to stop (stop_requested()).
void stop_on_signals();
bool stop_requested();

// Starts `g` and waits up to `join_ms` for its first view (a stop request ends the wait). On
// failure prints why, prefixed by `what`, with `hint` (what to run first), stops `g` and
// returns false.
bool start_and_join(Group& g, const char* what, const std::string& group, uint64_t join_ms,
                    const std::string& hint);

// Leaves the view (waiting up to 2 s for the view change that removes this member) and stops.
void leave_and_stop(Group& g);

// Serves until a stop request or until the member is no longer in a view, then leaves. The
// caller has printed what it serves; this flushes stdout first, so a script waiting for that
// line sees it.
void serve_until_signalled(Group& g);

}  // namespace cohort::cli
