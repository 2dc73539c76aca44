#include "g2c/engine/speed_bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include <sys/resource.h>

#include "g2c/core/error.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/kernels/kernels.hpp"

namespace g2c::engine {
namespace {

void validate(const SpeedBenchParams& p) {
  if (p.reps < 1) throw InvalidArgument(fmt::format("speed bench: repetitions must be at least 1, got {}", p.reps));
  bool any = false;
  for (const auto& [sizes, what] : {std::pair{&p.n_prompt, "prompt size"}, std::pair{&p.n_gen, "generation length"}}) {
    for (int n : *sizes) {
      if (n < 0) throw InvalidArgument(fmt::format("speed bench: {} {} is negative (0 skips it)", what, n));
      any = any || n > 0;
    }
  }
  if (!any) throw InvalidArgument("speed bench: nothing to measure: every prompt size and generation length is 0");
}

void run_pp(model::Context& ctx, const std::vector<std::int32_t>& ids) {
  std::vector<model::BatchToken> batch(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i)
    batch[i] = {ids[i], 0, static_cast<std::int32_t>(i), i + 1 == ids.size()};
  ctx.clear(0);
  ctx.decode(batch);
}

void run_tg(model::Context& ctx, int n, std::int64_t n_vocab) {
  ctx.clear(0);
  std::int32_t tok = 1;
  for (int i = 0; i < n; ++i) {
    ctx.decode({{tok, 0, i, true}});
    tok = static_cast<std::int32_t>((tok * 7 + 13) % n_vocab);
  }
}

// Times `reps` calls of `run`, each processing `n_tokens`, into a row's samples, mean and stddev.
template <typename Run>
void measure(SpeedBenchRow& row, int n_tokens, int reps, Run run) {
  for (int rep = 0; rep < reps; ++rep) {
    const Timer t;
    run();
    row.samples_ts.push_back(n_tokens / (static_cast<double>(t.elapsed_ns()) / 1e9));
  }
  const auto n = static_cast<double>(row.samples_ts.size());
  double sum = 0;
  for (double v : row.samples_ts) sum += v;
  row.avg_ts = sum / n;
  double sq = 0;
  for (double v : row.samples_ts) sq += (v - row.avg_ts) * (v - row.avg_ts);
  row.stddev_ts = row.samples_ts.size() > 1 ? std::sqrt(sq / (n - 1)) : 0;
}

double peak_rss_mib() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is KiB on Linux
}

}  // namespace

std::string logits_hash(std::span<const float> logits) {
  std::uint64_t h = 1469598103934665603ull;  // not FNV's basis: see the header
  for (float f : logits) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    for (int k = 0; k < 4; ++k) {
      h ^= (u >> (8 * k)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return fmt::format("{:016x}", h);
}

SpeedBenchResult speed_bench(const SpeedBenchParams& p) {
  validate(p);
  SpeedBenchResult r;
  const Timer load_timer;
  const std::unique_ptr<model::Model> model = model::Model::load(p.model_path);
  const std::int64_t n_vocab = model->hparams().n_vocab;
  int max_ctx = 1;
  for (int n : p.n_prompt) max_ctx = std::max(max_ctx, n);
  for (int n : p.n_gen) max_ctx = std::max(max_ctx, n);
  model::ContextOptions co;
  co.n_ctx = max_ctx;
  co.threads = p.threads;
  co.n_batch = std::max(512, max_ctx);  // each pp size in one pass
  co.kv_type = p.kv_type;
  model::Context ctx(*model, co);
  r.load_ms = load_timer.elapsed_ms();
  run_tg(ctx, 1, n_vocab);
  r.first_token_ms = load_timer.elapsed_ms();

  r.model_type = model->describe();
  r.weight_bytes = model->weight_bytes();
  r.kv_bytes = ctx.kv_bytes();
  r.n_threads = ctx.threads();
  r.isa = kernels::kernels().isa_name;

  std::mt19937 rng(42);
  for (int np : p.n_prompt) {
    if (np == 0) continue;
    std::vector<std::int32_t> ids(static_cast<std::size_t>(np));
    for (auto& t : ids) t = static_cast<std::int32_t>(rng() % static_cast<std::uint32_t>(n_vocab));
    run_pp(ctx, ids);  // warm-up
    SpeedBenchRow row;
    row.n_prompt = np;
    measure(row, np, p.reps, [&] { run_pp(ctx, ids); });
    row.logits_hash = logits_hash(ctx.logits(0));
    r.rows.push_back(std::move(row));
  }
  for (int ng : p.n_gen) {
    if (ng == 0) continue;
    run_tg(ctx, 1, n_vocab);  // warm-up
    SpeedBenchRow row;
    row.n_gen = ng;
    measure(row, ng, p.reps, [&] { run_tg(ctx, ng, n_vocab); });
    row.logits_hash = logits_hash(ctx.logits(0));
    row.gbps = static_cast<double>(r.weight_bytes) * row.avg_ts / 1e9;
    r.rows.push_back(std::move(row));
  }
  r.peak_rss_mib = peak_rss_mib();
  return r;
}

}  // namespace g2c::engine
