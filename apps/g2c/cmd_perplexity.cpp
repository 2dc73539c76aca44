// `g2c perplexity --model F --file TEXT [--ctx N]`, computed as llama.cpp's llama-perplexity (c392e50):
// the whole file is tokenized (BOS as the vocabulary says; one trailing newline dropped, as its -f
// does), cut into floor(T / N) non-overlapping chunks of N tokens; the first token of each chunk is
// replaced by BOS when the vocabulary adds BOS; each chunk is evaluated from an empty cache and the
// tokens N/2+1 .. N-1 are scored from the logits at positions N/2 .. N-2 (N/2 - 1 per chunk), with
// nll = -log_softmax in double. Final estimate: PPL = exp(mean nll) +/- ppl * sqrt(var(nll) / (n-1)).
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/engine/open_model.hpp"
#include "g2c/model/model.hpp"
#include "g2c/model/perplexity.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::app {
namespace {

struct PplOptions {
  std::string model;
  std::string tokenizer;
  std::string file;
  int n_ctx = 512;
  int threads = 0;
  int n_chunks = -1;
  bool f16_kv = false;
  std::string kld_base;
  bool kld = false;
};

// --kl-divergence-base FILE --kl-divergence: the base file's tokens and context, compared chunk by chunk.
void run_kl_divergence(const PplOptions& o, const engine::OpenedModel& m) {
  const tokenizer::Tokenizer& tok = *m.tokenizer;
  std::ifstream in(o.kld_base, std::ios::binary);
  if (!in) throw IoError("cannot open the KL-divergence base file " + o.kld_base);
  std::int32_t file_ctx = 0;
  in.seekg(8);
  in.read(reinterpret_cast<char*>(&file_ctx), 4);
  in.seekg(0);
  model::ContextOptions co;
  co.n_ctx = std::max(o.n_ctx, file_ctx > 0 && file_ctx < (1 << 20) ? file_ctx : 4);
  co.n_batch = co.n_ctx;
  co.threads = o.threads;
  co.kv_type = o.f16_kv ? model::KvType::kF16 : model::KvType::kF32;
  model::Context ctx(*m.model, co);
  const bool add_bos = tok.add_bos() && tok.bos_id() >= 0;
  const model::KldResult k = model::kl_divergence(
      ctx, in, o.kld_base, add_bos ? tok.bos_id() : -1, [](std::int32_t ic, const model::KldResult& so_far) {
        std::fputs(("\n" + model::kld_chunk_header() + model::kld_chunk_line(ic, so_far)).c_str(), stdout);
        std::fflush(stdout);
      });
  std::fputs(("\n" + model::kld_statistics(k)).c_str(), stdout);
}

void run_perplexity(const PplOptions& o) {
  if (o.n_ctx < 4) throw InvalidArgument(fmt::format("--ctx {}: need at least 4", o.n_ctx));
  if (o.kld && o.kld_base.empty()) {
    throw InvalidArgument("--kl-divergence needs --kl-divergence-base FILE (the base model's log-probabilities)");
  }
  if (!o.kld && o.file.empty()) throw InvalidArgument("--file TEXT is required (unless --kl-divergence)");
  const engine::OpenedModel m = engine::open_model(resolve_model_path(o.model), resolve_tokenizer_path(o.tokenizer));
  if (o.kld) {
    run_kl_divergence(o, m);
    return;
  }
  const tokenizer::Tokenizer& tok = *m.tokenizer;
  std::string text = read_file(o.file);
  if (!text.empty() && text.back() == '\n') text.pop_back();

  std::fprintf(stderr, "perplexity: tokenizing the input ..\n");
  std::vector<std::int32_t> tokens = tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
  const bool add_bos = tok.add_bos() && tok.bos_id() >= 0;
  model::ContextOptions co;
  co.n_ctx = o.n_ctx;
  co.n_batch = o.n_ctx;
  co.threads = o.threads;
  co.kv_type = o.f16_kv ? model::KvType::kF16 : model::KvType::kF32;
  model::Context ctx(*m.model, co);
  const auto n_chunk_max = static_cast<std::int32_t>(tokens.size() / static_cast<std::size_t>(o.n_ctx));
  std::fprintf(stderr,
               "perplexity: %zu tokens; calculating perplexity over %d chunks, n_ctx=%d, batch_size=%d, n_seq=1\n",
               tokens.size(), o.n_chunks < 0 ? n_chunk_max : std::min(o.n_chunks, n_chunk_max), o.n_ctx, o.n_ctx);
  const Timer timer;
  std::ofstream base;
  if (!o.kld_base.empty()) {
    base.open(o.kld_base, std::ios::binary | std::ios::trunc);
    if (!base) throw IoError("cannot write the KL-divergence base file " + o.kld_base);
    std::fprintf(stderr, "perplexity: saving all logits to %s\n", o.kld_base.c_str());
  }
  const model::PerplexityResult r = model::perplexity(
      ctx, tokens, o.n_ctx, add_bos ? tok.bos_id() : -1, o.n_chunks,
      [](std::int32_t ic, double running) {
        std::printf("[%d]%.4lf,", ic + 1, running);
        std::fflush(stdout);
      },
      base.is_open() ? &base : nullptr);
  if (base.is_open()) {
    base.close();
    if (!base) throw IoError("writing the KL-divergence base file " + o.kld_base + " failed");
  }
  std::printf("\n");
  if (r.ppl_err > 0)
    std::printf("Final estimate: PPL = %.4lf +/- %.5lf\n", r.ppl, r.ppl_err);
  else
    std::printf("Unexpected negative standard deviation of log(prob)\n");
  std::fprintf(stderr, "perplexity: %lld tokens scored in %.2f s\n", static_cast<long long>(r.n_scored),
               timer.elapsed_ms() / 1000.0);
}

}  // namespace

void register_perplexity(CLI::App& app) {
  auto o = std::make_shared<PplOptions>();
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of a text file, computed as llama.cpp's llama-perplexity");
  cmd->add_option("-m,--model", o->model, "Model: GGUF or llama2.c .bin (a path, or a name in $G2C_MODELS_DIR)")
      ->required();
  cmd->add_option("-f,--file", o->file, "Text file (not with --kl-divergence: the base file holds the tokens)");
  cmd->add_option("-c,--ctx", o->n_ctx, "Chunk length in tokens")->capture_default_str();
  cmd->add_option("--chunks", o->n_chunks, "Evaluate at most this many chunks (-1: all)")->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer, kTokenizerHelp);
  cmd->add_option("-t,--threads", o->threads, "Threads (0: physical cores)")->capture_default_str();
  cmd->add_option("--kl-divergence-base", o->kld_base,
                  "With --file: also write the base model's log-probabilities here (llama-perplexity's format); "
                  "with --kl-divergence: the base file to compare against");
  cmd->add_flag("--kl-divergence", o->kld, "Compare against --kl-divergence-base: KLD, Δp, same top token, PPL ratio");
  cmd->add_flag("--f16-kv", o->f16_kv, "F16 KV cache (llama.cpp's default; the goldens use F32)");
  cmd->callback([o] { run_perplexity(*o); });
}

}  // namespace g2c::app
