// The `cohort` command: `cohort node` runs a member, `cohort demo` the main job.
#include <CLI/CLI.hpp>

#include "apps/cli/demo.h"
#include "apps/cli/node.h"
#include "apps/cli/stat.h"
#include "cohort/version.h"

int main(int argc, char** argv) {
  CLI::App app{"cohort: virtual synchrony on kernel-bypass transports"};
  app.require_subcommand(1);
  app.set_version_flag("--version", cohort::kVersion);

  cohort::cli::NodeOptions node;
  CLI::App* node_cmd = app.add_subcommand("node", "run one member of a group");
  node_cmd->add_option("--group", node.group, "group name")->capture_default_str();
  node_cmd->add_option("--node", node.node, "this process's slot, 0..slots-1")->required();
  node_cmd->add_option("--slots", node.slots, "slots of the group (at most 32)")
      ->capture_default_str();
  node_cmd->add_flag("--bootstrap", node.bootstrap, "found the group instead of joining it");
  node_cmd->add_option("--shm-dir", node.shm_dir,
                       "shared-memory folder (default /dev/shm/cohort-<uid>)");
  node_cmd->add_option("--idle", node.idle, "busy | spin_yield | backoff")->capture_default_str();
  node_cmd->add_option("--rate", node.rate, "messages per second to send (0: none)")
      ->capture_default_str();
  node_cmd->add_option("--size", node.size, "message bytes, 24..4096")->capture_default_str();
  node_cmd->add_option("--mode", node.mode, "fifo | total | safe")->capture_default_str();
  node_cmd->add_option("--run-ms", node.run_ms, "how long to send")->capture_default_str();
  node_cmd->add_option("--drain-ms", node.drain_ms, "then how long to deliver before leaving")
      ->capture_default_str();
  node_cmd->add_option("--log", node.log, "write every delivery to this file");
  node_cmd->add_option("--heartbeat-us", node.heartbeat_us, "heartbeat interval")
      ->capture_default_str();
  node_cmd->add_option("--suspect-us", node.suspect_us, "silence before a member is suspected")
      ->capture_default_str();

  cohort::cli::DemoOptions demo;
  CLI::App* demo_cmd = app.add_subcommand("demo", "3 members over shm, one killed, one joins");
  demo_cmd->add_option("--rate", demo.rate, "messages per second per member")
      ->capture_default_str();
  demo_cmd->add_flag("--keep", demo.keep, "keep the delivery logs");

  cohort::cli::StatOptions stat;
  CLI::App* stat_cmd = app.add_subcommand("stat", "live counters and views of running members");
  stat_cmd->add_option("--group", stat.group, "group name")->capture_default_str();
  stat_cmd->add_option("--shm-dir", stat.shm_dir,
                       "shared-memory folder (default /dev/shm/cohort-<uid>)");
  stat_cmd->add_option("--watch-ms", stat.watch_ms, "print again every so many ms (0: once)")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (stat_cmd->parsed()) return cohort::cli::run_stat(stat);
  if (node_cmd->parsed()) return cohort::cli::run_node(node);
  if (demo_cmd->parsed()) return cohort::cli::run_demo(demo);
  return 2;
}
