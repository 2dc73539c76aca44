#include "g2c/inference/eval.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <regex>
#include <sstream>

#include "g2c/core/error.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/core/timer.hpp"

namespace g2c::inference {
namespace {

std::string trim(std::string_view s) {
  const auto sp = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  while (!s.empty() && sp(s.front())) s.remove_prefix(1);
  while (!s.empty() && sp(s.back())) s.remove_suffix(1);
  return std::string(s);
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line, '\n')) lines.push_back(line);  // as llama-perplexity reads its prompt
  return lines;
}

bool is_index_line(const std::string& s) {
  const std::string t = trim(s);
  return t.size() == 1 && t[0] >= '0' && t[0] <= '3';
}

bool looks_hellaswag(const std::vector<std::string>& lines) {
  if (lines.empty() || lines.size() % 6 != 0) return false;
  for (std::size_t i = 1; i < lines.size(); i += 6) {
    if (!is_index_line(lines[i])) return false;
  }
  return true;
}

std::optional<double> first_number(const std::string& s) {
  static const std::regex num(R"([-+]?(\d[\d,]*\.?\d*|\.\d+)([eE][-+]?\d+)?)");
  std::smatch m;
  if (!std::regex_search(s, m, num)) return std::nullopt;
  std::string t = m.str();
  t.erase(std::remove(t.begin(), t.end(), ','), t.end());
  return std::strtod(t.c_str(), nullptr);
}

// The tokens of each ending's text shared by all of them (ids when the backend gave ids, else texts).
std::size_t common_prefix(const std::vector<LoglikResult>& rs) {
  const bool ids = std::all_of(rs.begin(), rs.end(), [](const LoglikResult& r) { return !r.token_ids.empty(); });
  std::size_t n = std::numeric_limits<std::size_t>::max();
  for (const auto& r : rs) n = std::min(n, r.token_logprobs.size());
  std::size_t k = 0;
  for (; k < n; ++k) {
    bool same = true;
    for (std::size_t e = 1; e < rs.size() && same; ++e) {
      same = ids ? rs[e].token_ids[k] == rs[0].token_ids[k] : rs[e].tokens[k] == rs[0].tokens[k];
    }
    if (!same) break;
  }
  return k;
}

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

const char* task_kind_name(TaskKind k) {
  switch (k) {
    case TaskKind::kGeneration: return "generation";
    case TaskKind::kChoice: return "choice";
    case TaskKind::kHellaswag: return "hellaswag";
    case TaskKind::kPerplexity: return "perplexity";
  }
  return "?";
}

TaskKind parse_task_kind(const std::string& name) {
  for (TaskKind k : {TaskKind::kGeneration, TaskKind::kChoice, TaskKind::kHellaswag, TaskKind::kPerplexity}) {
    if (name == task_kind_name(k)) return k;
  }
  throw InvalidArgument("unknown task type '" + name + "' (generation, choice, hellaswag, perplexity)");
}

EvalTask parse_task(const std::string& text, const std::string& name, std::optional<TaskKind> kind,
                    std::size_t perplexity_chunk_chars) {
  EvalTask t;
  t.name = name;
  const std::vector<std::string> lines = split_lines(text);
  const bool jsonl = name.ends_with(".jsonl") || name.ends_with(".json");
  std::vector<nlohmann::json> records;
  if (jsonl || kind == TaskKind::kGeneration || kind == TaskKind::kChoice) {
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (trim(lines[i]).empty()) continue;
      nlohmann::json j = nlohmann::json::parse(lines[i], nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        throw FormatError(fmt::format("{}:{}: not a JSON object", name, i + 1));
      }
      j["_line"] = i + 1;
      records.push_back(std::move(j));
    }
    if (records.empty()) throw FormatError(name + ": no records");
  }
  if (!kind) {
    if (!records.empty()) {
      kind = records[0].contains("prompt") ? TaskKind::kGeneration : TaskKind::kChoice;
    } else {
      kind = looks_hellaswag(lines) ? TaskKind::kHellaswag : TaskKind::kPerplexity;
    }
  }
  t.kind = *kind;
  const auto where = [&](const nlohmann::json& j) { return fmt::format("{}:{}", name, j["_line"].get<std::size_t>()); };
  switch (t.kind) {
    case TaskKind::kGeneration:
      for (const auto& j : records) {
        GenerationItem it;
        if (!j.contains("prompt") || !j["prompt"].is_string() || !j.contains("answer")) {
          throw FormatError(where(j) + ": a generation item needs \"prompt\" (string) and \"answer\"");
        }
        it.prompt = j["prompt"];
        it.answer = j["answer"].is_string() ? j["answer"].get<std::string>() : j["answer"].dump();
        it.scorer = j.value("scorer", std::string("exact"));
        it.max_tokens = j.value("max_tokens", 32);
        if (j.contains("stop")) it.stop = j["stop"].get<std::vector<std::string>>();
        score_generation(it.scorer, "", it.answer);  // an unknown scorer or bad regex fails at load
        t.generation.push_back(std::move(it));
      }
      break;
    case TaskKind::kChoice:
      for (const auto& j : records) {
        ChoiceItem it;
        const char* ek = j.contains("endings") ? "endings" : "choices";
        const char* gk = j.contains("gold") ? "gold" : "label";
        if (!j.contains("context") || !j["context"].is_string() || !j.contains(ek) || !j[ek].is_array() ||
            j[ek].size() < 2 || !j.contains(gk) || !j[gk].is_number_integer()) {
          throw FormatError(where(j) +
                            ": a choice item needs \"context\" (string), \"endings\" (2+ strings), \"gold\" (index)");
        }
        it.context = j["context"];
        it.endings = j[ek].get<std::vector<std::string>>();
        it.gold = j[gk];
        if (it.gold < 0 || it.gold >= static_cast<int>(it.endings.size())) {
          throw FormatError(
              fmt::format("{}: gold {} is not an index of its {} endings", where(j), it.gold, it.endings.size()));
        }
        it.source_index = t.choices.size();
        t.choices.push_back(std::move(it));
      }
      break;
    case TaskKind::kHellaswag:
      if (lines.size() % 6 != 0 || lines.empty()) {
        throw FormatError(
            fmt::format("{}: {} lines, not a multiple of 6 (HellaSwag layout: context, gold index, "
                        "4 endings)",
                        name, lines.size()));
      }
      for (std::size_t i = 0; i < lines.size(); i += 6) {
        if (!is_index_line(lines[i + 1])) {
          throw FormatError(fmt::format("{}:{}: the gold index must be 0-3, got '{}'", name, i + 2, lines[i + 1]));
        }
        ChoiceItem it;
        it.context = lines[i];
        it.gold = std::stoi(lines[i + 1]);
        for (std::size_t e = 0; e < 4; ++e) it.endings.push_back(lines[i + 2 + e]);
        it.source_index = i / 6;
        t.choices.push_back(std::move(it));
      }
      break;
    case TaskKind::kPerplexity: {
      if (perplexity_chunk_chars == 0) throw InvalidArgument("perplexity chunk size must be positive");
      std::string cur;
      for (const std::string& raw : lines) {
        std::string line = raw + "\n";
        while (!line.empty()) {
          if (!cur.empty() && cur.size() + line.size() > perplexity_chunk_chars) {
            t.chunks.push_back(cur);
            cur.clear();
          }
          const std::size_t take = std::min(line.size(), perplexity_chunk_chars);
          cur += line.substr(0, take);
          line.erase(0, take);
        }
      }
      if (!trim(cur).empty()) t.chunks.push_back(cur);
      if (t.chunks.empty()) throw FormatError(name + ": no text to score");
      break;
    }
  }
  return t;
}

EvalTask load_task(const std::string& path, std::optional<TaskKind> kind, std::size_t perplexity_chunk_chars) {
  if (!std::filesystem::exists(path)) throw IoError("task file not found: " + path);
  return parse_task(read_file(path), path, kind, perplexity_chunk_chars);
}

bool score_generation(const std::string& scorer, const std::string& completion, const std::string& answer) {
  if (scorer == "exact") return trim(completion) == trim(answer);
  if (scorer == "contains") return completion.find(answer) != std::string::npos;
  if (scorer == "regex") {
    try {
      return std::regex_search(completion, std::regex(answer, std::regex::ECMAScript));
    } catch (const std::regex_error& e) {
      throw InvalidArgument("scorer regex: bad pattern '" + answer + "': " + e.what());
    }
  }
  if (scorer == "numeric") {
    const std::optional<double> want = first_number(answer);
    if (!want) throw InvalidArgument("scorer numeric: the answer '" + answer + "' holds no number");
    const std::optional<double> got = first_number(completion);
    return got && std::abs(*got - *want) <= 1e-6 * std::max(1.0, std::abs(*want));
  }
  throw InvalidArgument("unknown scorer '" + scorer + "' (exact, contains, regex, numeric)");
}

Interval wilson_interval(std::size_t k, std::size_t n, double z) {
  if (n == 0) return {};
  const double nn = static_cast<double>(n), p = static_cast<double>(k) / nn, z2 = z * z;
  const double denom = 1.0 + z2 / nn;
  const double center = (p + z2 / (2.0 * nn)) / denom;
  const double half = z * std::sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn)) / denom;
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

LatencySummary summarize_latency(std::vector<double> ms) {
  LatencySummary s;
  s.calls = ms.size();
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  for (double v : ms) s.total_ms += v;
  s.mean_ms = s.total_ms / static_cast<double>(ms.size());
  s.p50_ms = percentile(ms, 0.5);
  s.p90_ms = percentile(ms, 0.9);
  s.max_ms = ms.back();
  return s;
}

EvalReport evaluate(Backend& backend, const EvalTask& task, const EvalOptions& opts) {
  const std::int64_t t0 = now_ns();
  EvalReport rep;
  rep.kind = task.kind;
  rep.task = task.name;
  rep.backend = backend.info();
  std::vector<double> lat;
  const auto limited = [&](std::size_t n) { return opts.limit ? std::min(n, *opts.limit) : n; };
  const auto progress = [&](std::size_t done, std::size_t total) {
    if (!opts.on_progress) return;
    EvalProgress p{done, total, rep.correct, 0.0};
    for (double v : lat) p.mean_latency_ms += v;
    if (!lat.empty()) p.mean_latency_ms /= static_cast<double>(lat.size());
    opts.on_progress(p);
  };
  const auto emit = [&](nlohmann::json item) {
    if (opts.on_item) opts.on_item(item);
    rep.items.push_back(std::move(item));
  };

  if (task.kind == TaskKind::kGeneration) {
    const std::size_t n = limited(task.generation.size());
    for (std::size_t i = 0; i < n; ++i) {
      const GenerationItem& it = task.generation[i];
      GenerateOptions g;
      g.max_new_tokens = it.max_tokens;
      g.temperature = 0.0;
      g.stop = it.stop;
      const InferenceResult r = backend.complete(it.prompt, g);
      lat.push_back(r.latency_ms);
      const bool ok = score_generation(it.scorer, r.completion, it.answer);
      rep.correct += ok;
      ++rep.n;
      emit({{"i", i},
            {"prompt", it.prompt},
            {"answer", it.answer},
            {"scorer", it.scorer},
            {"completion", r.completion},
            {"correct", ok},
            {"latency_ms", r.latency_ms}});
      progress(i + 1, n);
    }
    rep.correct_sum = rep.correct;
  } else if (task.kind == TaskKind::kChoice || task.kind == TaskKind::kHellaswag) {
    // Which tasks, in which order: the file's, or llama-perplexity --hellaswag's random draw.
    std::vector<std::size_t> order;
    const std::size_t n = limited(task.choices.size());
    if (task.kind == TaskKind::kHellaswag) {
      std::vector<std::size_t> left(task.choices.size());
      for (std::size_t i = 0; i < left.size(); ++i) left[i] = i;
      std::mt19937 rng(1);
      for (std::size_t i = 0; i < n; ++i) {
        std::uniform_int_distribution<std::size_t> dist(0, left.size() - 1);
        const std::size_t idx = dist(rng);
        order.push_back(left[idx]);
        left.erase(left.begin() + static_cast<std::ptrdiff_t>(idx));
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) order.push_back(i);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const ChoiceItem& it = task.choices[order[i]];
      std::vector<LoglikResult> rs;
      for (const std::string& e : it.endings) {
        rs.push_back(backend.loglikelihood(it.context, " " + e));
        lat.push_back(rs.back().latency_ms);
      }
      std::size_t cp = common_prefix(rs);
      cp = std::max<std::size_t>(cp, 1);
      std::vector<double> mean(rs.size()), sum(rs.size());
      std::vector<std::int64_t> count(rs.size());
      for (std::size_t e = 0; e < rs.size(); ++e) {
        const std::size_t sz = rs[e].token_logprobs.size();
        const std::size_t from = std::min(cp, sz > 0 ? sz - 1 : 0);
        double s = 0.0;
        for (std::size_t k = from; k < sz; ++k) s += rs[e].token_logprobs[k];
        count[e] = static_cast<std::int64_t>(sz - from);
        mean[e] = count[e] > 0 ? s / static_cast<double>(count[e]) : -std::numeric_limits<double>::infinity();
        sum[e] = rs[e].logprob;
      }
      const auto argmax = [](const std::vector<double>& v) {
        std::size_t best = 0;
        for (std::size_t k = 1; k < v.size(); ++k) {
          if (v[k] > v[best]) best = k;
        }
        return best;
      };
      const std::size_t pred = argmax(mean), pred_sum = argmax(sum);
      const bool ok = static_cast<int>(pred) == it.gold;
      rep.correct += ok;
      rep.correct_sum += static_cast<int>(pred_sum) == it.gold;
      ++rep.n;
      nlohmann::json means = nlohmann::json::array(), sums = nlohmann::json::array();
      for (std::size_t e = 0; e < rs.size(); ++e) {
        means.push_back(finite_or_null(mean[e]));
        sums.push_back(finite_or_null(sum[e]));
      }
      double item_ms = 0.0;
      for (const auto& r : rs) item_ms += r.latency_ms;
      emit({{"i", i},
            {"task", it.source_index},
            {"gold", it.gold},
            {"pred", pred},
            {"correct", ok},
            {"pred_sum", pred_sum},
            {"mean_logprob", means},
            {"sum_logprob", sums},
            {"n_tokens", count},
            {"common_prefix", cp},
            {"acc_norm_running", 100.0 * static_cast<double>(rep.correct) / static_cast<double>(rep.n)},
            {"latency_ms", item_ms}});
      progress(i + 1, n);
    }
  } else {
    const std::size_t n = limited(task.chunks.size());
    for (std::size_t i = 0; i < n; ++i) {
      const LoglikResult r = backend.loglikelihood("", task.chunks[i]);
      lat.push_back(r.latency_ms);
      rep.n_tokens += r.n_tokens;
      rep.nll -= r.logprob;
      ++rep.n;
      emit({{"i", i},
            {"n_tokens", r.n_tokens},
            {"nll", -r.logprob},
            {"ppl", r.n_tokens > 0 ? std::exp(-r.logprob / static_cast<double>(r.n_tokens)) : 0.0},
            {"latency_ms", r.latency_ms}});
      progress(i + 1, n);
    }
    rep.perplexity = rep.n_tokens > 0 ? std::exp(rep.nll / static_cast<double>(rep.n_tokens)) : 0.0;
  }
  if (task.kind != TaskKind::kPerplexity && rep.n > 0) {
    rep.accuracy = static_cast<double>(rep.correct) / static_cast<double>(rep.n);
    rep.accuracy_sum = static_cast<double>(rep.correct_sum) / static_cast<double>(rep.n);
    rep.ci = wilson_interval(rep.correct, rep.n);
  }
  rep.latency = summarize_latency(std::move(lat));
  rep.wall_s = static_cast<double>(now_ns() - t0) / 1e9;
  return rep;
}

nlohmann::json to_json(const EvalReport& r) {
  nlohmann::json j = {{"task", r.task},
                      {"kind", task_kind_name(r.kind)},
                      {"backend", to_json(r.backend)},
                      {"n", r.n},
                      {"wall_s", r.wall_s},
                      {"latency_ms",
                       {{"calls", r.latency.calls},
                        {"total", r.latency.total_ms},
                        {"mean", r.latency.mean_ms},
                        {"p50", r.latency.p50_ms},
                        {"p90", r.latency.p90_ms},
                        {"max", r.latency.max_ms}}}};
  if (r.kind == TaskKind::kPerplexity) {
    j["n_tokens"] = r.n_tokens;
    j["nll"] = r.nll;
    j["perplexity"] = r.perplexity;
  } else {
    j["correct"] = r.correct;
    j["accuracy"] = r.accuracy;
    j["ci95"] = {r.ci.lo, r.ci.hi};
    if (r.kind != TaskKind::kGeneration) {
      j["correct_sum"] = r.correct_sum;
      j["accuracy_sum"] = r.accuracy_sum;
    }
  }
  return j;
}

std::string format_report(const EvalReport& r) {
  std::string s =
      fmt::format("task {} ({}) | backend {}:{}\n", r.task, task_kind_name(r.kind), r.backend.name, r.backend.model_id);
  if (r.kind == TaskKind::kPerplexity) {
    s += fmt::format("perplexity {:.4f} over {} tokens in {} chunks\n", r.perplexity, r.n_tokens, r.n);
  } else {
    s += fmt::format("accuracy {:.2f}% ({}/{}), 95% CI [{:.2f}%, {:.2f}%] (Wilson)\n", 100.0 * r.accuracy, r.correct,
                     r.n, 100.0 * r.ci.lo, 100.0 * r.ci.hi);
    if (r.kind != TaskKind::kGeneration) {
      s += fmt::format("accuracy by summed log-probability {:.2f}% ({}/{})\n", 100.0 * r.accuracy_sum, r.correct_sum,
                       r.n);
    }
  }
  s += fmt::format("latency: {} calls, mean {:.2f} ms, p50 {:.2f} ms, p90 {:.2f} ms, max {:.2f} ms; wall {:.2f} s\n",
                   r.latency.calls, r.latency.mean_ms, r.latency.p50_ms, r.latency.p90_ms, r.latency.max_ms, r.wall_s);
  return s;
}

}  // namespace g2c::inference
