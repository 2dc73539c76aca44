// `g2c quantize IN OUT TYPE [--pure] [-t N]`: llama-quantize's recipes (same per-tensor types as
// llama.cpp c392e50 for the same input), written atomically, a progress bar on stderr and a
// per-tensor table on stdout. The logic is in g2c/model/quantize.
#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/model/quantize.hpp"

namespace g2c::app {
namespace {

struct QuantizeCliOptions {
  std::string in;
  std::string out;
  std::string type;
  bool pure = false;
  bool quiet = false;
  int threads = 0;
};

std::string join_names() {
  std::string s;
  for (const auto& n : model::file_type_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// One bar line redrawn in place ('\r'), at most ~10 times a second; plain lines when stderr is not a
// terminal would flood logs, so then only every 10%.
class ProgressBar {
 public:
  void update(std::uint64_t done, std::uint64_t total, const std::string& what) {
    const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const std::int64_t now = now_ns();
    const int decile = static_cast<int>(frac * 10);
    if (tty_) {
      if (done < total && now - last_ns_ < 100'000'000) return;
      last_ns_ = now;
      constexpr int kWidth = 30;
      const int fill = static_cast<int>(frac * kWidth);
      std::fprintf(stderr, "\r[%s%s] %5.1f%% %-40.40s", std::string(fill, '#').c_str(),
                   std::string(kWidth - fill, '.').c_str(), frac * 100, what.c_str());
      if (done >= total) std::fputc('\n', stderr);
    } else if (decile != last_decile_) {
      last_decile_ = decile;
      std::fprintf(stderr, "quantize: %3d%% %s\n", decile * 10, what.c_str());
    }
    std::fflush(stderr);
  }

 private:
  bool tty_ = ::isatty(2) != 0;
  std::int64_t last_ns_ = 0;
  int last_decile_ = -1;
};

void run_quantize(const QuantizeCliOptions& o) {
  const auto ft = model::file_type_from_name(o.type);
  if (!ft) throw InvalidArgument(fmt::format("unknown type '{}' (expected one of {})", o.type, join_names()));
  if (o.in == o.out) throw InvalidArgument("input and output are the same file");
  const std::string in = resolve_model_path(o.in);
  model::QuantizeOptions qo;
  qo.ftype = *ft;
  qo.pure = o.pure;
  qo.threads = o.threads;
  ProgressBar bar;
  if (!o.quiet) qo.progress = [&bar](std::uint64_t d, std::uint64_t t, const std::string& n) { bar.update(d, t, n); };
  const model::QuantizeReport rep = model::quantize_model(in, o.out, qo);

  if (!o.quiet) {
    for (const auto& t : rep.tensors) {
      std::string shape = fmt::format("{}", t.ne[0]);
      for (int i = 1; i < 4 && t.ne[i] > 1; ++i) shape += fmt::format(" x {}", t.ne[i]);
      std::printf("%-32s %-16s %5s -> %-5s %10.3f -> %10.3f MiB%s\n", t.name.c_str(), shape.c_str(), type_name(t.from),
                  type_name(t.to), t.bytes_in / 1048576.0, t.bytes_out / 1048576.0,
                  t.fallback ? "  (fallback: row not a multiple of 256)" : "");
    }
  }
  std::printf("%s: %s%s, %.2f MiB -> %.2f MiB in %.2f s%s\n", o.out.c_str(), model::file_type_name(*ft),
              o.pure ? " (pure)" : "", rep.bytes_in / 1048576.0, rep.bytes_out / 1048576.0, rep.seconds,
              rep.n_fallback ? fmt::format(", {} tensor(s) used a fallback type", rep.n_fallback).c_str() : "");
}

}  // namespace

void register_quantize(CLI::App& app) {
  auto o = std::make_shared<QuantizeCliOptions>();
  auto* cmd = app.add_subcommand(
      "quantize",
      "Re-encode a GGUF model with llama-quantize's recipes: every 2-D weight gets the type llama.cpp "
      "(c392e50) would give it; norms and 1-D tensors stay as they are");
  cmd->add_option("input", o->in, "Input GGUF (any type g2c can decode)")->required();
  cmd->add_option("output", o->out, "Output GGUF (written to a temporary name, then renamed)")->required();
  cmd->add_option("type", o->type, "Recipe: " + join_names() + " (Q3_K/Q4_K/Q5_K mean the _M recipes)")->required();
  cmd->add_flag("--pure", o->pure,
                "Every quantizable tensor gets the base type (no Q6_K output, no mixture), like llama-quantize --pure");
  cmd->add_option("-t,--threads", o->threads, "Threads (0: physical cores)")->capture_default_str();
  cmd->add_flag("-q,--quiet", o->quiet, "No progress bar and no per-tensor table");
  cmd->callback([o] { run_quantize(*o); });
}

}  // namespace g2c::app
