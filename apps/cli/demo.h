// `cohort demo`: the main job on the embedded default (see demo.cc).
#pragma once

#include <cstdint>

namespace cohort::cli {

struct DemoOptions {
  uint64_t rate = 2000;  // total-order messages per second, per member
  bool keep = false;     // keep the folder with the delivery logs
  uint32_t kills = 1;    // SIGKILLs: after the first, a member is killed and restarted again
                         // and again, and detection + view change is given as a distribution
};

int run_demo(const DemoOptions& options);

}  // namespace cohort::cli
