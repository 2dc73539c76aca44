// `g2c complete --backend SPEC [sampling options] [--stream] [--json] PROMPT`: one completion through the
// course API (Backend::complete, or stream() with --stream). stdout gets the completion (or, with
// --json, the whole InferenceResult); stderr gets one line with tokens, latency, tok/s and server time.
#include <fmt/core.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "backend_args.hpp"
#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/inference/backend.hpp"

namespace g2c::app {
namespace {

struct CompleteOptions {
  BackendArgs backend;
  std::string prompt;
  bool stream = false;
  bool json = false;
};

void run_complete(const CompleteOptions& o) {
  using namespace g2c::inference;
  std::string prompt = o.prompt;
  if (prompt == "-") prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  const GenerateOptions g = o.backend.generate_options();
  std::unique_ptr<Backend> b = o.backend.make();
  InferenceResult r;
  if (o.stream) {
    r = b->stream(prompt, g, [&](std::string_view piece) {
      if (!o.json) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      }
      return true;
    });
  } else {
    r = b->complete(prompt, g);
    if (!o.json) std::fwrite(r.completion.data(), 1, r.completion.size(), stdout);
  }
  if (o.json) {
    std::fputs((to_json(r).dump(2) + "\n").c_str(), stdout);
  } else {
    std::fputs("\n", stdout);
    std::fflush(stdout);
    std::fputs((stats_line(r.backend, r.prompt_tokens, r.completion_tokens, r.latency_ms, r.metadata) + "\n").c_str(),
               stderr);
  }
}

}  // namespace

void register_complete(CLI::App& app) {
  auto o = std::make_shared<CompleteOptions>();
  auto* cmd = app.add_subcommand("complete", "One completion through any backend (the course API's complete())");
  o->backend.add_to(cmd);
  cmd->add_flag("--stream", o->stream, "Print the text as it is generated (stream())");
  cmd->add_flag("--json", o->json, "Print the whole InferenceResult as JSON instead of the text");
  cmd->add_option("prompt", o->prompt, "The prompt ('-': read it from stdin)")->required();
  cmd->callback([o] { run_complete(*o); });
}

}  // namespace g2c::app
