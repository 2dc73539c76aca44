// Cached vs naive (no KV cache) generation time on stories260K: the seed's claim that the cache turns
// the O(T^2) generation loop into O(T). Not a test (timings are recorded, never asserted); the table
// it prints is in docs/benchmarks.md (KV cache section).
//
//   build/release/tests/engine/kvcache_bench [model.gguf] [threads] [repeats]
//
// Greedy from BOS with ignore_eos, so every run generates exactly T tokens; the best of `repeats` runs
// is reported for each (T, mode), and the token sequences of the two modes are compared.
#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "g2c/engine/generate.hpp"
#include "g2c/model/model.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

int main(int argc, char** argv) {
  using namespace g2c;
  const std::string path = argc > 1 ? argv[1] : std::string(G2C_SHARED_DIR) + "/models/stories260K.gguf";
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  try {
    auto model = model::Model::load(path);
    auto tok = tokenizer::Tokenizer::from_gguf(*model->gguf());
    model::ContextOptions co;
    co.n_ctx = 1024;
    co.threads = threads;
    model::Context ctx(*model, co);
    const std::vector<std::int32_t> prompt = {tok->bos_id()};

    fmt::print("model {} ({}), {} thread(s), best of {}\n\n", path, model->describe(), ctx.threads(), repeats);
    fmt::print(
        "| generated tokens | cached ms | naive ms | naive / cached | cached tok/s | naive tok/s | same tokens |\n");
    fmt::print("| ---: | ---: | ---: | ---: | ---: | ---: | :---: |\n");
    for (int n : {64, 128, 256, 512}) {
      double best[2] = {1e300, 1e300};
      std::vector<std::int32_t> tokens[2];
      for (int mode = 0; mode < 2; ++mode) {
        engine::GenerateParams p;
        p.max_tokens = n;
        p.sampling.temperature = 0.0f;
        p.ignore_eos = true;
        p.naive = mode == 1;
        for (int r = 0; r < repeats; ++r) {
          const engine::GenerateResult res = engine::generate(ctx, *tok, prompt, p);
          const double ms = static_cast<double>(res.stats.prefill_ns + res.stats.decode_ns) / 1e6;
          best[mode] = std::min(best[mode], ms);
          tokens[mode] = res.tokens;
        }
      }
      fmt::print("| {} | {:.1f} | {:.1f} | {:.1f} | {:.0f} | {:.0f} | {} |\n", n, best[0], best[1], best[1] / best[0],
                 n / best[0] * 1e3, n / best[1] * 1e3, tokens[0] == tokens[1] ? "yes" : "NO");
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "kvcache_bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
