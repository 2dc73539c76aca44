#pragma once
// The speed protocol of `g2c bench`: llama-bench's definitions, so numbers compare with llama.cpp on the
// same file and threads.
//
//   pp N: N random token ids processed in one batch from an empty cache (the prompt's prefill).
//   tg N: N tokens decoded one at a time from an empty cache, no sampling (the ids follow
//         t0 = 1, t(i+1) = (7 t(i) + 13) mod n_vocab).
//   A warm-up run before each size (the pp of that size, one tg step), then `reps` timed repetitions.
//   avg_ts / stddev_ts are the mean and sample standard deviation of the per-repetition tok/s.
//
// The pp ids are drawn from one std::mt19937 seeded with 42, `id = draw % n_vocab`, size after size in
// the order given (sizes of 0 draw nothing), so every build benchmarks the same tokens and the logits
// hash of a row compares across builds: a change that alters results shows there at once.
//
//   engine::SpeedBenchParams p;  p.model_path = "stories260K.gguf";  p.n_prompt = {512};  p.n_gen = {128};
//   engine::SpeedBenchResult r = engine::speed_bench(p);
//   // r.rows: one per non-zero size, pp rows first: tok/s per repetition, mean, stddev, GB/s, logits hash.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "g2c/model/model.hpp"

namespace g2c::engine {

struct SpeedBenchParams {
  std::string model_path;          // GGUF or llama2.c .bin (no tokenizer needed)
  std::vector<int> n_prompt{512};  // pp sizes; 0 skips
  std::vector<int> n_gen{128};     // tg lengths; 0 skips
  int threads = 0;                 // 0: physical cores
  int reps = 5;
  model::KvType kv_type = model::KvType::kF16;  // llama-bench's default
};

struct SpeedBenchRow {
  int n_prompt = 0;                // pp rows: the prompt size; 0 in tg rows
  int n_gen = 0;                   // tg rows: the tokens decoded; 0 in pp rows
  std::vector<double> samples_ts;  // tok/s of each repetition
  double avg_ts = 0;
  double stddev_ts = 0;  // 0 with a single repetition
  // tg rows: weight bytes x avg_ts / 1e9. Every decode step reads every weight once, so this is the
  // memory bandwidth the measured speed needs. None for pp rows: a batch reads each weight once for
  // all of its tokens.
  std::optional<double> gbps;
  std::string logits_hash;  // logits_hash() of the last token's logits in the last repetition
};

struct SpeedBenchResult {
  std::string model_type;          // Model::describe()
  std::uint64_t weight_bytes = 0;  // bound weights: what one decode step reads
  std::uint64_t kv_bytes = 0;      // the context's KV cache
  int n_threads = 0;
  std::string isa;  // the kernel table that ran (kernels().isa_name)
  // File open to a usable context, as llama-bench's users see it.
  double load_ms = 0;
  // File open to the first token's logits: weights are used in place from the mapping, so the first
  // forward pass is where their pages come in, and this is the wait a user feels.
  double first_token_ms = 0;
  double peak_rss_mib = 0;          // the process's peak resident memory when the runs end
  std::vector<SpeedBenchRow> rows;  // the pp sizes in order, then the tg lengths
};

// Loads the model, runs every row and returns the measurements. Throws InvalidArgument before loading
// anything when reps < 1, a size is negative, or no size is positive; load errors name the file.
SpeedBenchResult speed_bench(const SpeedBenchParams& params);

// FNV-1a (64-bit prime) over the bytes of the floats' bit patterns, little end first, as 16 hex digits.
// The offset basis is 1469598103934665603, FNV's 14695981039346656037 with its last digit lost when
// g2c bench was first written; it stays so that hashes compare with every run before.
std::string logits_hash(std::span<const float> logits);

}  // namespace g2c::engine
