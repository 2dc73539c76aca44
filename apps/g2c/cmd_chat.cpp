// `g2c chat --backend SPEC [--system S] [sampling options]`: a chat with history through the course
// API's chat_stream(). Each line read is one user message; each reply is printed on stdout as it is
// generated, then a newline, and a stats line goes to stderr. `/reset` forgets the history (the system message stays),
// `/quit` (or end of input) ends. On a terminal a "> " prompt is shown on stderr; with stdin a pipe or a
// file there is none, so a conversation can be scripted: printf 'Hi\nAnd then?\n' | g2c chat ...
#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backend_args.hpp"
#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/inference/backend.hpp"

namespace g2c::app {
namespace {

struct ChatOptions {
  BackendArgs backend;
  std::string system;
};

void run_chat(const ChatOptions& o) {
  using namespace g2c::inference;
  const GenerateOptions g = o.backend.generate_options();
  std::unique_ptr<Backend> b = o.backend.make();
  const bool tty = isatty(STDIN_FILENO) != 0;
  std::vector<ChatMessage> history;
  const auto message = [](const char* role, const std::string& content) {
    ChatMessage m;
    m.role = role;
    m.content = content;
    return m;
  };
  const auto reset = [&] {
    history.clear();
    if (!o.system.empty()) history.push_back(message("system", o.system));
  };
  reset();
  if (tty) std::fputs("g2c chat: /reset forgets the history, /quit ends\n", stderr);
  std::string line;
  while (true) {
    if (tty) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "/quit") break;
    if (line == "/reset") {
      reset();
      std::fputs("g2c chat: history cleared\n", stderr);
      continue;
    }
    if (line.empty()) continue;
    history.push_back(message("user", line));
    // The reply is printed as it is generated; what the backend's chat_stream() returns as the message
    // (the same text) goes into the history.
    const ChatResult r = b->chat_stream(history, {}, g, [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::fputs("\n", stdout);
    std::fflush(stdout);
    std::fputs((stats_line(r.backend, r.prompt_tokens, r.completion_tokens, r.latency_ms, r.timings) + "\n").c_str(),
               stderr);
    history.push_back(r.message);
  }
}

}  // namespace

void register_chat(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  auto* cmd = app.add_subcommand(
      "chat", "A chat with history through any backend (the course API's chat_stream(): replies stream)");
  o->backend.add_to(cmd);
  cmd->add_option("--system", o->system, "System message at the start of the history");
  cmd->callback([o] { run_chat(*o); });
}

}  // namespace g2c::app
