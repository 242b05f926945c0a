#include "runtime/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/log.h"

namespace cohort {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ConfigSchema test_schema() {
  ConfigSchema schema;
  schema.add_string("runtime.idle_policy", "backoff", "Idle strategy of a poll thread.",
                    {"busy", "spin_yield", "backoff"});
  schema.add_int("runtime.spin_iterations", 100, "Spins before the first yield.", 0, 1000000);
  schema.add_double("runtime.backoff_factor", 2.0, "Growth of the sleep between idle polls.");
  schema.add_bool("runtime.pin_threads", true, "Pin each agent to its core.");
  schema.add_int_list("runtime.cores", {0}, "Cores the agents run on.", 0, 4095);
  schema.add_int("transport.udp.port", 7000, "UDP port of the first member.", 1, 65535);
  schema.add_string("node.name", "n0", "Name of this member in logs.");
  add_log_config_keys(schema);
  return schema;
}

ConfigSources toml(std::string text) {
  ConfigSources sources;
  sources.toml_text = std::move(text);
  sources.toml_text_name = "cohort.toml";
  return sources;
}

std::string load_error(const ConfigSources& sources) {
  Result<Config> config = Config::load(test_schema(), sources);
  EXPECT_FALSE(config.ok());
  return config.ok() ? std::string() : config.error().message();
}

// A TOML file under the test's temporary directory, removed when the test ends.
class TempFile {
 public:
  explicit TempFile(const std::string& text)
      : path_(std::filesystem::path(::testing::TempDir()) /
              ("cohort_config_test_" + std::to_string(getpid()) + ".toml")) {
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(Config, DefaultsWhenNoSourceSaysOtherwise) {
  Result<Config> config = Config::load(test_schema(), {});
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->get_string("runtime.idle_policy"), "backoff");
  EXPECT_EQ(config->get_int("runtime.spin_iterations"), 100);
  EXPECT_EQ(config->get_double("runtime.backoff_factor"), 2.0);
  EXPECT_TRUE(config->get_bool("runtime.pin_threads"));
  EXPECT_EQ(config->get_int_list("runtime.cores"), std::vector<int64_t>{0});
  EXPECT_EQ(config->get_string("log.level"), "info");
  EXPECT_EQ(config->origin("runtime.spin_iterations"), ConfigOrigin::kDefault);
  EXPECT_EQ(config->origin_detail("runtime.spin_iterations"), "");

  const Config defaults = Config::defaults(test_schema());
  EXPECT_EQ(defaults.get_int("transport.udp.port"), 7000);
}

TEST(Config, FileOverridesDefault) {
  TempFile file("[runtime]\nspin_iterations = 500\nidle_policy = \"busy\"\n");
  ConfigSources sources;
  sources.file_path = file.path();
  Result<Config> config = Config::load(test_schema(), sources);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->get_int("runtime.spin_iterations"), 500);
  EXPECT_EQ(config->get_string("runtime.idle_policy"), "busy");
  EXPECT_EQ(config->origin("runtime.spin_iterations"), ConfigOrigin::kFile);
  EXPECT_EQ(config->origin_detail("runtime.spin_iterations"), file.path() + " line 2");
  EXPECT_EQ(config->get_int("transport.udp.port"), 7000);  // untouched keys keep defaults
  EXPECT_EQ(config->origin("transport.udp.port"), ConfigOrigin::kDefault);
}

TEST(Config, MissingFileRefusedNamingThePath) {
  ConfigSources sources;
  sources.file_path = "/nonexistent/cohort.toml";
  Result<Config> config = Config::load(test_schema(), sources);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), Errc::kNotFound);
  EXPECT_THAT(config.error().message(), HasSubstr("'/nonexistent/cohort.toml'"));
}

TEST(Config, EnvOverridesFile) {
  ConfigSources sources = toml("runtime.spin_iterations = 500\nnode.name = \"file\"\n");
  sources.env = {"PATH=/usr/bin", "COHORT_RUNTIME_SPIN_ITERATIONS=700", "HOME=/root"};
  Result<Config> config = Config::load(test_schema(), sources);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->get_int("runtime.spin_iterations"), 700);
  EXPECT_EQ(config->origin("runtime.spin_iterations"), ConfigOrigin::kEnv);
  EXPECT_EQ(config->origin_detail("runtime.spin_iterations"), "COHORT_RUNTIME_SPIN_ITERATIONS");
  EXPECT_EQ(config->get_string("node.name"), "file");
}

TEST(Config, SetOverridesEnvAndTheLastSetWins) {
  ConfigSources sources = toml("runtime.spin_iterations = 500\n");
  sources.env = {"COHORT_RUNTIME_SPIN_ITERATIONS=700", "COHORT_RUNTIME_IDLE_POLICY=spin_yield"};
  sources.cli_sets = {"runtime.spin_iterations=900", "runtime.idle_policy=busy",
                      "runtime.idle_policy=backoff"};
  Result<Config> config = Config::load(test_schema(), sources);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->get_int("runtime.spin_iterations"), 900);
  EXPECT_EQ(config->origin("runtime.spin_iterations"), ConfigOrigin::kCli);
  EXPECT_EQ(config->origin_detail("runtime.spin_iterations"), "--set");
  EXPECT_EQ(config->get_string("runtime.idle_policy"), "backoff");
}

TEST(Config, NestedTablesAndDottedKeysMapToTheSameKeys) {
  ConfigSources sources = toml(
      "[transport.udp]\nport = 7100\n"
      "[runtime]\npin_threads = false\n"
      "[log]\nlevel = \"debug\"\n");
  Result<Config> config = Config::load(test_schema(), sources);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->get_int("transport.udp.port"), 7100);
  EXPECT_FALSE(config->get_bool("runtime.pin_threads"));
  EXPECT_EQ(config->get_string("log.level"), "debug");

  Result<Config> dotted = Config::load(test_schema(), toml("transport.udp.port = 7200\n"));
  ASSERT_TRUE(dotted.ok()) << dotted.error().message();
  EXPECT_EQ(dotted->get_int("transport.udp.port"), 7200);

  Result<Config> inline_table = Config::load(test_schema(), toml("transport = {udp = {port = 1}}"));
  ASSERT_TRUE(inline_table.ok()) << inline_table.error().message();
  EXPECT_EQ(inline_table->get_int("transport.udp.port"), 1);
}

TEST(Config, UnknownKeyInFileRefusedWithSuggestion) {
  const std::string message = load_error(toml("[runtime]\nidle_polcy = \"busy\"\n"));
  EXPECT_EQ(message,
            "config: unknown key 'runtime.idle_polcy' in cohort.toml line 2; did you mean "
            "'runtime.idle_policy'?");
  // The right name under the wrong table is found by its last segment.
  EXPECT_THAT(load_error(toml("spin_iterations = 3\n")),
              HasSubstr("did you mean 'runtime.spin_iterations'?"));
  // Nothing close: no guess.
  const std::string far = load_error(toml("[runtime]\nwibble_wobble = 1\n"));
  EXPECT_THAT(far, HasSubstr("unknown key 'runtime.wibble_wobble' in cohort.toml line 2"));
  EXPECT_THAT(far, Not(HasSubstr("did you mean")));
  // A quoted key with a dot is one TOML key, not a path.
  EXPECT_THAT(load_error(toml("\"node.name\" = \"x\"\n")), HasSubstr("unknown key 'node.name'"));
}

TEST(Config, WrongTypeInFileRefusedNamingKeyAndLine) {
  Result<Config> config =
      Config::load(test_schema(), toml("[runtime]\n\nspin_iterations = \"many\"\n"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(config.error().message(),
            "config: key 'runtime.spin_iterations' in cohort.toml line 3 must be an integer, got "
            "a string");
  EXPECT_THAT(load_error(toml("runtime = 5\n")),
              HasSubstr("'runtime' in cohort.toml line 1 must be a table of keys, got an integer"));
  EXPECT_THAT(load_error(toml("runtime.pin_threads = 1\n")),
              HasSubstr("must be a boolean, got an integer"));
  EXPECT_THAT(load_error(toml("runtime.cores = [1, \"2\"]\n")),
              HasSubstr("must be a list of integers, got a string at index 1"));
}

TEST(Config, TomlSyntaxErrorRefusedWithLine) {
  Result<Config> config = Config::load(test_schema(), toml("[runtime]\nspin_iterations = = 3\n"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), Errc::kParse);
  EXPECT_THAT(config.error().message(), HasSubstr("config: cohort.toml line 2"));
}

TEST(Config, UnknownCohortEnvVarRefusedNamingIt) {
  ConfigSources sources;
  sources.env = {"COHORT_RUNTIME_IDLE_POLCY=busy"};
  Result<Config> config = Config::load(test_schema(), sources);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), Errc::kNotFound);
  EXPECT_THAT(config.error().message(),
              HasSubstr("unknown environment variable COHORT_RUNTIME_IDLE_POLCY"));
  EXPECT_THAT(config.error().message(),
              HasSubstr("did you mean COHORT_RUNTIME_IDLE_POLICY (key 'runtime.idle_policy')?"));
  EXPECT_THAT(config.error().message(), HasSubstr("kConfigEnvAllowList"));
}

TEST(Config, AllowListedCohortEnvVarsAreNotConfig) {
  ConfigSources sources;
  sources.env = {"COHORT_LONG_TESTS=1", "COHORT_BUILD_DIR=build"};
  EXPECT_TRUE(Config::load(test_schema(), sources).ok());
}

TEST(Config, BadEnvValueRefusedNamingVariableAndKey) {
  ConfigSources sources;
  sources.env = {"COHORT_RUNTIME_SPIN_ITERATIONS=lots"};
  EXPECT_EQ(load_error(sources),
            "config: key 'runtime.spin_iterations' from environment variable "
            "COHORT_RUNTIME_SPIN_ITERATIONS must be a 64-bit decimal integer, got 'lots'");
  sources.env = {"COHORT_RUNTIME_PIN_THREADS=yes"};
  EXPECT_THAT(load_error(sources), HasSubstr("must be a boolean (true, false, 1 or 0)"));
  sources.env = {"COHORT_RUNTIME_BACKOFF_FACTOR=nan"};
  EXPECT_THAT(load_error(sources), HasSubstr("must be a finite number, got 'nan'"));
}

TEST(Config, BadIntInSetRefused) {
  ConfigSources sources;
  sources.cli_sets = {"runtime.spin_iterations=12x"};
  Result<Config> config = Config::load(test_schema(), sources);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), Errc::kParse);
  EXPECT_EQ(config.error().message(),
            "config: key 'runtime.spin_iterations' from --set must be a 64-bit decimal integer, "
            "got '12x'");
  sources.cli_sets = {"runtime.spin_iterations=99999999999999999999"};
  EXPECT_THAT(load_error(sources), HasSubstr("got '99999999999999999999'"));
}

TEST(Config, MalformedOrUnknownSetRefused) {
  ConfigSources sources;
  sources.cli_sets = {"runtime.spin_iterations"};
  EXPECT_THAT(load_error(sources), HasSubstr("--set 'runtime.spin_iterations' must have the form"));
  sources.cli_sets = {"=3"};
  EXPECT_THAT(load_error(sources), HasSubstr("must have the form key=value"));
  sources.cli_sets = {"runtime.spin_iteration=3"};
  EXPECT_EQ(load_error(sources),
            "config: unknown key 'runtime.spin_iteration' from --set; did you mean "
            "'runtime.spin_iterations'?");
}

TEST(Config, IntegersOutOfRangeRefused) {
  EXPECT_EQ(load_error(toml("[runtime]\nspin_iterations = 2000000\n")),
            "config: key 'runtime.spin_iterations' in cohort.toml line 2 must be in [0, 1000000], "
            "got 2000000");
  ConfigSources sources;
  sources.env = {"COHORT_TRANSPORT_UDP_PORT=0"};
  EXPECT_THAT(load_error(sources),
              HasSubstr("key 'transport.udp.port' from environment variable "
                        "COHORT_TRANSPORT_UDP_PORT must be in [1, 65535], got 0"));
  sources.env = {};
  sources.cli_sets = {"runtime.cores=1,5000"};
  EXPECT_THAT(load_error(sources),
              HasSubstr("key 'runtime.cores' from --set must have every element in [0, 4095], "
                        "got 5000"));
  // The bounds are inclusive.
  sources.cli_sets = {"transport.udp.port=65535", "runtime.spin_iterations=0"};
  EXPECT_TRUE(Config::load(test_schema(), sources).ok());
}

TEST(Config, StringsOutsideTheAllowedSetRefused) {
  ConfigSources sources;
  sources.cli_sets = {"runtime.idle_policy=fast"};
  Result<Config> config = Config::load(test_schema(), sources);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(config.error().message(),
            "config: key 'runtime.idle_policy' from --set must be one of busy, spin_yield, "
            "backoff, got 'fast'");
  sources.cli_sets = {"runtime.idle_policy=bussy"};
  EXPECT_THAT(load_error(sources), HasSubstr("; did you mean 'busy'?"));
  EXPECT_THAT(load_error(toml("log.level = \"verbose\"\n")),
              HasSubstr("key 'log.level' in cohort.toml line 1 must be one of trace"));
  // A key without an allowed set takes any string.
  sources.cli_sets = {"node.name=anything at all"};
  EXPECT_TRUE(Config::load(test_schema(), sources).ok());
}

TEST(Config, IntListsFromEverySource) {
  Result<Config> from_file = Config::load(test_schema(), toml("runtime.cores = [2, 3, 5]\n"));
  ASSERT_TRUE(from_file.ok()) << from_file.error().message();
  EXPECT_EQ(from_file->get_int_list("runtime.cores"), (std::vector<int64_t>{2, 3, 5}));

  ConfigSources sources;
  sources.env = {"COHORT_RUNTIME_CORES=1, 3-5"};
  Result<Config> from_env = Config::load(test_schema(), sources);
  ASSERT_TRUE(from_env.ok()) << from_env.error().message();
  EXPECT_EQ(from_env->get_int_list("runtime.cores"), (std::vector<int64_t>{1, 3, 4, 5}));

  sources.cli_sets = {"runtime.cores=[]"};
  Result<Config> empty = Config::load(test_schema(), sources);
  ASSERT_TRUE(empty.ok()) << empty.error().message();
  EXPECT_TRUE(empty->get_int_list("runtime.cores").empty());

  sources.cli_sets = {"runtime.cores=1,x"};
  EXPECT_THAT(load_error(sources), HasSubstr("got '1,x' ('x' is not an integer)"));
  sources.cli_sets = {"runtime.cores=7-4"};
  EXPECT_THAT(load_error(sources), HasSubstr("range '7-4' runs backwards"));
  sources.cli_sets = {"runtime.cores=0-9223372036854775807"};
  EXPECT_THAT(load_error(sources), HasSubstr("more than 4096 elements"));
}

TEST(Config, DoublesAcceptExactIntegersFromToml) {
  Result<Config> config = Config::load(test_schema(), toml("runtime.backoff_factor = 3\n"));
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->get_double("runtime.backoff_factor"), 3.0);
  ConfigSources sources;
  sources.env = {"COHORT_RUNTIME_BACKOFF_FACTOR=1.5"};
  config = Config::load(test_schema(), sources);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->get_double("runtime.backoff_factor"), 1.5);
}

TEST(Config, DescribeListsEveryKeyWithItsOriginAndLoadsBack) {
  ConfigSources sources = toml("[runtime]\nspin_iterations = 500\n");
  sources.env = {"COHORT_RUNTIME_IDLE_POLICY=busy"};
  sources.cli_sets = {"runtime.cores=2,3", "node.name=say \"hi\"\\"};
  Result<Config> config = Config::load(test_schema(), sources);
  ASSERT_TRUE(config.ok()) << config.error().message();
  const std::string text = config->describe();
  EXPECT_THAT(text, HasSubstr("# Idle strategy of a poll thread. Must be one of busy, "
                              "spin_yield, backoff.\nruntime.idle_policy = \"busy\"  # env: "
                              "COHORT_RUNTIME_IDLE_POLICY\n"));
  EXPECT_THAT(text, HasSubstr("# Spins before the first yield. Must be in [0, 1000000].\n"));
  EXPECT_THAT(text, HasSubstr("runtime.spin_iterations = 500  # file: cohort.toml line 2\n"));
  EXPECT_THAT(text, HasSubstr("runtime.cores = [2, 3]  # cli: --set\n"));
  EXPECT_THAT(text, HasSubstr("runtime.backoff_factor = 2.0  # default\n"));
  EXPECT_THAT(text, HasSubstr("transport.udp.port = 7000  # default\n"));
  const ConfigSchema schema = test_schema();
  for (const ConfigKey& key : schema.keys()) EXPECT_THAT(text, HasSubstr(key.name + " = "));

  // The description is valid TOML that reproduces every value.
  Result<Config> again = Config::load(test_schema(), toml(text));
  ASSERT_TRUE(again.ok()) << again.error().message() << "\n" << text;
  EXPECT_EQ(again->get_string("runtime.idle_policy"), "busy");
  EXPECT_EQ(again->get_int("runtime.spin_iterations"), 500);
  EXPECT_EQ(again->get_int_list("runtime.cores"), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(again->get_string("node.name"), "say \"hi\"\\");
  EXPECT_EQ(again->get_double("runtime.backoff_factor"), 2.0);
}

TEST(Config, EnvNamesAndCapture) {
  EXPECT_EQ(config_env_name("runtime.idle_policy"), "COHORT_RUNTIME_IDLE_POLICY");
  // Only COHORT_ entries are captured; reading the environment does not change it.
  for (const std::string& entry : capture_environment()) {
    EXPECT_EQ(entry.rfind("COHORT_", 0), 0u) << entry;
  }
}

TEST(Config, LogOptionsComeFromConfig) {
  ConfigSources sources;
  sources.cli_sets = {"log.level=warn", "log.file=/tmp/x.log", "log.queue_size=64"};
  Result<Config> config = Config::load(test_schema(), sources);
  ASSERT_TRUE(config.ok()) << config.error().message();
  const LogOptions options = log_options_from_config(*config);
  EXPECT_EQ(options.level, "warn");
  EXPECT_EQ(options.file, "/tmp/x.log");
  EXPECT_EQ(options.queue_size, 64u);
}

TEST(ConfigDeathTest, MisuseOfTheGettersAsserts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const Config config = Config::defaults(test_schema());
  EXPECT_DEATH((void)config.get_int("runtime.no_such_key"), "no key 'runtime.no_such_key'");
  EXPECT_DEATH((void)config.get_int("runtime.idle_policy"), "is a string, read as an integer");
}

TEST(ConfigDeathTest, MalformedSchemaAsserts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(test_schema().add_int("runtime.spin_iterations", 1, "again"), "declared twice");
  EXPECT_DEATH(test_schema().add_int("runtime", 1, "both"), "both a value and a table");
  EXPECT_DEATH(ConfigSchema().add_int("a.b", 5, "x", 0, 3), "default breaks");
  EXPECT_DEATH(ConfigSchema().add_int("A.b", 0, "x"), "name must be");
}

}  // namespace
}  // namespace cohort
