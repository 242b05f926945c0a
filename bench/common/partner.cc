// The cpus and pinning every two-thread benchmark uses.
#include "bench/common/partner.h"

#include <pthread.h>
#include <sched.h>

namespace cohort::bench {

CpuPair cpu_pair() {
  static const CpuPair pair = [] {
    CpuPair p;
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return p;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &allowed)) continue;
      if (p.main_cpu < 0) {
        p.main_cpu = cpu;
      } else {
        p.partner_cpu = cpu;
        break;
      }
    }
    return p;
  }();
  return pair;
}

bool pin_self(int cpu) {
  if (cpu < 0) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<size_t>(cpu), &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

}  // namespace cohort::bench
