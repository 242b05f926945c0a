// make_redis_loader() in a build without libhiredis: a clear error instead of a loader.
#include "cohort/cache.h"

namespace cohort {

Result<std::unique_ptr<CacheLoader>> make_redis_loader(const std::string& host, uint16_t port,
                                                       std::chrono::milliseconds timeout) {
  (void)host;
  (void)port;
  (void)timeout;
  return Error(Errc::kUnsupported,
               "redis: this build has no Redis loader (libhiredis was not found); install "
               "libhiredis-dev (scripts/setup) and reconfigure with -Dredis=enabled");
}

}  // namespace cohort
