#include "runtime/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>

#include "runtime/assert.h"

namespace cohort {

namespace {

constexpr std::string_view kEnvPrefix = "COHORT_";

// Integers a double holds exactly: a TOML `1` for a double key is taken as 1.0 only below this.
constexpr int64_t kMaxExactDoubleInt = int64_t{1} << 53;

bool is_valid_key_name(std::string_view name) {
  if (name.empty()) return false;
  bool segment_start = true;
  for (char c : name) {
    if (c == '.') {
      if (segment_start) return false;  // empty segment: "a..b" or ".a"
      segment_start = true;
      continue;
    }
    const bool lower = c >= 'a' && c <= 'z';
    const bool digit = c >= '0' && c <= '9';
    if (segment_start && !lower) return false;
    if (!lower && !digit && c != '_') return false;
    segment_start = false;
  }
  return !segment_start;
}

// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions, since "levle"
// for "level" is one slip of the fingers, not two. Names are short; the full table is fine.
size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  const size_t m = b.size();
  std::vector<size_t> d((n + 1) * (m + 1));
  auto at = [m, &d](size_t i, size_t j) -> size_t& { return d[i * (m + 1) + j]; };
  for (size_t i = 0; i <= n; ++i) at(i, 0) = i;
  for (size_t j = 0; j <= m; ++j) at(0, j) = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t best = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        best = std::min(best, at(i - 2, j - 2) + 1);
      }
      at(i, j) = best;
    }
  }
  return at(n, m);
}

std::string_view last_segment(std::string_view name, char separator) {
  const size_t dot = name.rfind(separator);
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

// The candidate `unknown` was most likely meant as, or nullopt when none is close. A quarter of
// the name (at most 3 edits) catches typos without suggesting unrelated keys; failing that, a
// key with the same last segment catches a right name put under the wrong table.
std::optional<size_t> closest(std::string_view unknown, const std::vector<std::string>& candidates,
                              char separator) {
  const size_t limit = std::clamp<size_t>(unknown.size() / 4, 1, 3);
  std::optional<size_t> best;
  size_t best_distance = limit + 1;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const size_t distance = edit_distance(unknown, candidates[i]);
    if (distance < best_distance) {
      best = i;
      best_distance = distance;
    }
  }
  if (best) return best;
  const std::string_view tail = last_segment(unknown, separator);
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (last_segment(candidates[i], separator) == tail) return i;
  }
  return std::nullopt;
}

std::string_view trim(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const size_t last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

bool parse_int(std::string_view text, int64_t* out) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

bool parse_double(std::string_view text, double* out) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return !text.empty() && ec == std::errc() && ptr == end && std::isfinite(*out);
}

bool parse_bool(std::string_view text, bool* out) {
  if (text == "true" || text == "1") {
    *out = true;
    return true;
  }
  if (text == "false" || text == "0") {
    *out = false;
    return true;
  }
  return false;
}

// "0,2,4-7" or "[0, 2, 4-7]"; "" and "[]" are the empty list. Returns why it failed, or "".
// A range needs its '-' after the first character, so "-3" stays a negative number.
std::string parse_int_list(std::string_view text, std::vector<int64_t>* out) {
  text = trim(text);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = trim(text.substr(1, text.size() - 2));
  }
  out->clear();
  if (text.empty()) return {};
  while (true) {
    const size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    const size_t dash = item.size() > 1 ? item.find('-', 1) : std::string_view::npos;
    int64_t first = 0;
    int64_t last = 0;
    if (dash == std::string_view::npos) {
      if (!parse_int(item, &first)) return fmt::format("'{}' is not an integer", item);
      last = first;
    } else if (!parse_int(trim(item.substr(0, dash)), &first) ||
               !parse_int(trim(item.substr(dash + 1)), &last)) {
      return fmt::format("'{}' is neither an integer nor a range a-b", item);
    } else if (first > last) {
      return fmt::format("range '{}' runs backwards", item);
    }
    // Unsigned difference: exact for first <= last even when it spans the whole int64 range.
    const uint64_t span = static_cast<uint64_t>(last) - static_cast<uint64_t>(first);
    if (span >= kConfigMaxListLength || out->size() + span + 1 > kConfigMaxListLength) {
      return fmt::format("more than {} elements", kConfigMaxListLength);
    }
    for (int64_t v = first;; ++v) {
      out->push_back(v);
      if (v == last) break;
    }
    if (comma == std::string_view::npos) return {};
    text = text.substr(comma + 1);
  }
}

const char* toml_type_name(toml::node_type type) noexcept {
  switch (type) {
    case toml::node_type::none: return "nothing";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
  }
  return "an unknown TOML type";
}

std::string range_text(const ConfigKey& key) {
  if (key.min && key.max) return fmt::format("in [{}, {}]", *key.min, *key.max);
  if (key.min) return fmt::format("at least {}", *key.min);
  if (key.max) return fmt::format("at most {}", *key.max);
  return {};
}

bool in_range(const ConfigKey& key, int64_t v) {
  return (!key.min || v >= *key.min) && (!key.max || v <= *key.max);
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

// Range and allowed-set checks, shared by every source so they cannot drift apart.
Status check_constraints(const ConfigKey& key, const ConfigValue& value, std::string_view where) {
  if (key.type == ConfigType::kInt) {
    const int64_t v = std::get<int64_t>(value);
    if (!in_range(key, v)) {
      return Error(Errc::kInvalidArgument, fmt::format("key '{}' {} must be {}, got {}", key.name,
                                                       where, range_text(key), v));
    }
  } else if (key.type == ConfigType::kIntList) {
    for (int64_t v : std::get<std::vector<int64_t>>(value)) {
      if (!in_range(key, v)) {
        return Error(Errc::kInvalidArgument,
                     fmt::format("key '{}' {} must have every element {}, got {}", key.name, where,
                                 range_text(key), v));
      }
    }
  } else if (key.type == ConfigType::kString && !key.allowed.empty()) {
    const std::string& v = std::get<std::string>(value);
    if (std::find(key.allowed.begin(), key.allowed.end(), v) == key.allowed.end()) {
      std::string hint;
      if (auto near = closest(v, key.allowed, '.')) {
        hint = fmt::format("; did you mean '{}'?", key.allowed[*near]);
      }
      return Error(Errc::kInvalidArgument,
                   fmt::format("key '{}' {} must be one of {}, got '{}'{}", key.name, where,
                               join(key.allowed, ", "), v, hint));
    }
  }
  return {};
}

Error wrong_toml_type(const ConfigKey& key, const toml::node& node, std::string_view where) {
  return Error(Errc::kInvalidArgument,
               fmt::format("key '{}' {} must be {}, got {}", key.name, where,
                           config_type_name(key.type), toml_type_name(node.type())));
}

Result<ConfigValue> value_from_toml(const ConfigKey& key, const toml::node& node,
                                    std::string_view where) {
  switch (key.type) {
    case ConfigType::kInt:
      if (const auto* v = node.as_integer()) return ConfigValue(v->get());
      break;
    case ConfigType::kDouble:
      if (const auto* v = node.as_floating_point()) {
        if (std::isfinite(v->get())) return ConfigValue(v->get());
        return Error(
            Errc::kInvalidArgument,
            fmt::format("key '{}' {} must be a finite number, got {}", key.name, where, v->get()));
      }
      // `ratio = 1` for a double key is what the user meant; take it while it is exact.
      if (const auto* v = node.as_integer(); v && std::abs(v->get()) <= kMaxExactDoubleInt) {
        return ConfigValue(static_cast<double>(v->get()));
      }
      break;
    case ConfigType::kBool:
      if (const auto* v = node.as_boolean()) return ConfigValue(v->get());
      break;
    case ConfigType::kString:
      if (const auto* v = node.as_string()) return ConfigValue(v->get());
      break;
    case ConfigType::kIntList:
      if (const auto* array = node.as_array()) {
        if (array->size() > kConfigMaxListLength) {
          return Error(Errc::kInvalidArgument,
                       fmt::format("key '{}' {} must have at most {} elements, got {}", key.name,
                                   where, kConfigMaxListLength, array->size()));
        }
        std::vector<int64_t> list;
        list.reserve(array->size());
        for (size_t i = 0; i < array->size(); ++i) {
          const auto* v = (*array)[i].as_integer();
          if (v == nullptr) {
            return Error(Errc::kInvalidArgument,
                         fmt::format("key '{}' {} must be a list of integers, got {} at index {}",
                                     key.name, where, toml_type_name((*array)[i].type()), i));
          }
          list.push_back(v->get());
        }
        return ConfigValue(std::move(list));
      }
      break;
  }
  return wrong_toml_type(key, node, where);
}

Result<ConfigValue> value_from_text(const ConfigKey& key, std::string_view text,
                                    std::string_view where) {
  std::string_view expected;
  std::string reason;
  switch (key.type) {
    case ConfigType::kInt: {
      int64_t v = 0;
      if (parse_int(trim(text), &v)) return ConfigValue(v);
      expected = "a 64-bit decimal integer";
      break;
    }
    case ConfigType::kDouble: {
      double v = 0;
      if (parse_double(trim(text), &v)) return ConfigValue(v);
      expected = "a finite number";
      break;
    }
    case ConfigType::kBool: {
      bool v = false;
      if (parse_bool(trim(text), &v)) return ConfigValue(v);
      expected = "a boolean (true, false, 1 or 0)";
      break;
    }
    case ConfigType::kString: return ConfigValue(std::string(text));
    case ConfigType::kIntList: {
      std::vector<int64_t> list;
      reason = parse_int_list(text, &list);
      if (reason.empty()) return ConfigValue(std::move(list));
      expected = "a list of integers such as \"0,2,4-7\"";
      reason = " (" + reason + ")";
      break;
    }
  }
  return Error(Errc::kParse, fmt::format("key '{}' {} must be {}, got '{}'{}", key.name, where,
                                         expected, text, reason));
}

Result<std::string> read_file(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int err = errno;
    Error error = system_error(fmt::format("cannot open config file '{}'", path), err);
    return Error(err == ENOENT ? Errc::kNotFound : Errc::kSystem,
                 error.message() + "; check the config file path");
  }
  std::string text;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, file)) > 0) text.append(buf, n);
  const bool failed = std::ferror(file) != 0;
  const int err = errno;
  std::fclose(file);
  if (failed) return system_error(fmt::format("cannot read config file '{}'", path), err);
  return text;
}

// TOML text for a string: basic-string escapes, so describe()'s output parses back.
std::string toml_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string format_value(const ConfigValue& value) {
  switch (static_cast<ConfigType>(value.index())) {
    case ConfigType::kInt: return fmt::format("{}", std::get<int64_t>(value));
    case ConfigType::kDouble: {
      std::string s = fmt::format("{}", std::get<double>(value));
      // TOML reads "1" as an integer; keep the value a float when loaded back.
      if (s.find_first_of(".eE") == std::string::npos) s += ".0";
      return s;
    }
    case ConfigType::kBool: return std::get<bool>(value) ? "true" : "false";
    case ConfigType::kString: return toml_quote(std::get<std::string>(value));
    case ConfigType::kIntList: {
      std::vector<std::string> items;
      for (int64_t v : std::get<std::vector<int64_t>>(value)) items.push_back(fmt::format("{}", v));
      return fmt::format("[{}]", join(items, ", "));
    }
  }
  return {};
}

}  // namespace

const char* config_type_name(ConfigType type) noexcept {
  switch (type) {
    case ConfigType::kInt: return "an integer";
    case ConfigType::kDouble: return "a number";
    case ConfigType::kBool: return "a boolean";
    case ConfigType::kString: return "a string";
    case ConfigType::kIntList: return "a list of integers";
  }
  return "an unknown type";
}

const char* config_origin_name(ConfigOrigin origin) noexcept {
  switch (origin) {
    case ConfigOrigin::kDefault: return "default";
    case ConfigOrigin::kFile: return "file";
    case ConfigOrigin::kEnv: return "env";
    case ConfigOrigin::kCli: return "cli";
  }
  return "unknown";
}

std::string config_env_name(std::string_view key) {
  std::string name(kEnvPrefix);
  for (char c : key) {
    name += c == '.' ? '_' : (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  return name;
}

std::vector<std::string> capture_environment() {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (text.starts_with(kEnvPrefix)) env.emplace_back(text);
  }
  return env;
}

// ---- ConfigSchema ----

ConfigSchema& ConfigSchema::add(ConfigKey key) {
  const auto fail = [&key](std::string_view what) {
    const std::string msg = fmt::format("config schema: key '{}': {}", key.name, what);
    COHORT_ASSERT_MSG(false, msg.c_str());
  };
  if (!is_valid_key_name(key.name)) fail("name must be dotted segments of [a-z0-9_]");
  if (key.default_value.index() != static_cast<size_t>(key.type)) fail("default has wrong type");
  const std::string env = config_env_name(key.name);
  for (const ConfigKey& other : keys_) {
    if (other.name == key.name) fail("declared twice");
    // TOML cannot hold both `a = 1` and `[a] b = 2`; nor can one env variable name two keys.
    if (other.name.starts_with(key.name + ".") || key.name.starts_with(other.name + ".")) {
      fail("is both a value and a table with '" + other.name + "'");
    }
    if (config_env_name(other.name) == env) fail("shares " + env + " with '" + other.name + "'");
  }
  const bool ranged = key.type == ConfigType::kInt || key.type == ConfigType::kIntList;
  if (!ranged && (key.min || key.max)) fail("min/max apply to int and int-list keys only");
  if (key.min && key.max && *key.min > *key.max) fail("min > max");
  if (key.type != ConfigType::kString && !key.allowed.empty()) fail("allowed is for strings");
  if (key.type == ConfigType::kDouble && !std::isfinite(std::get<double>(key.default_value))) {
    fail("default is not finite");
  }
  if (key.type == ConfigType::kIntList &&
      std::get<std::vector<int64_t>>(key.default_value).size() > kConfigMaxListLength) {
    fail("default list is too long");
  }
  if (!check_constraints(key, key.default_value, "(default)").ok()) {
    fail("default breaks the key's own range or allowed set");
  }
  index_.emplace(key.name, keys_.size());
  keys_.push_back(std::move(key));
  return *this;
}

ConfigSchema& ConfigSchema::add_int(std::string name, int64_t default_value,
                                    std::string description, std::optional<int64_t> min,
                                    std::optional<int64_t> max) {
  return add(ConfigKey{
      std::move(name), ConfigType::kInt, default_value, std::move(description), min, max, {}});
}

ConfigSchema& ConfigSchema::add_double(std::string name, double default_value,
                                       std::string description) {
  return add(ConfigKey{std::move(name),
                       ConfigType::kDouble,
                       default_value,
                       std::move(description),
                       std::nullopt,
                       std::nullopt,
                       {}});
}

ConfigSchema& ConfigSchema::add_bool(std::string name, bool default_value,
                                     std::string description) {
  return add(ConfigKey{std::move(name),
                       ConfigType::kBool,
                       default_value,
                       std::move(description),
                       std::nullopt,
                       std::nullopt,
                       {}});
}

ConfigSchema& ConfigSchema::add_string(std::string name, std::string default_value,
                                       std::string description, std::vector<std::string> allowed) {
  return add(ConfigKey{std::move(name), ConfigType::kString, std::move(default_value),
                       std::move(description), std::nullopt, std::nullopt, std::move(allowed)});
}

ConfigSchema& ConfigSchema::add_int_list(std::string name, std::vector<int64_t> default_value,
                                         std::string description, std::optional<int64_t> min,
                                         std::optional<int64_t> max) {
  return add(ConfigKey{std::move(name),
                       ConfigType::kIntList,
                       std::move(default_value),
                       std::move(description),
                       min,
                       max,
                       {}});
}

std::optional<size_t> ConfigSchema::index_of(std::string_view name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

bool ConfigSchema::has_table(std::string_view prefix) const {
  const std::string table = std::string(prefix) + ".";
  const auto it = index_.lower_bound(table);
  return it != index_.end() && it->first.starts_with(table);
}

// ---- Loading ----

// Applies the sources in precedence order to a Config that starts at the defaults; each layer
// simply overwrites, so the last writer is the highest-precedence source.
class ConfigLoader {
 public:
  explicit ConfigLoader(const ConfigSchema& schema) : config_(schema) {
    for (const ConfigKey& key : schema.keys()) key_names_.push_back(key.name);
    for (size_t i = 0; i < key_names_.size(); ++i) {
      env_names_.push_back(config_env_name(key_names_[i]));
      env_index_.emplace(env_names_.back(), i);
    }
  }

  Status run(const ConfigSources& sources) {
    COHORT_ASSERT_MSG(!(sources.file_path && sources.toml_text),
                      "ConfigSources: give file_path or toml_text, not both");
    if (sources.file_path) {
      Result<std::string> text = read_file(*sources.file_path);
      if (!text.ok()) return std::move(text).error();
      COHORT_TRY(apply_toml(*text, *sources.file_path));
    } else if (sources.toml_text) {
      COHORT_TRY(apply_toml(*sources.toml_text, sources.toml_text_name));
    }
    COHORT_TRY(apply_env(sources.env));
    return apply_cli(sources.cli_sets);
  }

  Config take() && { return std::move(config_); }

 private:
  Status apply_toml(std::string_view text, const std::string& name) {
    // Debian's toml++ is built with exceptions, so its mode is fixed; this is the only place
    // one can be thrown, and it stops here.
    toml::table table;
    try {
      table = toml::parse(text, std::string_view(name));
    } catch (const toml::parse_error& e) {
      const toml::source_position& at = e.source().begin;
      return Error(Errc::kParse, fmt::format("{} line {} column {}: {}; fix the TOML syntax", name,
                                             at.line, at.column, e.description()));
    }
    return walk(table, "", name);
  }

  Status walk(const toml::table& table, const std::string& prefix, const std::string& file) {
    for (const auto& [key, node] : table) {
      const std::string name =
          prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
      const uint32_t line = key.source().begin.line;
      const std::string detail = line > 0 ? fmt::format("{} line {}", file, line) : file;
      // A quoted key with a dot ("a.b" = 1) is one TOML key, not a path; never a schema key.
      const bool plain = key.str().find('.') == std::string_view::npos;
      if (const auto index = config_.schema_.index_of(name); plain && index) {
        const ConfigKey& spec = config_.schema_.keys()[*index];
        const std::string where = "in " + detail;
        Result<ConfigValue> value = value_from_toml(spec, node, where);
        if (!value.ok()) return std::move(value).error();
        COHORT_TRY(assign(*index, std::move(value).value(), ConfigOrigin::kFile, detail, where));
      } else if (plain && config_.schema_.has_table(name)) {
        if (!node.is_table()) {
          return Error(Errc::kInvalidArgument,
                       fmt::format("'{}' in {} must be a table of keys, got {}", name, detail,
                                   toml_type_name(node.type())));
        }
        COHORT_TRY(walk(*node.as_table(), name, file));
      } else {
        return Error(Errc::kNotFound, fmt::format("unknown key '{}' in {}{}", name, detail,
                                                  key_hint(name, "; remove it or fix its name")));
      }
    }
    return {};
  }

  Status apply_env(const std::vector<std::string>& env) {
    for (const std::string& entry : env) {
      const std::string_view text(entry);
      if (!text.starts_with(kEnvPrefix)) continue;
      const size_t eq = text.find('=');
      if (eq == std::string_view::npos) {
        return Error(Errc::kParse,
                     fmt::format("environment entry '{}' has no '=': expected NAME=value", text));
      }
      const std::string_view name = text.substr(0, eq);
      if (std::find(kConfigEnvAllowList.begin(), kConfigEnvAllowList.end(), name) !=
          kConfigEnvAllowList.end()) {
        continue;
      }
      const auto it = env_index_.find(name);
      if (it == env_index_.end()) return unknown_env(name);
      const ConfigKey& spec = config_.schema_.keys()[it->second];
      const std::string where = fmt::format("from environment variable {}", name);
      Result<ConfigValue> value = value_from_text(spec, text.substr(eq + 1), where);
      if (!value.ok()) return std::move(value).error();
      COHORT_TRY(assign(it->second, std::move(value).value(), ConfigOrigin::kEnv, std::string(name),
                        where));
    }
    return {};
  }

  Status apply_cli(const std::vector<std::string>& sets) {
    for (const std::string& set : sets) {
      const size_t eq = set.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Error(Errc::kParse,
                     fmt::format("--set '{}' must have the form key=value, e.g. --set {}=...", set,
                                 key_names_.empty() ? "some.key" : key_names_.front()));
      }
      const std::string name = set.substr(0, eq);
      const auto index = config_.schema_.index_of(name);
      if (!index) {
        return Error(Errc::kNotFound, fmt::format("unknown key '{}' from --set{}", name,
                                                  key_hint(name, "; check its name")));
      }
      const ConfigKey& spec = config_.schema_.keys()[*index];
      constexpr std::string_view kWhere = "from --set";
      Result<ConfigValue> value =
          value_from_text(spec, std::string_view(set).substr(eq + 1), kWhere);
      if (!value.ok()) return std::move(value).error();
      COHORT_TRY(assign(*index, std::move(value).value(), ConfigOrigin::kCli, "--set", kWhere));
    }
    return {};
  }

  Status assign(size_t index, ConfigValue value, ConfigOrigin origin, std::string detail,
                std::string_view where) {
    COHORT_TRY(check_constraints(config_.schema_.keys()[index], value, where));
    Config::Entry& entry = config_.entries_[index];
    entry.value = std::move(value);
    entry.origin = origin;
    entry.where = std::move(detail);
    return {};
  }

  std::string key_hint(std::string_view name, std::string_view otherwise) const {
    if (auto near = closest(name, key_names_, '.')) {
      return fmt::format("; did you mean '{}'?", key_names_[*near]);
    }
    return std::string(otherwise);
  }

  Error unknown_env(std::string_view name) const {
    std::string upper(name);
    for (char& c : upper) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    std::string hint;
    if (auto near = closest(upper, env_names_, '_')) {
      hint = fmt::format(" did you mean {} (key '{}')?", env_names_[*near], key_names_[*near]);
    }
    return Error(Errc::kNotFound,
                 fmt::format("unknown environment variable {}: no config key maps to it;{} Unset "
                             "it, or list it in kConfigEnvAllowList (runtime/config.h) if it is "
                             "not meant as config",
                             name, hint));
  }

  Config config_;
  std::vector<std::string> key_names_;  // parallel to the schema's keys
  std::vector<std::string> env_names_;  // likewise
  std::map<std::string, size_t, std::less<>> env_index_;
};

// ---- Config ----

Config::Config(const ConfigSchema& schema) : schema_(schema) {
  entries_.reserve(schema_.keys().size());
  for (const ConfigKey& key : schema_.keys()) {
    entries_.push_back(Entry{key.default_value, ConfigOrigin::kDefault, {}});
  }
}

Result<Config> Config::load(const ConfigSchema& schema, const ConfigSources& sources) {
  ConfigLoader loader(schema);
  Status status = loader.run(sources);
  if (!status.ok()) return std::move(status).error().with_context("config: ");
  return std::move(loader).take();
}

Config Config::defaults(const ConfigSchema& schema) {
  return Config(schema);
}

size_t Config::checked_index(std::string_view key) const {
  const std::optional<size_t> index = schema_.index_of(key);
  if (!index) {
    const std::string msg = fmt::format("config: no key '{}' in the schema", key);
    COHORT_ASSERT_MSG(index.has_value(), msg.c_str());
  }
  return *index;
}

const Config::Entry& Config::entry(std::string_view key, ConfigType type) const {
  const size_t index = checked_index(key);
  const ConfigType actual = schema_.keys()[index].type;
  if (actual != type) {
    const std::string msg = fmt::format("config: key '{}' is {}, read as {}", key,
                                        config_type_name(actual), config_type_name(type));
    COHORT_ASSERT_MSG(actual == type, msg.c_str());
  }
  return entries_[index];
}

int64_t Config::get_int(std::string_view key) const {
  return std::get<int64_t>(entry(key, ConfigType::kInt).value);
}

double Config::get_double(std::string_view key) const {
  return std::get<double>(entry(key, ConfigType::kDouble).value);
}

bool Config::get_bool(std::string_view key) const {
  return std::get<bool>(entry(key, ConfigType::kBool).value);
}

const std::string& Config::get_string(std::string_view key) const {
  return std::get<std::string>(entry(key, ConfigType::kString).value);
}

const std::vector<int64_t>& Config::get_int_list(std::string_view key) const {
  return std::get<std::vector<int64_t>>(entry(key, ConfigType::kIntList).value);
}

ConfigOrigin Config::origin(std::string_view key) const {
  return entries_[checked_index(key)].origin;
}

const std::string& Config::origin_detail(std::string_view key) const {
  return entries_[checked_index(key)].where;
}

std::string Config::describe() const {
  std::string out;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const ConfigKey& key = schema_.keys()[i];
    const Entry& entry = entries_[i];
    std::string limits;
    if (!key.allowed.empty()) limits = fmt::format(" Must be one of {}.", join(key.allowed, ", "));
    if (key.min || key.max) limits = fmt::format(" Must be {}.", range_text(key));
    out += fmt::format("# {}{}\n{} = {}  # {}{}{}\n", key.description, limits, key.name,
                       format_value(entry.value), config_origin_name(entry.origin),
                       entry.where.empty() ? "" : ": ", entry.where);
  }
  return out;
}

}  // namespace cohort
