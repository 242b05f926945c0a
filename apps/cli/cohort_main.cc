// The `cohort` command: `cohort node` runs a member, `cohort demo` the main job.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iterator>
#include <string>
#include <vector>

#include "apps/cli/bench.h"
#include "apps/cli/cache_cmd.h"
#include "apps/cli/demo.h"
#include "apps/cli/lock_cmd.h"
#include "apps/cli/node.h"
#include "apps/cli/stat.h"
#include "cohort/version.h"

int main(int argc, char** argv) {
  CLI::App app{"cohort: virtual synchrony on kernel-bypass transports"};
  app.require_subcommand(1);
  app.set_version_flag("--version", cohort::kVersion);

  // `cohort node`: every flag is also a config key; a flag given explicitly wins over the
  // config file and the environment (it is applied as the last --set).
  std::string config_file;
  std::vector<std::string> sets;
  bool print_config = false;
  CLI::App* node_cmd = app.add_subcommand("node", "run one member of a group");
  node_cmd->add_option("--config", config_file, "TOML config (keys: --print-config)");
  node_cmd->add_option("--set", sets, "key=value, over the config and the environment");
  node_cmd->add_flag("--print-config", print_config, "print every key, its value and origin");
  struct Flag {
    const char* name;
    const char* key;
    const char* help;
    bool is_flag = false;
  };
  static const Flag kFlags[] = {
      {"--group", "group.name", "group name"},
      {"--node", "group.node", "this process's slot, 0..slots-1"},
      {"--slots", "group.slots", "slots of the group (at most 32)"},
      {"--bootstrap", "group.bootstrap", "found the group instead of joining it", true},
      {"--shm-dir", "group.shm_dir", "shared-memory folder (default /dev/shm/cohort-<uid>)"},
      {"--transport", "group.transport", "shm | udp | dpdk | rdma"},
      {"--rdma-device", "rdma.device", "rdma: the verbs device (default: the first active)"},
      {"--peers", "group.peers", "udp, dpdk, rdma: a.b.c.d:port of every member, comma-separated"},
      {"--threading", "runtime.threading", "shared | dedicated | auto (dedicated on 4+ cores)"},
      {"--order", "group.order", "tickets | sequencer | auto (tickets over shm: one hop)"},
      {"--dpdk-eal", "dpdk.eal", "dpdk: the EAL's arguments, space-separated"},
      {"--drop-rate", "fault.drop_rate", "udp, dpdk: datagrams lost on purpose, 0..1 (tests)"},
      {"--cut-off", "fault.cut_off", "udp, dpdk: members to partition this one from (tests)"},
      {"--cut-after-ms", "fault.cut_after_ms", "the partition starts this long after start"},
      {"--cut-for-ms", "fault.cut_for_ms", "and lasts this long (0: to the end)"},
      {"--idle", "runtime.idle_policy", "busy | spin_yield | backoff"},
      {"--idle-spins", "runtime.idle_spins", "idle polls spinning before a yield (-1: default)"},
      {"--rate", "node.rate", "messages per second to send (0: none)"},
      {"--size", "node.size", "message bytes, 24..4096"},
      {"--mode", "node.mode", "fifo | total | safe"},
      {"--run-ms", "node.run_ms", "how long to send"},
      {"--drain-ms", "node.drain_ms", "then how long to deliver before leaving"},
      {"--log", "node.log", "log sends, deliveries, views and events here (node_log.h)"},
      {"--heartbeat-us", "group.heartbeat_us", "heartbeat interval"},
      {"--suspect-us", "group.suspect_us", "silence before a member is suspected"},
      {"--inline", "node.inline", "run the member on the main thread (bench)", true},
      {"--pin", "node.pin", "pin the member's thread to this cpu"},
      {"--flood", "node.flood", "send as fast as backpressure allows", true},
      {"--all-latency", "node.all_latency", "latency of every delivery, not own only", true},
      {"--sample", "node.sample", "time one delivery in N (floods: fewer clock reads)"},
      {"--wait-members", "node.wait_members", "send once the view has this many members"},
      {"--rt-priority", "node.rt_priority", "run SCHED_FIFO once the view is whole (0: no)"},
      {"--rejoin", "node.rejoin", "when removed, join again as a new incarnation", true},
  };
  std::vector<std::pair<const Flag*, CLI::Option*>> given;
  std::vector<std::string> flag_values(std::size(kFlags));
  bool bootstrap_flag = false;
  for (size_t i = 0; i < std::size(kFlags); ++i) {
    const Flag& f = kFlags[i];
    CLI::Option* opt = f.is_flag ? node_cmd->add_flag(f.name, bootstrap_flag, f.help)
                                 : node_cmd->add_option(f.name, flag_values[i], f.help);
    given.emplace_back(&f, opt);
  }

  cohort::cli::DemoOptions demo;
  CLI::App* demo_cmd = app.add_subcommand("demo", "3 members over shm, one killed, one joins");
  demo_cmd->add_option("--rate", demo.rate, "messages per second per member")
      ->capture_default_str();
  demo_cmd->add_flag("--keep", demo.keep, "keep the delivery logs");
  demo_cmd->add_option("--kills", demo.kills, "SIGKILLs, each followed by a restart (1..100)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();

  cohort::cli::StatOptions stat;
  CLI::App* stat_cmd = app.add_subcommand("stat", "live counters and views of running members");
  stat_cmd->add_option("--group", stat.group, "group name")->capture_default_str();
  stat_cmd->add_option("--shm-dir", stat.shm_dir,
                       "shared-memory folder (default /dev/shm/cohort-<uid>)");
  stat_cmd->add_option("--watch-ms", stat.watch_ms, "print again every so many ms (0: once)")
      ->capture_default_str();

  cohort::cli::BenchOptions bench;
  CLI::App* bench_cmd =
      app.add_subcommand("bench", "group latency and throughput over shm, raw line beside");
  bench_cmd->add_option("--run-ms", bench.run_ms, "per scenario")->capture_default_str();
  bench_cmd->add_option("--rate", bench.rate, "messages/s of the 2-member latency run")
      ->capture_default_str();
  bench_cmd
      ->add_option(
          "--only", bench.only,
          "run these scenarios only (lat2, lat2seq, tput64, tput1k, lat3, floor); the raw line "
          "is always measured")
      ->delimiter(',');
  bench_cmd->add_flag("--rt", bench.rt,
                      "pinned members run SCHED_FIFO once the group has formed: for comparing "
                      "builds while other work runs (the figures of record run without it)");

  cohort::cli::LockCmdOptions lock;
  CLI::App* lock_cmd = app.add_subcommand("lock", "the lock service from the shell");
  lock_cmd->require_subcommand(1);
  CLI::App* lock_serve = lock_cmd->add_subcommand("serve", "a member that keeps the lock table");
  CLI::App* lock_hold = lock_cmd->add_subcommand(
      "hold", "acquire, print the fencing token, hold (or run a command), release");
  CLI::App* lock_query = lock_cmd->add_subcommand("query", "a lock's holders, waiters and token");
  for (CLI::App* c : {lock_serve, lock_hold, lock_query}) {
    c->add_option("--group", lock.group, "group name")->capture_default_str();
    c->add_option("--shm-dir", lock.shm_dir,
                  "shared-memory folder (default /dev/shm/cohort-<uid>)");
    c->add_option("--slots", lock.slots, "slots of the group")->capture_default_str();
    c->add_option("--node", lock.node, "this member's slot (hold, query: -1 picks a free one)")
        ->capture_default_str();
  }
  lock_serve->add_flag("--bootstrap", lock.bootstrap, "found the group instead of joining it");
  for (CLI::App* c : {lock_hold, lock_query}) {
    c->add_option("--name", lock.name, "the lock")->required();
    c->add_option("--join-ms", lock.join_ms, "give up joining after this long")
        ->capture_default_str();
  }
  lock_hold->add_flag("--shared", lock.shared, "shared mode instead of exclusive");
  lock_hold->add_option("--hold-ms", lock.hold_ms, "hold this long (when no command is given)")
      ->capture_default_str();
  lock_hold->add_option("--timeout-ms", lock.timeout_ms, "give up waiting for the grant")
      ->capture_default_str();
  lock_hold->add_option("command", lock.command,
                        "run while holding, with COHORT_LOCK_FENCE and COHORT_LOCK_NAME set");

  cohort::cli::CacheCmdOptions cache;
  CLI::App* cache_cmd = app.add_subcommand("cache", "the cooperative cache from the shell");
  cache_cmd->require_subcommand(1);
  CLI::App* cache_serve = cache_cmd->add_subcommand("serve", "a member that caches");
  CLI::App* cache_get = cache_cmd->add_subcommand("get", "get a key: value on stdout");
  CLI::App* cache_put = cache_cmd->add_subcommand("put", "write a key through, ordered");
  CLI::App* cache_stats = cache_cmd->add_subcommand("stats", "every running member's counters");
  for (CLI::App* c : {cache_serve, cache_get, cache_put, cache_stats}) {
    c->add_option("--group", cache.group, "group name")->capture_default_str();
    c->add_option("--shm-dir", cache.shm_dir,
                  "shared-memory folder (default /dev/shm/cohort-<uid>)");
  }
  for (CLI::App* c : {cache_serve, cache_get, cache_put}) {
    c->add_option("--slots", cache.slots, "slots of the group")->capture_default_str();
    c->add_option("--node", cache.node, "this member's slot (get, put: -1 picks a free one)")
        ->capture_default_str();
    c->add_option("--store", cache.store, "the backing store: redis://HOST:PORT or files:/DIR")
        ->capture_default_str();
    c->add_option("--capacity-mb", cache.capacity_mb, "cache capacity")->capture_default_str();
    c->add_option("--peer-reads", cache.peer_reads,
                  "over shm, publish this member's values in shared memory (twice the capacity) "
                  "for peers to read in place; false asks over the group")
        ->capture_default_str();
    c->add_option("--timeout-ms", cache.timeout_ms, "give up the operation after this long")
        ->capture_default_str();
    c->add_option("--join-ms", cache.join_ms, "give up joining after this long")
        ->capture_default_str();
  }
  cache_serve->add_flag("--bootstrap", cache.bootstrap, "found the group instead of joining it");
  cache_get->add_option("key", cache.key, "the key")->required();
  cache_put->add_option("key", cache.key, "the key")->required();
  cache_put->add_option("value", cache.value, "the value")->required();

  CLI11_PARSE(app, argc, argv);
  if (cache_cmd->parsed()) {
    cache.action = cache_serve->parsed() ? "serve"
                   : cache_get->parsed() ? "get"
                   : cache_put->parsed() ? "put"
                                         : "stats";
    return cohort::cli::run_cache_cmd(cache);
  }
  if (lock_cmd->parsed()) {
    lock.action = lock_serve->parsed() ? "serve" : lock_hold->parsed() ? "hold" : "query";
    return cohort::cli::run_lock_cmd(lock);
  }
  if (bench_cmd->parsed()) return cohort::cli::run_bench(bench);
  if (stat_cmd->parsed()) return cohort::cli::run_stat(stat);
  if (node_cmd->parsed()) {
    for (size_t i = 0; i < given.size(); ++i) {
      if (given[i].second->count() == 0) continue;
      sets.push_back(std::string(given[i].first->key) + "=" +
                     (given[i].first->is_flag ? "true" : flag_values[i]));
    }
    auto node = cohort::cli::load_node_options(config_file, sets, print_config);
    if (!node.ok()) {
      std::fprintf(stderr, "%s\n", node.error().message().c_str());
      return 2;
    }
    if (print_config) return 0;
    return cohort::cli::run_node(*node);
  }
  if (demo_cmd->parsed()) return cohort::cli::run_demo(demo);
  return 2;
}
