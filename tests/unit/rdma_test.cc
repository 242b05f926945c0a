// The rdma transport's checks that run on any host, with or without an RDMA device: options,
// the memlock check, the choice of device and port, and (where no device exists) the error
// that says so. The transport on a real device is tested in the Soft-RoCE guest
// (tests/integration/rdma_integration_test.cc, through scripts/rdma-vm).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "membership/engine_transport_dgram.h"
#include "transport/rdma/rdma_transport.h"

namespace cohort::transport::rdma {
namespace {

RdmaOptions valid() {
  RdmaOptions o;
  o.members = {"127.0.0.1:7000", "127.0.0.1:7002"};
  o.self = 0;
  o.group = std::string(1, 'g');  // not a literal: GCC 12's -Wrestrict misfires on it at -O3
  return o;
}

void expect_error(const Status& s, const std::string& part) {
  ASSERT_FALSE(s.ok()) << part;
  EXPECT_NE(s.error().message().find(part), std::string::npos) << s.error().message();
}

TEST(RdmaOptions, ValidOptionsPass) {
  EXPECT_TRUE(check_options(valid()).ok());
}

TEST(RdmaOptions, RefusesBadOptionsNamingTheFix) {
  auto o = valid();
  o.group = "a/b";
  expect_error(check_options(o), "rdma: group name 'a/b'");
  o = valid();
  o.self = 2;
  expect_error(check_options(o), "rdma: member 2 of 2");
  o = valid();
  o.members[1] = "host:7002";
  expect_error(check_options(o), "rdma: member 1 address 'host:7002' is not an IPv4 address:port");
  o = valid();
  o.members[1] = "127.0.0.1:7001";
  expect_error(check_options(o), "space the ports at least 2 apart");
  o = valid();
  o.log_bytes = 3 << 20;
  expect_error(check_options(o), "rdma: log size 3145728 must be a power of two");
  o = valid();
  o.signal_every = 200;
  expect_error(check_options(o), "rdma: signal_every 200 must be 1..124");
  o = valid();
  o.send_queue_depth = 8;
  expect_error(check_options(o), "send_queue_depth 8 must be 32..16384");
  o = valid();
  o.gid_index = 300;
  expect_error(check_options(o), "gid_index 300");
}

TEST(RdmaMemlock, TooLowNamesTheNumbersAndTheFix) {
  const Status s = check_memlock(3ull << 20, 64 << 10, false);
  expect_error(s, "pins 3 MiB, but the locked-memory limit (RLIMIT_MEMLOCK) is 64 KiB");
  expect_error(s, "ulimit -l unlimited");
  expect_error(s, "LimitMEMLOCK=infinity");
  expect_error(s, "/etc/security/limits.conf");
  EXPECT_TRUE(check_memlock(3ull << 20, 4ull << 20, false).ok());
  EXPECT_TRUE(check_memlock(3ull << 20, 64 << 10, true).ok());  // CAP_IPC_LOCK
  EXPECT_TRUE(check_memlock(3ull << 20, ~uint64_t{0}, false).ok());
}

std::vector<PortInfo> found() {
  return {{"mlx5_0", 1, false, "DOWN", "InfiniBand"},
          {"mlx5_0", 2, true, "ACTIVE", "InfiniBand"},
          {"rxe0", 1, true, "ACTIVE", "Ethernet"}};
}

TEST(RdmaDiscovery, PicksTheFirstActivePortOrTheNamedOne) {
  auto p = choose_port(found(), "", 0);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->device, "mlx5_0");
  EXPECT_EQ(p->port, 2u);
  p = choose_port(found(), "rxe0", 0);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->device, "rxe0");
  p = choose_port(found(), "", 1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->device, "rxe0");  // mlx5_0 port 1 is down
}

TEST(RdmaDiscovery, ErrorsListWhatWasFound) {
  expect_error(choose_port({}, "", 0).ok() ? Status() : Status(choose_port({}, "", 0).error()),
               "rdma: no RDMA device found (ibv_get_device_list() returned none)");
  auto e = choose_port(found(), "mlx4_0", 0);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message(),
            "rdma: device 'mlx4_0' not found; devices found: mlx5_0 port 1 DOWN (InfiniBand), "
            "mlx5_0 port 2 ACTIVE (InfiniBand), rxe0 port 1 ACTIVE (Ethernet); fix device");
  e = choose_port(found(), "mlx5_0", 1);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("rdma: mlx5_0 port 1 is DOWN; bring its link up"),
            std::string::npos)
      << e.error().message();
  std::vector<PortInfo> down = {{"rxe0", 1, false, "DOWN", "Ethernet"}};
  e = choose_port(down, "", 0);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("rdma: no active port; found: rxe0 port 1 DOWN (Ethernet)"),
            std::string::npos)
      << e.error().message();
  e = choose_port(found(), "rxe0", 3);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("no port 3 on rxe0"), std::string::npos);
}

// On a host without a device (this machine, CI), create() says so and what to do.
TEST(RdmaTransport, CreateWithoutADeviceSaysSo) {
  std::error_code ec;
  if (std::filesystem::exists("/sys/class/infiniband", ec) &&
      !std::filesystem::is_empty("/sys/class/infiniband", ec)) {
    GTEST_SKIP() << "this host has an RDMA device; the guest tests cover create() on it";
  }
  auto t = RdmaTransport::create(valid());
  ASSERT_FALSE(t.ok());
  const std::string m = t.error().message();
  EXPECT_TRUE(m.find("rdma: no RDMA device found") != std::string::npos ||
              m.find("rdma: this kernel has no RDMA support") != std::string::npos)
      << m;
  EXPECT_NE(m.find("scripts/rdma-vm"), std::string::npos) << m;
}

// The group engine's adapter for the datagram transports compiles over rdma as it is: the
// surface is udp's (subscription(), poll(), flush(), declare_gone(), the control channel).
std::unique_ptr<membership::EngineTransport> engine_adapter(std::unique_ptr<RdmaTransport> t) {
  return std::make_unique<membership::DgramEngineTransport<RdmaTransport>>(std::move(t), "rdma");
}

TEST(RdmaTransport, FitsTheGroupEnginesDatagramAdapter) {
  auto(*make)(std::unique_ptr<RdmaTransport>) = &engine_adapter;
  EXPECT_NE(make, nullptr);
}

}  // namespace
}  // namespace cohort::transport::rdma
