// `g2c synth --like NAME --type T [--vocab VOCAB.gguf] [--seed S] -o OUT.gguf`: a random-weight model
// in the exact shape of a real one, for benchmarks. The generator and shapes are in g2c/model/synth.
#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/model/synth.hpp"

#ifndef G2C_SOURCE_ROOT
#define G2C_SOURCE_ROOT "."
#endif

namespace g2c::app {
namespace {

struct SynthCliOptions {
  std::string like;
  std::string type = "F32";
  std::string vocab;
  std::string out;
  std::uint64_t seed = 0;
  int threads = 0;
  bool pure = false;
  bool quiet = false;
};

std::string default_vocab() {
  if (const char* env = std::getenv("G2C_SHARED_DIR"); env && *env)
    return std::string(env) + "/tokenizer-vectors/ggml-vocab-llama-spm.gguf";
  return (std::filesystem::path(G2C_SOURCE_ROOT) / ".." / "shared" / "tokenizer-vectors" / "ggml-vocab-llama-spm.gguf")
      .lexically_normal()
      .string();
}

void run_synth(const SynthCliOptions& o) {
  const auto shape = model::synth_shape(o.like);
  if (!shape) {
    std::string names;
    for (const auto& s : model::synth_shapes()) names += (names.empty() ? "" : ", ") + s.like;
    throw InvalidArgument(fmt::format("unknown shape '{}' (expected one of {})", o.like, names));
  }
  const auto ft = model::file_type_from_name(o.type);
  if (!ft) throw InvalidArgument(fmt::format("unknown type '{}'", o.type));
  model::SynthOptions so;
  so.shape = *shape;
  so.ftype = *ft;
  so.pure = o.pure;
  so.seed = o.seed;
  so.threads = o.threads;
  so.vocab_path = o.vocab.empty() ? default_vocab() : o.vocab;
  const bool tty = ::isatty(2) != 0;
  std::int64_t last = 0;
  int last_decile = -1;
  if (!o.quiet) {
    so.progress = [&](std::uint64_t done, std::uint64_t total, const std::string& name) {
      const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
      if (tty) {
        const std::int64_t now = now_ns();
        if (done < total && now - last < 100'000'000) return;
        last = now;
        const int fill = static_cast<int>(frac * 30);
        std::fprintf(stderr, "\r[%s%s] %5.1f%% %-32.32s", std::string(fill, '#').c_str(),
                     std::string(30 - fill, '.').c_str(), frac * 100, name.c_str());
        if (done >= total) std::fputc('\n', stderr);
      } else if (static_cast<int>(frac * 10) != last_decile) {
        last_decile = static_cast<int>(frac * 10);
        std::fprintf(stderr, "synth: %3d%% %s\n", last_decile * 10, name.c_str());
      }
      std::fflush(stderr);
    };
  }
  const model::SynthReport rep = model::synth_model(so, o.out);
  std::printf("%s: %s %s, %.1fM parameters, %.2f MiB of tensors, seed %llu, %.1f s\n", o.out.c_str(),
              shape->like.c_str(), model::file_type_name(*ft), rep.n_params / 1e6, rep.bytes / 1048576.0,
              static_cast<unsigned long long>(o.seed), rep.seconds);
}

}  // namespace

void register_synth(CLI::App& app) {
  auto o = std::make_shared<SynthCliOptions>();
  std::string shapes;
  for (const auto& s : model::synth_shapes()) shapes += "\n  " + s.like + ": " + s.note;
  auto* cmd = app.add_subcommand(
      "synth",
      "Write a random-weight model in the exact shape of a real one (for benchmarks; its output is noise). "
      "Weights ~ N(0, 0.02), norms 1 + N(0, 0.02), seeded and independent of the thread count. Shapes:" +
          shapes);
  cmd->add_option("--like", o->like, "Shape to copy (see above)")->required();
  cmd->add_option("--type", o->type, "Recipe, as for quantize (F32, F16, Q8_0, Q4_0, Q4_K_M, ...)")
      ->capture_default_str();
  cmd->add_option("--vocab", o->vocab,
                  "Vocabulary GGUF whose tokenizer.* keys are copied (llama shapes; default "
                  "../shared/tokenizer-vectors/ggml-vocab-llama-spm.gguf)");
  cmd->add_option("--seed", o->seed, "Generator seed")->capture_default_str();
  cmd->add_option("-o,--output", o->out, "Output GGUF")->required();
  cmd->add_option("-t,--threads", o->threads, "Threads (0: physical cores)")->capture_default_str();
  cmd->add_flag("--pure", o->pure, "No llama-quantize mixture: every matrix in the base type");
  cmd->add_flag("-q,--quiet", o->quiet, "No progress bar");
  cmd->callback([o] { run_synth(*o); });
}

}  // namespace g2c::app
