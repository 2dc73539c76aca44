// `g2c run --model F [options] PROMPT`: generate a completion. Only the completion goes to stdout,
// streamed as it is produced; load time, prompt and generation speed go to stderr.
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/engine/generate.hpp"
#include "g2c/engine/open_model.hpp"
#include "g2c/model/model.hpp"
#include "g2c/sampling/grammar.hpp"
#include "g2c/sampling/json_schema.hpp"
#include "g2c/sampling/sampler.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::app {
namespace {

struct RunOptions {
  std::string model;
  std::string tokenizer;  // llama2.c checkpoints only; "": found beside the model
  std::string prompt;
  std::int32_t n_predict = 128;
  std::int32_t n_ctx = 0;
  std::int32_t threads = 0;
  std::int64_t seed = -1;
  bool no_kv_cache = false;
  bool ignore_eos = false;
  bool truncate_prompt = false;
  std::vector<std::string> stop;
  sampling::SamplerParams sp;
  std::string grammar_file;  // GBNF
  std::string schema_file;   // JSON Schema
  std::string format;        // "json": any JSON object
};

// The grammar asked for by --grammar-file / --json-schema / --format (at most one), or null.
std::shared_ptr<const sampling::Grammar> run_grammar(const RunOptions& o) {
  const int n = !o.grammar_file.empty() + !o.schema_file.empty() + !o.format.empty();
  if (n > 1) throw InvalidArgument("--grammar-file, --json-schema and --format: give one of them");
  if (!o.format.empty() && o.format != "json") {
    throw InvalidArgument("--format: expected \"json\", got \"" + o.format + "\"");
  }
  try {
    if (!o.grammar_file.empty()) return sampling::Grammar::parse(read_file(o.grammar_file));
    if (!o.schema_file.empty()) {
      nlohmann::json schema;
      try {
        schema = nlohmann::json::parse(read_file(o.schema_file));
      } catch (const nlohmann::json::parse_error& e) {
        throw InvalidArgument(std::string("not JSON: ") + e.what());
      }
      return sampling::Grammar::parse(sampling::json_schema_to_gbnf(schema));
    }
    if (!o.format.empty()) return sampling::Grammar::parse(sampling::json_object_gbnf());
  } catch (const Error& e) {
    rethrow_with_context(o.grammar_file.empty() ? (o.schema_file.empty() ? "--format json" : o.schema_file)
                                                : o.grammar_file);
  }
  return nullptr;
}

void run_run(const RunOptions& o) {
  const Timer load_timer;
  const engine::OpenedModel m = engine::open_model(resolve_model_path(o.model), resolve_tokenizer_path(o.tokenizer));
  const tokenizer::Tokenizer& tok = *m.tokenizer;
  model::ContextOptions co;
  co.n_ctx = o.n_ctx;
  co.threads = o.threads;
  model::Context ctx(*m.model, co);
  const double load_ms = load_timer.elapsed_ms();

  // Special pieces in the prompt ("<|im_end|>") become their ids and BOS is added as the vocabulary
  // says, as llama-cli does. An empty prompt is BOS alone: an unconditioned sample.
  const std::vector<std::int32_t> prompt = tok.encode(o.prompt, /*add_special=*/true, /*parse_special=*/true);
  if (prompt.empty()) throw InvalidArgument("the prompt is empty and the vocabulary has no BOS token to start from");

  engine::GenerateParams gp;
  gp.max_tokens = o.n_predict;
  gp.sampling = o.sp;
  gp.sampling.seed = o.seed < 0 ? sampling::kRandomSeed : static_cast<std::uint64_t>(o.seed);
  gp.stop = o.stop;
  gp.ignore_eos = o.ignore_eos;
  gp.truncate_prompt = o.truncate_prompt;
  gp.naive = o.no_kv_cache;
  gp.grammar = run_grammar(o);

  bool ends_with_newline = true;
  const engine::GenerateResult r = engine::generate(ctx, tok, prompt, gp, [&](const engine::TokenEvent& e) {
    if (!e.text.empty()) {
      std::fwrite(e.text.data(), 1, e.text.size(), stdout);
      std::fflush(stdout);
      ends_with_newline = e.text.back() == '\n';
    }
    return true;
  });

  const auto& s = r.stats;
  // The timings start on a fresh line without adding anything to stdout's completion.
  std::fprintf(stderr, "%s", ends_with_newline ? "" : "\n");
  std::fprintf(stderr, "%s",
               fmt::format("load: {:.1f} ms ({}; kv cache {:.2f} MiB, n_ctx {}, {} threads{})\n", load_ms,
                           m.model->describe(), static_cast<double>(ctx.kv_bytes()) / (1 << 20), ctx.n_ctx(),
                           ctx.threads(), gp.naive ? ", no kv cache" : "")
                   .c_str());
  std::fprintf(stderr, "%s",
               fmt::format("prompt: {} tokens in {:.2f} ms ({:.1f} tok/s)\n", s.n_prompt_tokens,
                           static_cast<double>(s.prefill_ns) / 1e6, s.prompt_tokens_per_second())
                   .c_str());
  std::fprintf(stderr, "%s",
               fmt::format("generation: {} tokens in {:.2f} ms ({:.1f} tok/s); stop: {}{}{}\n", s.n_generated,
                           static_cast<double>(s.decode_ns) / 1e6, s.generation_tokens_per_second(),
                           engine::stop_reason_name(r.stop_reason),
                           gp.sampling.greedy() ? ", greedy" : fmt::format(", seed {}", r.seed),
                           !gp.grammar          ? ""
                           : r.grammar_complete ? "; grammar complete"
                                                : "; grammar incomplete")
                   .c_str());
}

}  // namespace

void register_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Generate a completion for PROMPT (stdout: the completion only)");
  cmd->add_option("-m,--model", o->model, "Model: GGUF or llama2.c .bin (a path, or a name in $G2C_MODELS_DIR)")
      ->required();
  cmd->add_option("prompt", o->prompt, "Prompt text (empty: start from BOS alone)");
  cmd->add_option("--tokenizer", o->tokenizer, kTokenizerHelp);
  cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate at most (-1: until EOS or a full context)")
      ->capture_default_str();
  cmd->add_option("-c,--ctx", o->n_ctx, "Context size in tokens (0: the model's, at most 4096)")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Threads (0: physical cores)")->capture_default_str();
  cmd->add_option("--temp", o->sp.temperature, "Temperature; 0 is greedy (argmax)")->capture_default_str();
  cmd->add_option("--top-k", o->sp.top_k, "Keep the K most likely tokens (0: off)")->capture_default_str();
  cmd->add_option("--top-p", o->sp.top_p, "Nucleus: keep the smallest set with probability >= P (1: off)")
      ->capture_default_str();
  cmd->add_option("--min-p", o->sp.min_p, "Keep tokens with p >= P * p_max (0: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->sp.repeat_penalty, "Penalty for tokens in the last --repeat-last-n (1: off)")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", o->sp.repeat_last_n, "Penalty window (0: off, -1: everything)")
      ->capture_default_str();
  cmd->add_option("--frequency-penalty", o->sp.frequency_penalty, "Subtract count * F from a seen token's logit")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", o->sp.presence_penalty, "Subtract P from a seen token's logit")
      ->capture_default_str();
  cmd->add_option("-s,--seed", o->seed, "RNG seed (PCG32); -1: random, printed on stderr")->capture_default_str();
  cmd->add_option("--stop", o->stop, "Stop string (repeatable: one per --stop); it is not printed")
      ->allow_extra_args(false);
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past end-of-generation tokens");
  cmd->add_flag("--truncate-prompt", o->truncate_prompt,
                "Drop the oldest prompt tokens (BOS kept) when the prompt does not fit the context");
  cmd->add_option("--grammar-file", o->grammar_file, "Constrain the output to a GBNF grammar (llama.cpp's syntax)");
  cmd->add_option("--json-schema", o->schema_file, "Constrain the output to JSON valid under this JSON Schema file");
  cmd->add_option("--format", o->format, "json: constrain the output to a JSON object");
  cmd->add_flag("--no-kv-cache", o->no_kv_cache, "Recompute the whole sequence every step (O(T^2), for comparison)");
  cmd->callback([o] { run_run(*o); });
}

}  // namespace g2c::app
