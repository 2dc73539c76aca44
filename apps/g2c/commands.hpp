#pragma once
// Each g2c subcommand lives in its own cmd_<name>.cpp and registers itself on the root CLI11 app.
// Commands parse arguments and print; model logic stays in the libraries.
#include <CLI/CLI.hpp>

#include <string>

namespace g2c::app {

// Set by a command's callback; main returns it.
extern int g_exit_code;

// $G2C_MODELS_DIR, else ../shared/models relative to the repository root when it exists, else "".
std::string models_dir();
// A model argument: an existing path as is, else looked up in models_dir().
std::string resolve_model_path(const std::string& arg);
// A --tokenizer argument: "" as is (engine::open_model then looks beside the model), else resolved
// like a model argument.
std::string resolve_tokenizer_path(const std::string& arg);
inline constexpr const char* kTokenizerHelp =
    "llama2.c tokenizer for a .bin checkpoint (default: tokenizer.bin or tok<vocab>.bin beside it)";

void register_info(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_run(CLI::App& app);
void register_logits(CLI::App& app);
void register_perplexity(CLI::App& app);
void register_bench(CLI::App& app);
void register_quantize(CLI::App& app);
void register_synth(CLI::App& app);
void register_bench_backends(CLI::App& app);
void register_serve(CLI::App& app);
void register_complete(CLI::App& app);
void register_chat(CLI::App& app);
void register_prodlm(CLI::App& app);
void register_fit(CLI::App& app);
void register_template(CLI::App& app);
void register_eval(CLI::App& app);
void register_frontier(CLI::App& app);

}  // namespace g2c::app
