// Kernel microbenchmarks: matvec (decode) over a 4096 x 4096 weight (a TinyLlama-sized projection)
// per weight type per ISA table, reported as weight GB/s, and matmul (prefill) over 64 tokens.
//   build/release/bench/kernels_bench --benchmark_min_time=0.2
//   build/release/bench/kernels_bench --benchmark_filter='matvec/Q4_0/avx512|(small|tiles)/Q4_0/avx512'
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "g2c/kernels/kernels.hpp"
#include "g2c/quant/quant.hpp"

namespace {

using g2c::GgmlType;
using g2c::kernels::KernelTable;

constexpr std::int64_t kN = 4096, kRowsM = 4096;

struct Fixture {
  std::vector<std::uint8_t> w, x;
  std::size_t rb = 0, xs = 0;
};

Fixture make(const KernelTable& t, GgmlType type, std::int64_t n_tok, std::int64_t kN = kN,
             std::int64_t kRowsM = kRowsM) {
  Fixture f;
  f.rb = *g2c::row_bytes(type, kN);
  f.w.resize(f.rb * kRowsM);
  std::mt19937 rng(1);
  for (auto& b : f.w) b = static_cast<std::uint8_t>(rng());
  // sane scales: quantize a few real rows where possible and tile them
  std::vector<float> src(kN);
  std::normal_distribution<float> nd;
  if (g2c::quant::can_quantize(type)) {
    for (auto& v : src) v = nd(rng);
    std::vector<std::uint8_t> row(f.rb);
    g2c::quant::quantize_row(type, src.data(), row.data(), kN);
    for (std::int64_t r = 0; r < kRowsM; ++r) std::memcpy(f.w.data() + r * f.rb, row.data(), f.rb);
  }
  const auto& k = t.types[static_cast<int>(type)];
  f.xs = k.act_type == GgmlType::F32 ? kN * 4 : *g2c::row_bytes(k.act_type, kN);
  f.x.resize(f.xs * n_tok);
  for (std::int64_t it = 0; it < n_tok; ++it) {
    for (auto& v : src) v = nd(rng);
    if (k.from_float)
      k.from_float(src.data(), f.x.data() + it * f.xs, kN);
    else
      std::memcpy(f.x.data() + it * f.xs, src.data(), kN * 4);
  }
  return f;
}

void BM_matvec(benchmark::State& state, const char* isa, GgmlType type) {
  const KernelTable* t = g2c::kernels::table_for(isa);
  if (!t) {
    state.SkipWithError("table not available");
    return;
  }
  Fixture f = make(*t, type, 1);
  std::vector<float> y(kRowsM);
  const auto& k = t->types[static_cast<int>(type)];
  for (auto _ : state) {
    k.matvec(kN, f.w.data(), f.rb, f.x.data(), y.data(), 0, kRowsM);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(f.w.size()));
  state.SetLabel(isa);
}

void BM_matmul64(benchmark::State& state, const char* isa, GgmlType type) {
  const KernelTable* t = g2c::kernels::table_for(isa);
  if (!t) {
    state.SkipWithError("table not available");
    return;
  }
  const std::int64_t n_tok = 64, rows = 512;
  Fixture f = make(*t, type, n_tok);
  std::vector<float> y(rows * n_tok);
  const auto& k = t->types[static_cast<int>(type)];
  for (auto _ : state) {
    k.matmul(kN, f.w.data(), f.rb, f.x.data(), f.xs, n_tok, y.data(), rows, 0, rows);
    benchmark::DoNotOptimize(y.data());
  }
  // multiply-adds per second, as GFLOP/s (2 flops each)
  state.counters["GFLOPs"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * kN * rows * n_tok,
                                                benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  state.SetLabel(isa);
}

// A decode step of n_tok sequences over a llama-110m FFN weight (2048 rows of 768): matmul_small
// (`small`) against the prefill tiles (`tiles`), and matvec once per token (`matvec_each`); weight GB/s
// counts the weight bytes once per call.
void BM_batch(benchmark::State& state, const char* isa, GgmlType type, int path) {
  constexpr std::int64_t kN = 768, kRowsM = 2048;
  const KernelTable* t = g2c::kernels::table_for(isa);
  if (!t) {
    state.SkipWithError("table not available");
    return;
  }
  const std::int64_t n_tok = state.range(0);
  Fixture f = make(*t, type, n_tok, kN, kRowsM);
  std::vector<float> y(kRowsM * n_tok);
  const auto& k = t->types[static_cast<int>(type)];
  const auto fn = path == 1 ? k.matmul_small : k.matmul;
  for (auto _ : state) {
    if (path == 2) {
      for (std::int64_t it = 0; it < n_tok; ++it)
        k.matvec(kN, f.w.data(), f.rb, f.x.data() + it * f.xs, y.data() + it * kRowsM, 0, kRowsM);
    } else {
      fn(kN, f.w.data(), f.rb, f.x.data(), f.xs, n_tok, y.data(), kRowsM, 0, kRowsM);
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(f.w.size()));
  state.SetLabel(isa);
}

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0,
                           GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K, GgmlType::Q3_K,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

int reg = [] {
  for (const char* isa : {"ref", "avx2", "avx512"}) {
    for (GgmlType t : kTypes) {
      std::string name = std::string(g2c::type_name(t)) + "/" + isa;
      benchmark::RegisterBenchmark(("matvec/" + name).c_str(), BM_matvec, isa, t)->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("matmul64/" + name).c_str(), BM_matmul64, isa, t)->Unit(benchmark::kMillisecond);
    }
  }
  for (const char* isa : {"avx2", "avx512"}) {
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F16}) {
      for (int path : {0, 1, 2}) {
        const char* what[] = {"tiles/", "small/", "matvec_each/"};
        std::string name = std::string(what[path]) + g2c::type_name(t) + "/" + isa;
        benchmark::RegisterBenchmark(name.c_str(), BM_batch, isa, t, path)
            ->Arg(2)
            ->Arg(4)
            ->Arg(8)
            ->Arg(16)
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
