// A child process of an integration test: started with posix_spawn, its stdout read line by
// line through a pipe, killed with SIGKILL and reaped if the test ends first.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

extern char** environ;

namespace cohort::testing {

class ChildProcess {
 public:
  ChildProcess(const std::string& binary, const std::vector<std::string>& args) {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);  // no other child inherits this pipe
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    EXPECT_EQ(posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    out_ = fdopen(fds[0], "r");
  }
  ~ChildProcess() {
    if (!reaped_) {
      kill(pid_, SIGKILL);
      wait();
    }
    if (out_ != nullptr) fclose(out_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Reads lines until one starts with `prefix` (returned) or the output ends ("").
  std::string read_until(const std::string& prefix) {
    char line[4096];
    while (fgets(line, sizeof line, out_) != nullptr) {
      lines_.emplace_back(line);
      if (lines_.back().rfind(prefix, 0) == 0) return lines_.back();
    }
    return "";
  }
  // How many lines were read so far: a mark for read_until_from().
  size_t lines_read() const { return lines_.size(); }
  // Like read_until, but first looks at the lines already read from index `from` on: for
  // events that may come in any order, each awaited from a mark taken before it could occur.
  std::string read_until_from(size_t from, const std::string& prefix) {
    for (size_t i = from; i < lines_.size(); ++i) {
      if (lines_[i].rfind(prefix, 0) == 0) return lines_[i];
    }
    return read_until(prefix);
  }
  // Everything it printed, reading to the end of its output.
  std::string all_output() {
    read_until("\x01never");
    std::string s;
    for (const auto& l : lines_) s += l;
    return s;
  }
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }
  void kill_hard() { kill(pid_, SIGKILL); }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  bool reaped_ = false;
  std::vector<std::string> lines_;
};

inline bool exited_ok(int status) {
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace cohort::testing
