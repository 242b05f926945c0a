// Config: every knob cohort has, declared once in a schema and resolved from four layers.
//
// A ConfigSchema lists the keys: a dotted name ("runtime.idle_policy"), a type, a default, a
// one-line description and optional limits. Config::load() resolves each key from, in increasing
// precedence:
//   1. the schema's default;
//   2. a TOML file (or TOML text, for tests): nested tables map to dotted keys, so
//      `[runtime] idle_policy = "busy"` and `runtime.idle_policy = "busy"` mean the same;
//   3. environment variables COHORT_<KEY> with the key upper-cased and '.' turned into '_'
//      (runtime.idle_policy -> COHORT_RUNTIME_IDLE_POLICY);
//   4. command-line overrides "key=value" (from `--set key=value`).
// Anything the schema does not know is refused rather than ignored: a misspelt key that is
// silently dropped runs a benchmark with the default and reports the wrong number.
//
// Loading happens once, on the control path, before any core starts; a Config is immutable
// afterwards and may be read from any thread. The hot path must not call the getters (they
// look the key up by name); read the values into plain fields at setup instead.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runtime/result.h"

namespace cohort {

enum class ConfigType : uint8_t { kInt, kDouble, kBool, kString, kIntList };

// "an integer", "a number", "a boolean", "a string", "a list of integers": reads after "must be".
const char* config_type_name(ConfigType type) noexcept;

// The alternatives are in ConfigType's order, so value.index() == static_cast<size_t>(type).
using ConfigValue = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>>;

// Longest int list any source may give, ranges expanded: far above any core count, and low
// enough that "0-4000000000" in an env variable is an error rather than an allocation.
inline constexpr size_t kConfigMaxListLength = 4096;

// COHORT_* environment variables that are not config keys and so must not be refused as
// unknown ones. Add a name here when some tool or test reads its own COHORT_ variable.
// COHORT_BUILD_DIR and COHORT_LONG_TESTS are read by scripts/test and scripts/bench.
inline constexpr std::array<std::string_view, 2> kConfigEnvAllowList{"COHORT_BUILD_DIR",
                                                                     "COHORT_LONG_TESTS"};

struct ConfigKey {
  std::string name;  // dotted, segments of [a-z0-9_] starting with a letter
  ConfigType type = ConfigType::kInt;
  ConfigValue default_value;
  std::string description;  // one line, shown by Config::describe()
  // Inclusive bounds for kInt, and for each element of kIntList.
  std::optional<int64_t> min;
  std::optional<int64_t> max;
  // For kString: the values accepted; empty means any string.
  std::vector<std::string> allowed;
};

// A schema is built by the program at start, so a malformed one (duplicate key, default out of
// its own range, "a" and "a.b" both keys) is a bug and asserts rather than returning an error.
class ConfigSchema {
 public:
  ConfigSchema& add(ConfigKey key);
  ConfigSchema& add_int(std::string name, int64_t default_value, std::string description,
                        std::optional<int64_t> min = std::nullopt,
                        std::optional<int64_t> max = std::nullopt);
  ConfigSchema& add_double(std::string name, double default_value, std::string description);
  ConfigSchema& add_bool(std::string name, bool default_value, std::string description);
  ConfigSchema& add_string(std::string name, std::string default_value, std::string description,
                           std::vector<std::string> allowed = {});
  ConfigSchema& add_int_list(std::string name, std::vector<int64_t> default_value,
                             std::string description, std::optional<int64_t> min = std::nullopt,
                             std::optional<int64_t> max = std::nullopt);

  const std::vector<ConfigKey>& keys() const noexcept { return keys_; }
  // Index into keys(), or nullopt when the schema has no such key.
  std::optional<size_t> index_of(std::string_view name) const;
  // True when some key lies below `prefix` as a table: "runtime" for "runtime.idle_policy".
  bool has_table(std::string_view prefix) const;

 private:
  std::vector<ConfigKey> keys_;
  std::map<std::string, size_t, std::less<>> index_;
};

// "runtime.idle_policy" -> "COHORT_RUNTIME_IDLE_POLICY".
std::string config_env_name(std::string_view key);

// The real process environment's COHORT_* entries as "NAME=value", for ConfigSources::env.
// Other variables are left out: config never needs them, and a copy of PATH or a token helps
// no one. Reads `environ`, so call it before starting threads that might call setenv().
std::vector<std::string> capture_environment();

struct ConfigSources {
  // A TOML file to read; messages name it as given. At most one of file_path and toml_text.
  std::optional<std::string> file_path;
  // TOML text parsed as if it were a file called toml_text_name (tests, embedded configs).
  std::optional<std::string> toml_text;
  std::string toml_text_name = "<toml text>";
  // "NAME=value" entries; only names starting with COHORT_ are looked at.
  std::vector<std::string> env;
  // "key=value" entries from --set, applied in order, so a later one wins.
  std::vector<std::string> cli_sets;
};

enum class ConfigOrigin : uint8_t { kDefault, kFile, kEnv, kCli };

// "default", "file", "env", "cli".
const char* config_origin_name(ConfigOrigin origin) noexcept;

class Config {
 public:
  // Resolves every key of `schema` from `sources` (see the top of this file). The first bad
  // entry fails the load with an Error naming the key, the source (file and line, variable, or
  // --set) and the remedy. Control path only; no exceptions escape.
  static Result<Config> load(const ConfigSchema& schema, const ConfigSources& sources);

  // The schema's defaults and nothing else; cannot fail.
  static Config defaults(const ConfigSchema& schema);

  // Typed getters. A key missing from the schema, or read as the wrong type, is a bug in the
  // caller and asserts. References stay valid for the Config's lifetime.
  int64_t get_int(std::string_view key) const;
  double get_double(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  const std::vector<int64_t>& get_int_list(std::string_view key) const;

  ConfigOrigin origin(std::string_view key) const;
  // Where the value was set: "cohort.toml line 3", "COHORT_RUNTIME_IDLE_POLICY", "--set", or ""
  // for a default.
  const std::string& origin_detail(std::string_view key) const;

  // Every key with its description, value and origin, one per line, as TOML with dotted keys:
  // the output of `--print-config` can be saved and loaded back as a config file.
  std::string describe() const;

  const ConfigSchema& schema() const noexcept { return schema_; }

 private:
  friend class ConfigLoader;  // config.cc: fills entries_ while loading

  struct Entry {
    ConfigValue value;
    ConfigOrigin origin = ConfigOrigin::kDefault;
    std::string where;
  };

  explicit Config(const ConfigSchema& schema);
  const Entry& entry(std::string_view key, ConfigType type) const;
  size_t checked_index(std::string_view key) const;

  // A copy, so a Config outlives the schema it was loaded with.
  ConfigSchema schema_;
  std::vector<Entry> entries_;  // parallel to schema_.keys()
};

}  // namespace cohort
