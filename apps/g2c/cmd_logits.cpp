// `g2c logits --model F (--ids 1,5,17 | --prompt TEXT) [--top K] [--json]`: one forward pass with
// logits at every position and the top K of each, for parity checks against other implementations.
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/engine/open_model.hpp"
#include "g2c/model/model.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::app {
namespace {

struct LogitsOptions {
  std::string model;
  std::string tokenizer;
  std::string ids;
  std::string prompt;
  bool has_prompt = false;
  int top = 10;
  int threads = 0;
  bool json = false;
};

std::vector<std::int32_t> parse_ids(const std::string& s) {
  std::vector<std::int32_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 0 || v > INT32_MAX) throw InvalidArgument("--ids: '" + item + "' is not a token id");
    out.push_back(static_cast<std::int32_t>(v));
  }
  return out;
}

void run_logits(const LogitsOptions& o) {
  if (o.ids.empty() == !o.has_prompt) throw InvalidArgument("give exactly one of --ids and --prompt");
  if (o.top <= 0) throw InvalidArgument("--top must be positive");
  // --ids alone runs a llama2.c checkpoint that has no tokenizer; tokens are then shown as ids only.
  const engine::OpenedModel m = engine::open_model(resolve_model_path(o.model), resolve_tokenizer_path(o.tokenizer),
                                                   engine::TokenizerNeed::kOptional);
  const model::HParams& hp = m.model->hparams();
  const tokenizer::Tokenizer* tok = m.tokenizer.get();
  std::vector<std::int32_t> ids;
  if (o.has_prompt) {
    if (!tok) throw InvalidArgument("--prompt with a llama2.c checkpoint needs --tokenizer (e.g. tok512.bin)");
    ids = tok->encode(o.prompt, /*add_special=*/true, /*parse_special=*/true);
  } else {
    ids = parse_ids(o.ids);
  }
  if (ids.empty()) throw InvalidArgument("no tokens to evaluate");

  model::ContextOptions co;
  co.n_ctx = static_cast<std::int32_t>(ids.size());
  co.threads = o.threads;
  model::Context ctx(*m.model, co);
  std::vector<model::BatchToken> batch;
  for (std::size_t i = 0; i < ids.size(); ++i) batch.push_back({ids[i], 0, static_cast<std::int32_t>(i), true});
  ctx.decode(batch);

  const int k = static_cast<int>(std::min<std::int64_t>(o.top, hp.n_vocab));
  nlohmann::json positions = nlohmann::json::array();
  std::vector<std::int32_t> order(static_cast<std::size_t>(hp.n_vocab));
  for (std::int32_t i = 0; i < ctx.n_outputs(); ++i) {
    auto l = ctx.logits(i);
    for (std::size_t j = 0; j < order.size(); ++j) order[j] = static_cast<std::int32_t>(j);
    // Descending logit, then ascending id (the arch-goldens order).
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](std::int32_t a, std::int32_t b) { return l[a] != l[b] ? l[a] > l[b] : a < b; });
    if (o.json) {
      nlohmann::json top = nlohmann::json::array();
      for (int j = 0; j < k; ++j) top.push_back({order[j], l[order[j]]});
      positions.push_back({{"pos", i}, {"top", top}});
    } else {
      std::string line = fmt::format("pos {:4d} id {:6d}", i, ids[static_cast<std::size_t>(i)]);
      if (tok) line += fmt::format(" {:?}", tok->piece(ids[static_cast<std::size_t>(i)]));
      line += " |";
      for (int j = 0; j < k; ++j) line += fmt::format(" {}:{:.5f}", order[j], l[order[j]]);
      std::puts(line.c_str());
    }
  }
  if (o.json) std::puts(nlohmann::json{{"positions", positions}}.dump().c_str());
}

}  // namespace

void register_logits(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  auto* cmd = app.add_subcommand("logits", "Top-K logits at every position of one forward pass (parity checks)");
  cmd->add_option("-m,--model", o->model, "Model: GGUF or llama2.c .bin (a path, or a name in $G2C_MODELS_DIR)")
      ->required();
  cmd->add_option("--ids", o->ids, "Comma-separated token ids, fed as they are (no BOS added)");
  cmd->add_option("--prompt", o->prompt, "Text, tokenized with BOS as the vocabulary says")
      ->each([o](const std::string&) { o->has_prompt = true; });
  cmd->add_option("--tokenizer", o->tokenizer, kTokenizerHelp);
  cmd->add_option("--top", o->top, "Logits to show per position")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Threads (0: physical cores)")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print {\"positions\": [{\"pos\": 0, \"top\": [[id, logit], ...]}, ...]}");
  cmd->callback([o] { run_logits(*o); });
}

}  // namespace g2c::app
