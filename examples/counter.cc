// A member of group "counter" that sends ten messages and counts what it delivers.
#include <cohort/group.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <span>
#include <thread>

struct Counter : cohort::GroupListener {
  std::atomic<int> delivered{0};
  void on_deliver(const cohort::Message& m) override { delivered += m.bytes.size() == 5; }
};

int main(int argc, char** argv) {
  Counter app;
  cohort::GroupOptions options;
  options.name = "counter";
  options.bootstrap = true;  // found the group; others would join
  if (argc > 1) options.shm_dir = argv[1];
  auto group = cohort::Group::create(options, &app);
  if (!group.ok()) return std::fprintf(stderr, "%s\n", group.error().message().c_str()), 1;
  if (!(*group)->start().ok()) return 1;  // the member's own thread
  while (!(*group)->in_view()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto hello = std::as_bytes(std::span("hello", 5));
  for (int i = 0; i < 10; ++i) (*group)->send(hello, cohort::DeliveryMode::kTotal);
  while (app.delivered < 10) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::printf("delivered %d messages in view %llu\n", app.delivered.load(),
              static_cast<unsigned long long>((*group)->stats().view_id));
  (*group)->leave();
  return 0;
}
