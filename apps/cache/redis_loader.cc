// The Redis loader (include/cohort/cache.h: make_redis_loader) over libhiredis: one blocking
// connection with a timeout, used from the cache service's loader thread only. After any error
// the connection is dropped and made again at the next call, so a Redis restart costs the calls
// made while it was down (kError / false), not the loader.
#include <hiredis/hiredis.h>

#include <cstring>
#include <memory>
#include <string>

#include "cohort/cache.h"

namespace cohort {
namespace {

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

timeval to_timeval(std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  return tv;
}

class RedisLoader final : public CacheLoader {
 public:
  RedisLoader(std::string host, uint16_t port, std::chrono::milliseconds timeout)
      : host_(std::move(host)), port_(port), timeout_(timeout) {}

  // Connects; the error names the address and what to do.
  Status connect() {
    ctx_.reset();
    const timeval tv = to_timeval(timeout_);
    redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, tv);
    if (c == nullptr) return Error(Errc::kUnavailable, "redis: out of memory for a connection");
    std::unique_ptr<redisContext, ContextFree> owned(c);
    if (c->err != 0) {
      return Error(Errc::kUnavailable, "redis: cannot connect to " + host_ + ":" +
                                           std::to_string(port_) + " (" + c->errstr +
                                           "); is redis-server running there?");
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
      return Error(Errc::kUnavailable, "redis: cannot set the timeout on " + host_);
    }
    ctx_ = std::move(owned);
    return {};
  }

  LoadStatus load(std::string_view key, std::string* value) override {
    Reply r = command("GET %b", key.data(), key.size());
    if (!r) return LoadStatus::kError;
    if (r->type == REDIS_REPLY_NIL) return LoadStatus::kNotFound;
    if (r->type != REDIS_REPLY_STRING) return LoadStatus::kError;
    value->assign(r->str, r->len);
    return LoadStatus::kOk;
  }

  bool store(std::string_view key, std::string_view value) override {
    Reply r = command("SET %b %b", key.data(), key.size(), value.data(), value.size());
    return r && r->type == REDIS_REPLY_STATUS && std::strcmp(r->str, "OK") == 0;
  }

  bool remove(std::string_view key) override {
    Reply r = command("DEL %b", key.data(), key.size());
    return r && r->type == REDIS_REPLY_INTEGER;
  }

  const char* name() const noexcept override { return "redis"; }

 private:
  template <typename... Args>
  Reply command(const char* format, Args... args) {
    if (!ctx_ && !connect().ok()) return nullptr;
    Reply r(static_cast<redisReply*>(redisCommand(ctx_.get(), format, args...)));
    if (!r || ctx_->err != 0) {
      ctx_.reset();  // broken: reconnect at the next call
      return nullptr;
    }
    if (r->type == REDIS_REPLY_ERROR) return nullptr;
    return r;
  }

  std::string host_;
  uint16_t port_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<redisContext, ContextFree> ctx_;
};

}  // namespace

Result<std::unique_ptr<CacheLoader>> make_redis_loader(const std::string& host, uint16_t port,
                                                       std::chrono::milliseconds timeout) {
  auto loader = std::make_unique<RedisLoader>(host, port, timeout);
  if (Status s = loader->connect(); !s.ok()) return std::move(s).error();
  return std::unique_ptr<CacheLoader>(std::move(loader));
}

}  // namespace cohort
