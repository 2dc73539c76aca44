// `g2c fit [--model F | --like NAME --type Q4_K_M] [--ctx N] [--parallel N] [--kv-type f16|f32]`: what a
// model costs in memory before it is loaded (model/memory_fit.hpp): weights, KV cache, scratch, the
// total, and whether it fits this machine's available memory. `--table` prints the seed's "which
// model fits which Mac" table for every shape of the synth table.
#include <fmt/core.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/model/memory_fit.hpp"
#include "g2c/model/quantize.hpp"
#include "g2c/model/synth.hpp"

namespace g2c::app {
namespace {

struct FitCliOptions {
  std::string model;
  std::string like;
  std::string type = "Q4_K_M";
  int n_ctx = 0;
  int parallel = 1;
  int batch = 512;
  int threads = 0;
  std::string kv = "f16";
  bool table = false;
  bool json = false;
};

double mib(std::uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }
double gib(std::uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0); }

model::SynthShape shape_or_throw(const std::string& like) {
  if (auto s = model::synth_shape(like)) return *s;
  std::string names;
  for (const auto& s : model::synth_shapes()) names += (names.empty() ? "" : ", ") + s.like;
  throw InvalidArgument(fmt::format("unknown shape '{}' (expected one of {})", like, names));
}

model::FileType ftype_or_throw(const std::string& type) {
  if (auto ft = model::file_type_from_name(type)) return *ft;
  throw InvalidArgument(fmt::format("unknown --type '{}' (expected one of F32, F16, Q8_0, Q4_0, Q4_K_M, ...)", type));
}

model::FitOptions fit_options(const FitCliOptions& o) {
  if (o.kv != "f16" && o.kv != "f32") throw InvalidArgument("--kv-type must be f16 or f32, got '" + o.kv + "'");
  model::FitOptions f;
  f.n_ctx = o.n_ctx;
  f.n_seq = o.parallel;
  f.n_batch = o.batch;
  f.threads = o.threads;
  f.kv_type = o.kv == "f16" ? model::KvType::kF16 : model::KvType::kF32;
  return f;
}

void print_fit(const model::MemoryFit& f, int batch) {
  const double params = static_cast<double>(f.n_params);
  fmt::print("model    {} ({}, {})\n", f.model, f.weight_type,
             params >= 1e9 ? fmt::format("{:.2f} B parameters", params / 1e9)
                           : fmt::format("{:.2f} M parameters", params / 1e6));
  fmt::print("weights  {:>12} bytes  {:>9.1f} MiB  ({})\n", f.weight_bytes, mib(f.weight_bytes),
             f.weights_exact ? "exact, from the file" : "from the recipe: each tensor in the type the recipe picks");
  fmt::print(
      "KV cache {:>12} bytes  {:>9.1f} MiB  (2 x n_ctx {} x n_layer {} x n_head_kv {} x head_dim {} x {} B {} x {} "
      "seq)\n",
      f.kv_bytes, mib(f.kv_bytes), f.n_ctx, f.n_layer, f.n_head_kv, f.head_dim,
      f.kv_type == model::KvType::kF16 ? 2 : 4, f.kv_type == model::KvType::kF16 ? "f16" : "f32", f.n_seq);
  fmt::print("scratch  {:>12} bytes  {:>9.1f} MiB  (activations of one {}-token pass, attention scratch, logits)\n",
             f.scratch_bytes, mib(f.scratch_bytes), batch);
  fmt::print("total    {:>12} bytes  {:>9.1f} MiB  = {:.2f} GiB\n", f.total_bytes(), mib(f.total_bytes()),
             gib(f.total_bytes()));
  if (auto avail = model::available_memory_bytes()) {
    const bool fits = f.total_bytes() <= *avail;
    fmt::print("this machine: {:.2f} GiB available now (MemAvailable): {} ({:.2f} GiB {})\n", gib(*avail),
               fits ? "fits" : "does NOT fit", gib(fits ? *avail - f.total_bytes() : f.total_bytes() - *avail),
               fits ? "to spare" : "short");
  }
  if (f.n_ctx > f.n_ctx_train && f.n_ctx_train > 0)
    fmt::print("note: n_ctx {} is beyond the model's training context {}\n", f.n_ctx, f.n_ctx_train);
}

void print_table(const FitCliOptions& o) {
  const model::FileType ft = ftype_or_throw(o.type);
  model::FitOptions fo = fit_options(o);
  if (fo.n_ctx == 0) fo.n_ctx = 4096;
  const std::vector<int> rams = {8, 16, 32, 64, 128};
  fmt::print("Which model fits which Mac: {} weights, KV {} at n_ctx {} x {} sequence(s)\n", o.type, o.kv, fo.n_ctx,
             fo.n_seq);
  fmt::print(
      "Usable = what macOS lets the GPU wire by default: 2/3 of RAM up to 36 GB, 3/4 above (iogpu.wired_limit_mb);\n"
      "'ok' = total <= usable - 2 GiB (room for the rest), 'tight' = total <= usable, 'no' = over.\n\n");
  std::string head = fmt::format("{:<15} {:>7} {:>9} {:>8} {:>9}", "model", "params", "weights", "KV", "total");
  for (int r : rams) head += fmt::format(" {:>6}", fmt::format("{}GB", r));
  fmt::print("{}\n", head);
  std::string usable = fmt::format("{:<15} {:>7} {:>9} {:>8} {:>9}", "(usable GiB)", "", "", "", "");
  for (int r : rams)
    usable += fmt::format(" {:>6.1f}", gib(model::mac_usable_bytes(static_cast<std::uint64_t>(r) << 30)));
  fmt::print("{}\n", usable);
  for (const model::SynthShape& s : model::synth_shapes()) {
    const model::MemoryFit f = model::fit_shape(s, ft, fo);
    std::string row =
        fmt::format("{:<15} {:>6.2f}B {:>6.2f}GiB {:>5.2f}GiB {:>6.2f}GiB", s.like,
                    static_cast<double>(f.n_params) / 1e9, gib(f.weight_bytes), gib(f.kv_bytes), gib(f.total_bytes()));
    for (int r : rams) {
      const std::uint64_t use = model::mac_usable_bytes(static_cast<std::uint64_t>(r) << 30);
      const char* v = f.total_bytes() + (2ull << 30) <= use ? "ok" : f.total_bytes() <= use ? "tight" : "no";
      row += fmt::format(" {:>6}", v);
    }
    fmt::print("{}\n", row);
  }
}

void run_fit(const FitCliOptions& o) {
  if (o.table) {
    print_table(o);
    return;
  }
  if (o.model.empty() == o.like.empty()) throw InvalidArgument("fit: give --model FILE or --like NAME (one of them)");
  const model::FitOptions fo = fit_options(o);
  const model::MemoryFit f = o.model.empty() ? model::fit_shape(shape_or_throw(o.like), ftype_or_throw(o.type), fo)
                                             : model::fit_model_file(resolve_model_path(o.model), fo);
  if (o.json) {
    nlohmann::json j = {{"model", f.model},
                        {"weight_type", f.weight_type},
                        {"weights_exact", f.weights_exact},
                        {"n_params", f.n_params},
                        {"weight_bytes", f.weight_bytes},
                        {"n_ctx", f.n_ctx},
                        {"n_seq", f.n_seq},
                        {"kv_type", o.kv},
                        {"kv_bytes", f.kv_bytes},
                        {"scratch_bytes", f.scratch_bytes},
                        {"total_bytes", f.total_bytes()}};
    if (auto a = model::available_memory_bytes()) j["available_bytes"] = *a;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  print_fit(f, o.batch);
}

}  // namespace

void register_fit(CLI::App& app) {
  auto o = std::make_shared<FitCliOptions>();
  auto* cmd = app.add_subcommand("fit", "Memory a model needs: weights, KV cache, scratch, and whether it fits");
  cmd->add_option("-m,--model", o->model, "A model file (weights exact from it)");
  cmd->add_option("--like", o->like, "A named shape of the synth table (llama-3.2-3b, qwen2.5-7b, ...)");
  cmd->add_option("--type", o->type, "Recipe for --like and --table (F32, F16, Q8_0, Q4_0, Q4_K_M, ...)")
      ->capture_default_str();
  cmd->add_option("-c,--ctx", o->n_ctx, "Context length per sequence (0: the model's, at most 4096)")
      ->capture_default_str();
  cmd->add_option("--parallel", o->parallel, "Sequences, each with its own KV cache (g2c serve --parallel)")
      ->capture_default_str();
  cmd->add_option("--batch", o->batch, "Tokens per pass (the scratch buffers)")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Threads (attention scratch per thread; 0: physical cores)")
      ->capture_default_str();
  cmd->add_option("--kv-type", o->kv, "KV cache type: f16 (llama.cpp's default) or f32 (g2c run's)")
      ->capture_default_str();
  cmd->add_flag("--table", o->table, "The seed's which-model-fits-which-Mac table (8/16/32/64/128 GB)");
  cmd->add_flag("--json", o->json, "Print the numbers as JSON");
  cmd->callback([o] { run_fit(*o); });
}

}  // namespace g2c::app
