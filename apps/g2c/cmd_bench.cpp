// `g2c bench`: llama-bench's definitions, so numbers compare with llama.cpp on the same file.
//   pp N: N random token ids processed in one batch from an empty cache.
//   tg N: N tokens decoded one at a time from an empty cache (no sampling).
//   A warm-up run first (pp of the prompt size and one tg step), then -r repetitions;
//   avg_ts / stddev_ts are the mean and sample stddev of the per-repetition tok/s.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include <sys/resource.h>

#include "commands.hpp"
#include "g2c/core/cpu.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/model/model.hpp"

namespace g2c::app {
namespace {

struct BenchOptions {
  std::string model;
  std::vector<int> n_prompt{512};
  std::vector<int> n_gen{128};
  int threads = 0;
  int reps = 5;
  std::string output = "md";
  std::string kv = "f16";
};

struct Row {
  int n_prompt = 0, n_gen = 0, n_threads = 0;
  std::vector<double> samples;  // tok/s per repetition
  double avg = 0, stddev = 0, gbps = 0;
  std::string logits_hash;
};

// FNV-1a over the float bits of the last logits: a kernel change that alters results shows here.
std::string hash_logits(std::span<const float> l) {
  std::uint64_t h = 1469598103934665603ull;
  for (float f : l) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    for (int k = 0; k < 4; ++k) {
      h ^= (u >> (8 * k)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return fmt::format("{:016x}", h);
}

void run_pp(model::Context& ctx, const std::vector<std::int32_t>& ids) {
  std::vector<model::BatchToken> batch(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i)
    batch[i] = {ids[i], 0, static_cast<std::int32_t>(i), i + 1 == ids.size()};
  ctx.clear(0);
  ctx.decode(batch);
}

void run_tg(model::Context& ctx, int n, std::int32_t first, std::int64_t n_vocab) {
  ctx.clear(0);
  std::int32_t tok = first;
  for (int i = 0; i < n; ++i) {
    ctx.decode({{tok, 0, i, true}});
    tok = static_cast<std::int32_t>((tok * 7 + 13) % n_vocab);  // deterministic, no sampling
  }
}

void stats(Row& r) {
  double s = 0;
  for (double v : r.samples) s += v;
  r.avg = r.samples.empty() ? 0 : s / static_cast<double>(r.samples.size());
  double q = 0;
  for (double v : r.samples) q += (v - r.avg) * (v - r.avg);
  r.stddev = r.samples.size() > 1 ? std::sqrt(q / static_cast<double>(r.samples.size() - 1)) : 0;
}

void run_bench(const BenchOptions& o) {
  if (o.reps < 1) throw InvalidArgument("g2c bench: -r must be at least 1");
  if (o.output != "md" && o.output != "json" && o.output != "csv")
    throw InvalidArgument("g2c bench: --output must be md, json or csv, got '" + o.output + "'");
  if (o.kv != "f16" && o.kv != "f32") throw InvalidArgument("g2c bench: --kv must be f16 or f32, got '" + o.kv + "'");
  const std::string path = resolve_model_path(o.model);
  Timer load_timer;
  auto model = model::Model::load(path);
  const auto& hp = model->hparams();
  int max_ctx = 1;
  for (int p : o.n_prompt) max_ctx = std::max(max_ctx, p);
  for (int g : o.n_gen) max_ctx = std::max(max_ctx, g);
  model::ContextOptions co;
  co.n_ctx = max_ctx;
  co.threads = o.threads;
  co.n_batch = std::max(512, max_ctx);
  co.kv_type = o.kv == "f16" ? model::KvType::kF16 : model::KvType::kF32;
  model::Context ctx(*model, co);
  // Load time as llama-bench's users see it: file open to a usable context (the first token's
  // forward pass is part of the warm-up below and reported with it).
  const double load_ms = load_timer.elapsed_ms();
  // File open to the first token's logits: with weights used in place from the mapping, the first
  // forward pass is where their pages come in, so this is the load time a user waits for.
  run_tg(ctx, 1, 1, hp.n_vocab);
  const double first_token_ms = load_timer.elapsed_ms();
  const std::uint64_t wbytes = model->weight_bytes();
  const char* isa = kernels::kernels().isa_name;

  std::mt19937 rng(42);
  std::vector<Row> rows;
  for (int np : o.n_prompt) {
    if (np <= 0) continue;
    std::vector<std::int32_t> ids(static_cast<std::size_t>(np));
    for (auto& t : ids) t = static_cast<std::int32_t>(rng() % static_cast<std::uint32_t>(hp.n_vocab));
    run_pp(ctx, ids);  // warm-up
    Row r{np, 0, ctx.threads(), {}, 0, 0, 0, ""};
    for (int rep = 0; rep < o.reps; ++rep) {
      Timer t;
      run_pp(ctx, ids);
      r.samples.push_back(np / (static_cast<double>(t.elapsed_ns()) / 1e9));
    }
    r.logits_hash = hash_logits(ctx.logits(0));
    stats(r);
    rows.push_back(r);
  }
  for (int ng : o.n_gen) {
    if (ng <= 0) continue;
    run_tg(ctx, 1, 1, hp.n_vocab);  // warm-up
    Row r{0, ng, ctx.threads(), {}, 0, 0, 0, ""};
    for (int rep = 0; rep < o.reps; ++rep) {
      Timer t;
      run_tg(ctx, ng, 1, hp.n_vocab);
      r.samples.push_back(ng / (static_cast<double>(t.elapsed_ns()) / 1e9));
    }
    r.logits_hash = hash_logits(ctx.logits(0));
    stats(r);
    r.gbps = static_cast<double>(wbytes) * r.avg / 1e9;
    rows.push_back(r);
  }

  const std::string type = model->describe();
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  const double peak_rss_mib = static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is KiB on Linux
  fmt::print(stderr,
             "load: {:.1f} ms to a context, {:.1f} ms to the first token; peak RSS {:.1f} MiB (weights {:.1f} MiB, KV "
             "cache {:.1f} MiB)\n",
             load_ms, first_token_ms, peak_rss_mib, static_cast<double>(wbytes) / (1 << 20),
             static_cast<double>(ctx.kv_bytes()) / (1 << 20));
  auto test_name = [](const Row& r) {
    return r.n_prompt ? fmt::format("pp{}", r.n_prompt) : fmt::format("tg{}", r.n_gen);
  };
  if (o.output == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : rows)
      arr.push_back({{"model_filename", path},
                     {"model_type", type},
                     {"model_size", wbytes},
                     {"n_params", nullptr},
                     {"n_threads", r.n_threads},
                     {"n_prompt", r.n_prompt},
                     {"n_gen", r.n_gen},
                     {"avg_ts", r.avg},
                     {"stddev_ts", r.stddev},
                     {"samples_ts", r.samples},
                     {"isa", isa},
                     {"gbps", r.n_gen ? nlohmann::json(r.gbps) : nlohmann::json(nullptr)},
                     {"logits_hash", r.logits_hash},
                     {"type_k", o.kv},
                     {"type_v", o.kv},
                     {"cpu_info", cpu_features().brand},
                     {"load_ms", load_ms},
                     {"first_token_ms", first_token_ms},
                     {"peak_rss_mib", peak_rss_mib}});
    fmt::print("{}\n", arr.dump(2));
  } else if (o.output == "csv") {
    fmt::print("model_type,model_size,n_threads,isa,n_prompt,n_gen,avg_ts,stddev_ts,gbps,logits_hash\n");
    for (const auto& r : rows)
      fmt::print("\"{}\",{},{},{},{},{},{:.4f},{:.4f},{:.3f},{}\n", type, wbytes, r.n_threads, isa, r.n_prompt, r.n_gen,
                 r.avg, r.stddev, r.gbps, r.logits_hash);
  } else {
    fmt::print("| model | size | threads | isa | test | t/s | GB/s | logits hash |\n");
    fmt::print("| --- | ---: | ---: | --- | --- | ---: | ---: | --- |\n");
    for (const auto& r : rows)
      fmt::print("| {} | {:.2f} MiB | {} | {} | {} | {:.2f} ± {:.2f} | {} | {} |\n", type,
                 static_cast<double>(wbytes) / (1 << 20), r.n_threads, isa, test_name(r), r.avg, r.stddev,
                 r.n_gen ? fmt::format("{:.2f}", r.gbps) : std::string("–"), r.logits_hash);
  }
}

}  // namespace

void register_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Prompt processing (pp) and generation (tg) speed, llama-bench style");
  cmd->add_option("--model,-m", o->model, "GGUF or llama2.c model")->required();
  cmd->add_option("-p,--n-prompt", o->n_prompt, "Prompt sizes (0 to skip)")->delimiter(',');
  cmd->add_option("-n,--n-gen", o->n_gen, "Generation lengths (0 to skip)")->delimiter(',');
  cmd->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  cmd->add_option("-r,--repetitions", o->reps, "Repetitions");
  cmd->add_option("-o,--output", o->output, "md, json or csv");
  cmd->add_option("--kv", o->kv, "KV cache type: f16 (llama-bench's default) or f32");
  cmd->callback([o] { run_bench(*o); });
}

}  // namespace g2c::app
