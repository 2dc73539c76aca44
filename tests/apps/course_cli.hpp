#pragma once
// What the course CLI tests (complete, chat, prodlm, fit) need beyond test_util: g2c run with a given
// stdin and extra environment, and a real `g2c serve --port 0` started for a test and stopped after.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.hpp"

extern char** environ;

namespace g2c::test {

inline std::string slurp_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The environment with `set` applied (a value of "" removes the variable).
inline std::vector<std::string> environment_with(const std::map<std::string, std::string>& set) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (set.count(key) == 0) env.push_back(kv);
  }
  for (const auto& [k, v] : set)
    if (!v.empty()) env.push_back(k + "=" + v);
  return env;
}

inline pid_t spawn_g2c(const std::vector<std::string>& args, const std::string& in_path, const std::string& out_path,
                       const std::string& err_path, const std::map<std::string, std::string>& env_set) {
  std::vector<std::string> argv_s = {g2c_binary()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s = environment_with(env_set);
  std::vector<char*> envp;
  for (std::string& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + argv_s[0] + ": " + std::strerror(rc));
  return pid;
}

inline int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

// g2c with `args`, `input` on its stdin (a file, so isatty is false), and `env` over this environment.
inline RunResult run_g2c_with(const std::vector<std::string>& args, const std::string& input,
                              const std::map<std::string, std::string>& env = {}) {
  TempDir dir;
  std::ofstream(dir.file("stdin"), std::ios::binary) << input;
  const pid_t pid = spawn_g2c(args, dir.file("stdin"), dir.file("stdout"), dir.file("stderr"), env);
  RunResult r;
  r.code = wait_exit(pid);
  r.out = slurp_file(dir.file("stdout"));
  r.err = slurp_file(dir.file("stderr"));
  return r;
}

// `g2c serve --port 0 --models-dir DIR` on a copy of the shared stories260K model (named "stories260K"),
// read its address from the first stdout line, SIGTERM on destruction.
class ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> extra = {}) {
    std::filesystem::create_directories(dir_.path() / "models");
    std::filesystem::copy_file(shared_path("models/stories260K.gguf"), dir_.path() / "models" / "stories260K.gguf");
    std::vector<std::string> args = {"serve", "--port", "0", "--models-dir", (dir_.path() / "models").string(),
                                     "--ctx", "512"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::ofstream(dir_.file("stdin")) << "";
    pid_ = spawn_g2c(args, dir_.file("stdin"), dir_.file("out"), dir_.file("err"), {});
    const std::regex line_re("^g2c serve: listening on (http://127\\.0\\.0\\.1:[0-9]+)\n");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      const std::string out = slurp_file(dir_.file("out"));
      if (std::regex_search(out, m, line_re)) {
        url_ = m[1];
        return;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("g2c serve exited before printing its address: " + slurp_file(dir_.file("err")));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    wait_exit(pid_);
    pid_ = -1;
    throw std::runtime_error("g2c serve printed no address within 30 s: " + slurp_file(dir_.file("err")));
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      wait_exit(pid_);
    }
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  const std::string& url() const { return url_; }  // "http://127.0.0.1:PORT"
  std::string log() const { return slurp_file(dir_.file("err")); }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  std::string url_;
};

}  // namespace g2c::test
