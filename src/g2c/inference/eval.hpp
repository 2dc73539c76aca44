#pragma once
// Evals through any Backend (seed exercises 4 and 5): a task file scored by generation, by
// log-likelihood multiple choice, or by perplexity, with accuracy, a 95% Wilson interval, one JSON
// record per item and the latency of the calls.
//
//   EvalTask t = load_task("hellaswag_stories.txt");       // kind detected from the file
//   EvalReport r = evaluate(backend, t, {.limit = 100});
//   fmt::print("{}", format_report(r));
//
// Task files:
//   generation  JSONL {"prompt", "answer", "scorer": exact|contains|regex|numeric (default exact),
//               "max_tokens" (default 32), "stop": [..]}: greedy completion, scored on the completion.
//   choice      JSONL {"context", "endings": [..] (or "choices"), "gold": index (or "label")}.
//   hellaswag   llama.cpp's HellaSwag layout, 6 lines per task: context, gold index, 4 endings.
//   perplexity  any other text: scored through the backend in chunks of whole lines.
// Multiple choice (both layouts) is scored exactly as `llama-perplexity --hellaswag` scores a task:
// each ending's text is context + " " + ending, tokenized as one text with BOS; the ending's tokens are
// those after the longest token prefix the endings' texts share, and its score is their mean
// log-probability; the highest score wins (the first on a tie). The HellaSwag layout also selects
// tasks as llama-perplexity does (std::mt19937 seeded 1, each task drawn uniformly from those left),
// so `--limit N` is `--hellaswag-tasks N` and the running accuracy lines match its output one by one.
// accuracy_sum reports the same tasks decided by the sum of the continuation's log-probabilities
// (Backend::loglikelihood's split) instead.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "g2c/inference/backend.hpp"

namespace g2c::inference {

enum class TaskKind { kGeneration, kChoice, kHellaswag, kPerplexity };
const char* task_kind_name(TaskKind k);  // "generation", "choice", "hellaswag", "perplexity"
// The names above; throws InvalidArgument naming the value otherwise.
TaskKind parse_task_kind(const std::string& name);

struct GenerationItem {
  std::string prompt, answer;
  std::string scorer = "exact";
  int max_tokens = 32;
  std::vector<std::string> stop;
};

struct ChoiceItem {
  std::string context;
  std::vector<std::string> endings;
  int gold = 0;
  std::size_t source_index = 0;  // the task's place in the file
};

struct EvalTask {
  TaskKind kind = TaskKind::kGeneration;
  std::string name;  // the file's name
  std::vector<GenerationItem> generation;
  std::vector<ChoiceItem> choices;  // choice and hellaswag, in file order
  std::vector<std::string> chunks;  // perplexity: the text cut at line ends into chunks
};

// Reads a task file; `kind` unset detects it (.jsonl: by the first record's fields; other text: the
// HellaSwag layout when every 6-line group's second line is an index 0-3, else perplexity text).
// perplexity_chunk_chars: the most characters of one perplexity chunk (a longer line is cut).
// Throws IoError / FormatError naming the file and line.
EvalTask load_task(const std::string& path, std::optional<TaskKind> kind = std::nullopt,
                   std::size_t perplexity_chunk_chars = 800);
EvalTask parse_task(const std::string& text, const std::string& name, std::optional<TaskKind> kind = std::nullopt,
                    std::size_t perplexity_chunk_chars = 800);

// Scores a generation item's completion; throws InvalidArgument for an unknown scorer or a bad regex.
//   exact: equal after trimming whitespace; contains: the answer is a substring; regex: the answer is an
//   ECMAScript pattern found in the completion; numeric: the first number in the completion equals the
//   answer (relative 1e-6).
bool score_generation(const std::string& scorer, const std::string& completion, const std::string& answer);

struct Interval {
  double lo = 0.0, hi = 0.0;
};
// The Wilson score interval of k successes in n (z = 1.96: 95%); [0, 0] when n = 0.
Interval wilson_interval(std::size_t k, std::size_t n, double z = 1.959963984540054);

struct LatencySummary {
  std::size_t calls = 0;
  double total_ms = 0.0, mean_ms = 0.0, p50_ms = 0.0, p90_ms = 0.0, max_ms = 0.0;
};
LatencySummary summarize_latency(std::vector<double> ms);

struct EvalProgress {
  std::size_t done = 0, total = 0, correct = 0;
  double mean_latency_ms = 0.0;
};

struct EvalOptions {
  std::optional<std::size_t> limit;                         // items at most (hellaswag: tasks drawn)
  std::function<void(const EvalProgress&)> on_progress;     // after each item
  std::function<void(const nlohmann::json& item)> on_item;  // each per-item record as it is made
};

struct EvalReport {
  TaskKind kind = TaskKind::kGeneration;
  std::string task;
  BackendInfo backend;
  std::size_t n = 0, correct = 0, correct_sum = 0;
  double accuracy = 0.0, accuracy_sum = 0.0;
  Interval ci;
  // perplexity: tokens scored, their summed negative log-likelihood, exp(nll / tokens)
  std::int64_t n_tokens = 0;
  double nll = 0.0, perplexity = 0.0;
  LatencySummary latency;
  double wall_s = 0.0;
  std::vector<nlohmann::json> items;
};

EvalReport evaluate(Backend& backend, const EvalTask& task, const EvalOptions& opts = {});

nlohmann::json to_json(const EvalReport& r);  // without the items
std::string format_report(const EvalReport& r);

}  // namespace g2c::inference
