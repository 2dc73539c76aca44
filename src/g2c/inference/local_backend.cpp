#include "g2c/inference/local_backend.hpp"

#include "g2c/tokenizer/jinja.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "g2c/core/error.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/engine/generate.hpp"
#include "g2c/gguf/types.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/sampling/grammar.hpp"
#include "g2c/sampling/json_schema.hpp"
#include "g2c/sampling/sampler.hpp"

namespace g2c::inference {
namespace {

double ns_to_ms(std::int64_t ns) { return static_cast<double>(ns) / 1e6; }

sampling::SamplerParams sampler_params(const GenerateOptions& opts) {
  sampling::SamplerParams sp;
  sp.temperature = static_cast<float>(opts.temperature);
  sp.top_k = opts.top_k ? *opts.top_k : 0;
  sp.top_p = opts.top_p ? static_cast<float>(*opts.top_p) : 1.0f;
  sp.min_p = 0.0f;
  sp.repeat_penalty = 1.0f;
  sp.repeat_last_n = 0;
  sp.seed = opts.seed ? *opts.seed : sampling::kRandomSeed;
  return sp;
}

std::string trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

std::string model_quantization(const model::Model& model) {
  const gguf::File* file = model.gguf();
  if (file == nullptr) return "F32";  // llama2.c checkpoints are float32 throughout
  // Count the matrices (2-D and up) by type; the norms and biases are F32 in every quantization.
  std::map<GgmlType, std::int64_t> count;
  for (const gguf::TensorInfo& t : file->tensors()) {
    if (t.n_dims >= 2) count[t.type] += t.n_elements();
  }
  if (count.empty()) return "F32";
  auto best =
      std::max_element(count.begin(), count.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  return type_name(best->first);
}

LocalTransformerBackend::LocalTransformerBackend(std::shared_ptr<const model::Model> model,
                                                 std::shared_ptr<const tokenizer::Tokenizer> tokenizer,
                                                 std::string model_id, std::optional<std::int32_t> eos_id,
                                                 std::string name, nlohmann::json extra, model::ContextOptions context)
    : model_(std::move(model)),
      tok_(std::move(tokenizer)),
      model_id_(std::move(model_id)),
      eos_id_(eos_id),
      name_(std::move(name)) {
  if (!model_ || !tok_) throw InvalidArgument("LocalTransformerBackend: model and tokenizer must not be null");
  const std::int64_t n_vocab = model_->hparams().n_vocab;
  if (tok_->n_vocab() > n_vocab) {
    throw InvalidArgument("LocalTransformerBackend: the tokenizer has " + std::to_string(tok_->n_vocab()) +
                          " tokens but the model's vocabulary is " + std::to_string(n_vocab));
  }
  if (eos_id_ && (*eos_id_ < -1 || *eos_id_ >= n_vocab)) {
    throw InvalidArgument("LocalTransformerBackend: eos_id " + std::to_string(*eos_id_) + " out of range [-1, " +
                          std::to_string(n_vocab) + ")");
  }
  context.n_seq = 1;
  naive_ = context.naive;
  ctx_ = std::make_unique<model::Context>(*model_, context);

  if (const gguf::File* f = model_->gguf()) gguf_chat_ = tokenizer::read_gguf_chat(*f);
  chat_template_ = tokenizer::detect_chat_template(gguf_chat_.chat_template);
  tool_template_ = gguf_chat_.tool_use_template.empty() ? chat_template_
                                                        : tokenizer::detect_chat_template(gguf_chat_.tool_use_template);

  extra_ = nlohmann::json::object();
  extra_["arch"] = model_->hparams().arch_name;
  extra_["quantization"] = model_quantization(*model_);
  extra_["context_length"] = ctx_->n_ctx();
  extra_["n_ctx_train"] = model_->hparams().n_ctx_train;
  extra_["isa"] = kernels::kernels().isa_name;
  extra_["threads"] = ctx_->threads();
  extra_["kv_type"] = context.kv_type == model::KvType::kF16 ? "f16" : "f32";
  extra_["naive"] = naive_;
  extra_["chat_template"] = tokenizer::family_name(chat_template_.family);
  extra_["path"] = model_->path();
  if (extra.is_object()) {
    for (auto it = extra.begin(); it != extra.end(); ++it) extra_[it.key()] = it.value();
  }
}

LocalTransformerBackend::~LocalTransformerBackend() = default;

BackendInfo LocalTransformerBackend::info() const { return BackendInfo{name_, model_id_, extra_}; }

InferenceResult LocalTransformerBackend::complete(const std::string& prompt, const GenerateOptions& opts) {
  return run(prompt, opts, nullptr);
}

InferenceResult LocalTransformerBackend::stream(const std::string& prompt, const GenerateOptions& opts,
                                                const ChunkCallback& on_chunk) {
  return run(prompt, opts, on_chunk ? &on_chunk : nullptr);
}

InferenceResult LocalTransformerBackend::run(const std::string& prompt, const GenerateOptions& opts,
                                             const ChunkCallback* on_chunk) {
  const std::int64_t t0 = now_ns();
  const std::vector<std::int32_t> ids = tok_->encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  if (ids.empty()) {
    throw InvalidArgument("backend '" + name_ + "': the prompt is empty and the vocabulary has no BOS token");
  }

  engine::GenerateParams gp;
  gp.max_tokens = opts.max_new_tokens;
  gp.sampling = sampler_params(opts);
  gp.stop = opts.stop;
  gp.logprobs = opts.logprobs;
  gp.naive = naive_;  // generate() sets the context's mode for the call from this, whatever it was built with
  gp.ignore_eos = eos_id_ && *eos_id_ == -1;
  if (!opts.grammar.empty() && !opts.json_schema.is_null()) {
    throw InvalidArgument("backend '" + name_ + "': GenerateOptions grammar and json_schema: give one of them");
  }
  if (!opts.grammar.empty()) gp.grammar = sampling::Grammar::parse(opts.grammar);
  if (!opts.json_schema.is_null())
    gp.grammar = sampling::Grammar::parse(sampling::json_schema_to_gbnf(opts.json_schema));
  // An end id outside the tokenizer's end-of-generation set is caught in the callback below.
  const std::int32_t extra_eos = eos_id_ && *eos_id_ >= 0 && !tok_->is_eog(*eos_id_) ? *eos_id_ : -1;
  const std::string extra_eos_text = extra_eos >= 0 ? tok_->decode(std::vector<std::int32_t>{extra_eos}) : "";

  std::string text;  // what was delivered (stream) or would have been (complete)
  std::optional<double> ttft_ms;
  bool canceled = false, hit_extra_eos = false;
  std::optional<bool> ran_naive;  // the context's mode while generate() runs, read at the first token
  const auto on_token = [&](const engine::TokenEvent& e) {
    if (!ran_naive) ran_naive = ctx_->naive();
    std::string_view piece = e.text;
    if (extra_eos >= 0 && e.token == extra_eos) {
      // The end token is not text: drop its piece from this event (held-back text before it stays).
      if (piece.size() >= extra_eos_text.size() && piece.ends_with(extra_eos_text)) {
        piece.remove_suffix(extra_eos_text.size());
      }
      hit_extra_eos = true;
    }
    text.append(piece);
    if (on_chunk != nullptr && !piece.empty()) {
      if (!ttft_ms) ttft_ms = ns_to_ms(now_ns() - t0);
      if (!(*on_chunk)(piece)) {
        canceled = true;
        return false;
      }
    }
    return !hit_extra_eos;
  };

  engine::GenerateResult g;
  std::int32_t threads = 0, n_ctx = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    g = engine::generate(*ctx_, *tok_, ids, gp, on_token);
    threads = ctx_->threads();
    n_ctx = ctx_->n_ctx();
  }

  std::int64_t n_generated = g.stats.n_generated;
  std::string stop_reason = engine::stop_reason_name(g.stop_reason);
  std::string done = engine::done_reason(g.stop_reason);
  if (hit_extra_eos && !canceled) {
    // Our own end token: not counted, reported as the engine reports its end tokens.
    --n_generated;
    if (!g.tokens.empty()) g.tokens.pop_back();
    if (!g.logprobs.empty()) g.logprobs.pop_back();
    stop_reason = engine::stop_reason_name(engine::StopReason::kEog);
    done = "stop";
  }

  InferenceResult r;
  r.prompt = prompt;
  r.completion = std::move(text);
  r.prompt_tokens = static_cast<std::int64_t>(ids.size());
  r.completion_tokens = n_generated;
  r.backend = info();
  nlohmann::json& m = r.metadata;
  m["prefill_ns"] = g.stats.prefill_ns;
  m["decode_ns"] = g.stats.decode_ns;
  m["prompt_eval_ms"] = ns_to_ms(g.stats.prefill_ns);
  m["eval_ms"] = ns_to_ms(g.stats.decode_ns);
  m["isa"] = kernels::kernels().isa_name;
  m["threads"] = threads;
  m["n_ctx"] = n_ctx;
  m["seed"] = g.seed;
  m["naive"] = ran_naive.value_or(naive_);
  m["stop_reason"] = stop_reason;
  m["done_reason"] = done;
  if (!g.stop_string.empty()) m["stop_string"] = g.stop_string;
  if (opts.logprobs) m["logprobs"] = g.logprobs;
  if (gp.grammar) m["grammar_complete"] = g.grammar_complete;
  if (on_chunk != nullptr) {
    m["canceled"] = canceled;
    if (ttft_ms) m["ttft_ms"] = *ttft_ms;
  }
  r.latency_ms = ns_to_ms(now_ns() - t0);
  return r;
}

LoglikResult LocalTransformerBackend::loglikelihood(const std::string& context, const std::string& continuation) {
  const std::int64_t t0 = now_ns();
  const std::string text = context + continuation;
  const std::vector<std::int32_t> ids = tok_->encode(text, /*add_special=*/true, /*parse_special=*/true);
  if (ids.empty()) {
    throw InvalidArgument("backend '" + name_ + "': the text to score is empty and the vocabulary has no BOS token");
  }
  engine::GenerateParams gp;
  gp.max_tokens = 0;
  gp.sampling.temperature = 0.0f;
  gp.prompt_logprobs = true;
  gp.logprobs = true;
  gp.top_logprobs = 1;
  gp.naive = naive_;
  engine::GenerateResult g;
  {
    std::lock_guard<std::mutex> lock(mu_);
    g = engine::generate(*ctx_, *tok_, ids, gp);
  }
  LoglikResult r;
  r.token_ids = ids;
  // Where each token starts in `text`: the pieces decoded one after another, less SentencePiece's
  // word-start space when the text does not begin with a space (as g2c serve's text_offset).
  tokenizer::StreamDecoder dec(*tok_);
  std::vector<std::size_t> offsets;
  std::string decoded;
  for (std::int32_t id : ids) {
    offsets.push_back(decoded.size());
    const std::string piece = dec.push(id);
    r.tokens.push_back(piece);
    decoded += piece;
  }
  const std::size_t shift = !decoded.empty() && decoded[0] == ' ' && (text.empty() || text[0] != ' ') ? 1 : 0;
  for (std::size_t& a : offsets) a = std::min(text.size(), a >= shift ? a - shift : 0);
  r.token_logprobs = g.prompt_logprobs;
  r.token_greedy.assign(ids.size(), false);
  for (std::size_t i = 1; i < ids.size() && i < g.prompt_top_logprobs.size(); ++i) {
    const auto& top = g.prompt_top_logprobs[i];
    r.token_greedy[i] = !top.empty() && (top[0].token == ids[i] || top[0].logprob <= r.token_logprobs[i]);
  }
  sum_continuation(r, continuation_start(offsets, text.size(), context.size()));
  r.backend = info();
  r.latency_ms = ns_to_ms(now_ns() - t0);
  return r;
}

ChatResult LocalTransformerBackend::chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                                         const GenerateOptions& opts) {
  return run_chat(messages, tools, opts, nullptr);
}

ChatResult LocalTransformerBackend::chat_stream(const std::vector<ChatMessage>& messages,
                                                const std::vector<ToolSpec>& tools, const GenerateOptions& opts,
                                                const ChunkCallback& on_chunk) {
  return run_chat(messages, tools, opts, on_chunk ? &on_chunk : nullptr);
}

ChatResult LocalTransformerBackend::run_chat(const std::vector<ChatMessage>& messages,
                                             const std::vector<ToolSpec>& tools, const GenerateOptions& opts,
                                             const ChunkCallback* on_chunk) {
  const std::int64_t t0 = now_ns();
  const tokenizer::ChatTemplate& tmpl = tools.empty() ? chat_template_ : tool_template_;
  if (!tools.empty() && !tokenizer::supports_tools(tmpl)) {
    throw UnsupportedError("backend '" + name_ + "' (" + model_id_ + "): the chat template (" +
                           tokenizer::family_name(tmpl.family) + ") has no tool-call format g2c parses (" +
                           std::to_string(tools.size()) + " tool(s) given)");
  }
  const bool plain = !tmpl.jinja && tmpl.family == tokenizer::ChatFamily::kPlain;
  GenerateOptions o = opts;
  if (plain) {
    // The fallback layout has no end-of-turn token: the next "User:" / "System:" line ends the reply.
    o.stop.push_back("\nUser:");
    o.stop.push_back("\nSystem:");
  }
  std::string prompt;
  if (tmpl.jinja) {
    tokenizer::ChatRequest req = chat_request(messages, tools);
    req.bos_token = gguf_chat_.bos_token;
    req.eos_token = gguf_chat_.eos_token;
    try {
      prompt = tokenizer::render_prompt(tmpl, req);
    } catch (const tokenizer::jinja::TemplateRaised& e) {
      throw InvalidArgument("backend '" + name_ + "': the chat template refuses this conversation: " + e.what());
    }
  } else {
    prompt = tokenizer::render_chat(tmpl, chat_turns(messages), /*add_generation_prompt=*/true);
  }

  // What the caller sees while streaming: with tools or reasoning, only the text the call parser says is
  // safe to show (never a call, a marker or the thinking); with the plain layout, the reply trimmed as
  // the whole reply is (leading whitespace dropped, trailing whitespace held until more text follows).
  const bool reasoning = tmpl.family == tokenizer::ChatFamily::kDeepSeekR1;
  const bool parse = !tools.empty() || reasoning;
  std::optional<tokenizer::ToolCallStream> calls;
  if (parse) calls.emplace(tmpl.family, reasoning, reasoning && tokenizer::prompt_opens_reasoning(tmpl.family, prompt));
  bool started = false;
  std::string held;  // plain: trailing whitespace not yet shown
  const ChunkCallback show = [&](std::string_view piece) -> bool {
    std::string out;
    if (calls) {
      out = calls->feed(piece);
    } else if (plain) {
      held.append(piece);
      if (!started) {
        const std::size_t first = held.find_first_not_of(" \t\r\n");
        if (first == std::string::npos) {
          held.clear();
          return true;
        }
        held.erase(0, first);
        started = true;
      }
      const std::size_t last = held.find_last_not_of(" \t\r\n");
      if (last == std::string::npos) return true;
      out = held.substr(0, last + 1);
      held.erase(0, last + 1);
    } else {
      out.assign(piece);
    }
    return out.empty() || (*on_chunk)(out);
  };
  InferenceResult r = run(prompt, o, on_chunk != nullptr ? &show : nullptr);

  ChatResult out;
  out.message.role = "assistant";
  out.message.content = plain ? trim(r.completion) : r.completion;
  if (parse) {
    tokenizer::ToolCallStream::Final fin = calls->finish();
    if (on_chunk != nullptr && !fin.rest.empty() && !r.metadata.value("canceled", false)) (*on_chunk)(fin.rest);
    const tokenizer::ParsedChat& parsed = fin.parsed;
    out.message.content = parsed.content;
    if (!tools.empty()) out.message.tool_calls = tool_calls_of(parsed, tmpl.family);
    out.tool_calls = out.message.tool_calls;
    if (!parsed.tool_call_error.empty()) out.metadata["tool_call_error"] = parsed.tool_call_error;
    if (!parsed.reasoning_content.empty()) out.metadata["reasoning_content"] = parsed.reasoning_content;
  }
  if (on_chunk != nullptr) out.metadata["canceled"] = r.metadata.value("canceled", false);
  out.prompt_tokens = r.prompt_tokens;
  out.completion_tokens = r.completion_tokens;
  for (const char* key : {"prompt_eval_ms", "eval_ms"}) out.timings[key] = r.metadata[key];
  if (r.metadata.contains("ttft_ms")) out.timings["ttft_ms"] = r.metadata["ttft_ms"];
  out.done_reason = r.metadata["done_reason"].get<std::string>();
  out.backend = r.backend;
  out.latency_ms = ns_to_ms(now_ns() - t0);
  return out;
}

}  // namespace g2c::inference
