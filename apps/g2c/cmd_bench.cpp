// `g2c bench`: llama-bench's protocol (engine/speed_bench.hpp) with its md / json / csv output, so
// numbers compare with llama.cpp's on the same file.
#include <fmt/core.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.hpp"
#include "g2c/core/cpu.hpp"
#include "g2c/core/error.hpp"
#include "g2c/engine/speed_bench.hpp"

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

void run_bench(const BenchOptions& o) {
  if (o.output != "md" && o.output != "json" && o.output != "csv")
    throw InvalidArgument("g2c bench: --output must be md, json or csv, got '" + o.output + "'");
  if (o.kv != "f16" && o.kv != "f32") throw InvalidArgument("g2c bench: --kv must be f16 or f32, got '" + o.kv + "'");
  engine::SpeedBenchParams p;
  p.model_path = resolve_model_path(o.model);
  p.n_prompt = o.n_prompt;
  p.n_gen = o.n_gen;
  p.threads = o.threads;
  p.reps = o.reps;
  p.kv_type = o.kv == "f16" ? model::KvType::kF16 : model::KvType::kF32;
  const engine::SpeedBenchResult r = engine::speed_bench(p);

  const std::string& type = r.model_type;
  const std::uint64_t wbytes = r.weight_bytes;
  const char* isa = r.isa.c_str();
  fmt::print(stderr,
             "load: {:.1f} ms to a context, {:.1f} ms to the first token; peak RSS {:.1f} MiB (weights {:.1f} MiB, KV "
             "cache {:.1f} MiB)\n",
             r.load_ms, r.first_token_ms, r.peak_rss_mib, static_cast<double>(wbytes) / (1 << 20),
             static_cast<double>(r.kv_bytes) / (1 << 20));
  auto test_name = [](const engine::SpeedBenchRow& row) {
    return row.n_prompt ? fmt::format("pp{}", row.n_prompt) : fmt::format("tg{}", row.n_gen);
  };
  if (o.output == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& row : r.rows)
      arr.push_back({{"model_filename", p.model_path},
                     {"model_type", type},
                     {"model_size", wbytes},
                     {"n_params", nullptr},
                     {"n_threads", r.n_threads},
                     {"n_prompt", row.n_prompt},
                     {"n_gen", row.n_gen},
                     {"avg_ts", row.avg_ts},
                     {"stddev_ts", row.stddev_ts},
                     {"samples_ts", row.samples_ts},
                     {"isa", isa},
                     {"gbps", row.gbps ? nlohmann::json(*row.gbps) : nlohmann::json(nullptr)},
                     {"logits_hash", row.logits_hash},
                     {"type_k", o.kv},
                     {"type_v", o.kv},
                     {"cpu_info", cpu_features().brand},
                     {"load_ms", r.load_ms},
                     {"first_token_ms", r.first_token_ms},
                     {"peak_rss_mib", r.peak_rss_mib}});
    fmt::print("{}\n", arr.dump(2));
  } else if (o.output == "csv") {
    fmt::print("model_type,model_size,n_threads,isa,n_prompt,n_gen,avg_ts,stddev_ts,gbps,logits_hash\n");
    for (const auto& row : r.rows)
      fmt::print("\"{}\",{},{},{},{},{},{:.4f},{:.4f},{:.3f},{}\n", type, wbytes, r.n_threads, isa, row.n_prompt,
                 row.n_gen, row.avg_ts, row.stddev_ts, row.gbps.value_or(0.0), row.logits_hash);
  } else {
    fmt::print("| model | size | threads | isa | test | t/s | GB/s | logits hash |\n");
    fmt::print("| --- | ---: | ---: | --- | --- | ---: | ---: | --- |\n");
    for (const auto& row : r.rows)
      fmt::print("| {} | {:.2f} MiB | {} | {} | {} | {:.2f} ± {:.2f} | {} | {} |\n", type,
                 static_cast<double>(wbytes) / (1 << 20), r.n_threads, isa, test_name(row), row.avg_ts, row.stddev_ts,
                 row.gbps ? fmt::format("{:.2f}", *row.gbps) : std::string("–"), row.logits_hash);
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
