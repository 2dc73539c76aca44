// The g2c command: one subcommand per file; errors become one line on stderr and a non-zero exit.
#include <cstdio>
#include <filesystem>
#include <string>

#include "commands.hpp"
#include "g2c/core/error.hpp"

#ifndef G2C_SOURCE_ROOT
#define G2C_SOURCE_ROOT "."
#endif

namespace g2c::app {

int g_exit_code = 0;

std::string models_dir() {
  if (const char* env = std::getenv("G2C_MODELS_DIR"); env && *env) return env;
  std::filesystem::path p = std::filesystem::path(G2C_SOURCE_ROOT) / ".." / "shared" / "models";
  std::error_code ec;
  if (std::filesystem::is_directory(p, ec)) return std::filesystem::weakly_canonical(p, ec).string();
  return "";
}

std::string resolve_model_path(const std::string& arg) {
  std::error_code ec;
  if (std::filesystem::exists(arg, ec)) return arg;
  std::string dir = models_dir();
  if (!dir.empty()) {
    auto p = std::filesystem::path(dir) / arg;
    if (std::filesystem::exists(p, ec)) return p.string();
  }
  throw IoError("model '" + arg + "' not found (looked at ./" + arg +
                (dir.empty() ? std::string() : " and " + dir + "/" + arg) + ")");
}

std::string resolve_tokenizer_path(const std::string& arg) { return arg.empty() ? arg : resolve_model_path(arg); }

}  // namespace g2c::app

int main(int argc, char** argv) {
  CLI::App app{"g2c: frozen LLM weights as a service: one Backend interface, honest benchmarks, a fast local engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "g2c 0.1.0");
  g2c::app::register_info(app);
  g2c::app::register_tokenize(app);
  g2c::app::register_run(app);
  g2c::app::register_logits(app);
  g2c::app::register_perplexity(app);
  g2c::app::register_bench(app);
  g2c::app::register_quantize(app);
  g2c::app::register_synth(app);
  g2c::app::register_bench_backends(app);
  g2c::app::register_serve(app);
  g2c::app::register_complete(app);
  g2c::app::register_chat(app);
  g2c::app::register_prodlm(app);
  g2c::app::register_fit(app);
  g2c::app::register_template(app);
  g2c::app::register_eval(app);
  g2c::app::register_frontier(app);
  try {
    // CLI11 reports an unknown command as "A subcommand is required"; name it, and what exists.
    if (argc > 1 && argv[1][0] != '-' &&
        app.get_subcommands([&](CLI::App* c) { return c->get_name() == argv[1]; }).empty()) {
      std::string names;
      for (const CLI::App* c : app.get_subcommands({})) names += (names.empty() ? "" : ", ") + c->get_name();
      std::fprintf(stderr, "g2c: error: unknown command '%s' (commands: %s)\n", argv[1], names.c_str());
      return 1;
    }
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0 with CLI11's text; a bad command line is one line and exit 1, like every
    // other bad input (CLI11 would print two lines and exit with its own codes, 106 and up).
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::fprintf(stderr, "g2c: error: %s (see g2c --help)\n", e.what());
    return 1;
  } catch (const g2c::Error& e) {
    std::fprintf(stderr, "g2c: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "g2c: error: %s\n", e.what());
    return 1;
  }
  return g2c::app::g_exit_code;
}
