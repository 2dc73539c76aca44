// Encode throughput (MB/s of input text) per vocabulary: the 46 llama.cpp vector strings joined and
// repeated to ~1 MB, encoded in one call without BOS and without special parsing (the vector settings).
//   build/release/bench/tokenizer_bench --benchmark_min_time=1
// Bytes/s in the output is the figure; ids/s is reported as a counter.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "g2c/gguf/gguf.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

#ifndef G2C_SHARED_DIR
#define G2C_SHARED_DIR "../shared"
#endif

namespace {

namespace fs = std::filesystem;
using g2c::tokenizer::Tokenizer;

std::string corpus() {
  std::ifstream f(fs::path(G2C_SHARED_DIR) / "tokenizer-vectors" / "ggml-vocab-gpt-2.gguf.inp", std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string one = ss.str();
  // Drop the separators: the test strings back to back.
  std::string joined;
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::size_t pos = 0;
  for (std::size_t hit; (hit = one.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
    joined += one.substr(pos, hit - pos) + "\n";
  std::string text;
  while (!joined.empty() && text.size() < (1u << 20)) text += joined;
  return text;
}

void bm_encode(benchmark::State& state, std::shared_ptr<Tokenizer> tok, const std::string* text) {
  std::size_t n_ids = 0;
  for (auto _ : state) {
    auto ids = tok->encode(*text, false, false);
    n_ids = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text->size()));
  state.counters["ids/s"] = benchmark::Counter(static_cast<double>(n_ids) * static_cast<double>(state.iterations()),
                                               benchmark::Counter::kIsRate);
  state.counters["bytes/id"] = static_cast<double>(text->size()) / static_cast<double>(n_ids ? n_ids : 1);
}

}  // namespace

int main(int argc, char** argv) {
  static const std::string text = corpus();
  if (text.empty()) {
    std::fprintf(stderr, "tokenizer_bench: no vector inputs under %s\n", G2C_SHARED_DIR);
    return 1;
  }
  const fs::path shared(G2C_SHARED_DIR);
  std::vector<std::pair<std::string, fs::path>> files;
  for (const char* dir : {"tokenizer-vectors", "tokenizer-vectors-synthetic"}) {
    std::vector<std::pair<std::string, fs::path>> part;
    for (const auto& e : fs::directory_iterator(shared / dir))
      if (e.path().extension() == ".gguf") part.emplace_back(e.path().stem().string(), e.path());
    std::sort(part.begin(), part.end());
    files.insert(files.end(), part.begin(), part.end());
  }
  for (const auto& [name, path] : files) {
    auto file = g2c::gguf::File::open(path.string());
    std::shared_ptr<Tokenizer> tok = Tokenizer::from_gguf(*file);
    benchmark::RegisterBenchmark(("encode/" + name).c_str(), bm_encode, tok, &text)->Unit(benchmark::kMillisecond);
  }
  std::shared_ptr<Tokenizer> bin = Tokenizer::from_llama2c((shared / "models" / "tok512.bin").string(), 512);
  benchmark::RegisterBenchmark("encode/tok512.bin", bm_encode, bin, &text)->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
