#include "runtime/assert.h"

#include <cstdio>
#include <cstdlib>

namespace cohort::detail {

void assert_fail(const char* expr, const char* file, int line, const char* func,
                 const char* msg) noexcept {
  // stderr is unbuffered: the message is out before abort() even if the logger is wedged.
  std::fprintf(stderr, "cohort: assertion failed: %s%s%s\n  at %s:%d in %s\n", expr,
               msg != nullptr ? ": " : "", msg != nullptr ? msg : "", file, line, func);
  std::abort();
}

}  // namespace cohort::detail
