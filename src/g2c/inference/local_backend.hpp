#pragma once
// LocalTransformerBackend: the course API over the in-process engine (model + tokenizer + one
// Context), so a caller that holds a Backend cannot tell whether the model runs here or behind HTTP.
//
//   std::shared_ptr<const model::Model> m = model::Model::load("stories260K.gguf");
//   std::shared_ptr<const tokenizer::Tokenizer> t = tokenizer::Tokenizer::from_gguf(*m->gguf());
//   LocalTransformerBackend local(m, t, "stories260K");
//   InferenceResult r = local.complete("Once upon a time", {.max_new_tokens = 32, .temperature = 0});
//
// What a result holds:
//   completion         the generated text only (never the prompt), exactly the concatenation of the
//                      chunks stream() delivers; complete() is stream() without a callback.
//   prompt_tokens      ids fed to the model, BOS included (the prompt is encoded with add_special and
//                      parse_special, as `g2c run` and llama-cli do; "" is BOS alone).
//   completion_tokens  tokens appended after the prompt; a stopping end-of-generation token is not one.
//   latency_ms         wall clock around the whole call: waiting for the lock, tokenizing, prefill,
//                      decode, detokenizing and the callbacks.
//   metadata           prefill_ns, decode_ns (and the same as prompt_eval_ms, eval_ms), isa, threads,
//                      n_ctx, seed, stop_reason (the engine's name), done_reason ("stop" for an
//                      end token or stop string, "length" for max tokens or a full context,
//                      "canceled"), ttft_ms (stream() only, when a non-empty chunk was sent),
//                      canceled (stream() only), logprobs (when GenerateOptions::logprobs).
//
// Sampling: GenerateOptions maps onto the engine's chain with every filter the API does not name
// switched off: temperature as given (<= 0 is greedy), top_k unset = off, top_p unset = off,
// min_p off, no repetition penalty; seed unset = a random seed, reported in metadata["seed"].
//
// Thread-safety: one Context (one KV cache) per backend, guarded by a mutex, so concurrent calls are
// safe but run one after another. The model and tokenizer are shared read-only and may serve other
// backends at the same time. Continuous batching (several sequences in one Context) comes with the
// server.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "g2c/inference/backend.hpp"
#include "g2c/model/model.hpp"
#include "g2c/tokenizer/chat_template.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::inference {

class LocalTransformerBackend : public Backend {
 public:
  // eos_id: unset = the tokenizer's end-of-generation set (EOS, EOT, <|im_end|>, ...); an id = that
  // token ends the generation too (it is neither shown nor counted); -1 = no end token at all, every
  // request runs to max_new_tokens, a stop string or a full context.
  // extra is merged into info().extra over what the backend fills itself (isa, threads,
  // context_length, quantization, arch, chat_template).
  // context: n_ctx, threads, kv_type of the backend's Context (n_seq is always 1); context.naive runs
  // every request without the KV cache (the O(T^2) loop of `g2c run --no-kv-cache`), for comparison.
  LocalTransformerBackend(std::shared_ptr<const model::Model> model,
                          std::shared_ptr<const tokenizer::Tokenizer> tokenizer, std::string model_id = "g2c-local",
                          std::optional<std::int32_t> eos_id = std::nullopt, std::string name = "local",
                          nlohmann::json extra = nlohmann::json::object(), model::ContextOptions context = {});
  ~LocalTransformerBackend() override;

  BackendInfo info() const override;
  const model::Model& model() const { return *model_; }
  const tokenizer::Tokenizer& tokenizer() const { return *tok_; }
  // The template chat() renders with (from the GGUF's tokenizer.chat_template; plain when none).
  const tokenizer::ChatTemplate& chat_template() const { return chat_template_; }
  // True when requests run the naive loop (ContextOptions::naive); metadata["naive"] says what the
  // engine's context actually ran with.
  bool naive() const { return naive_; }

  InferenceResult complete(const std::string& prompt, const GenerateOptions& opts = {}) override;
  InferenceResult stream(const std::string& prompt, const GenerateOptions& opts,
                         const ChunkCallback& on_chunk) override;
  // Renders `messages` (and `tools`) with chat_template() - or, with tools, the GGUF's
  // tokenizer.chat_template.tool_use when it has one - and completes. The plain fallback also stops at
  // "\nUser:" / "\nSystem:" (the next turn) and trims the reply. With tools, the reply is parsed in
  // the template family's tool-call format (tokenizer/tool_calls.hpp): the calls go to
  // result.tool_calls (ids made up where the model gives none), a malformed call stays text with
  // metadata["tool_call_error"]. Tools with a template that has no tool-call format: UnsupportedError.
  // A conversation the template refuses (raise_exception): InvalidArgument with its message.
  ChatResult chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools = {},
                  const GenerateOptions& opts = {}) override;
  ChatResult chat_stream(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                         const GenerateOptions& opts, const ChunkCallback& on_chunk) override;
  // Scores context + continuation in one prompt pass (engine prompt_logprobs with the top-1
  // alternative for is_greedy); ContextOverflow when the text does not fit the context.
  LoglikResult loglikelihood(const std::string& context, const std::string& continuation) override;

 private:
  InferenceResult run(const std::string& prompt, const GenerateOptions& opts, const ChunkCallback* on_chunk);
  ChatResult run_chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                      const GenerateOptions& opts, const ChunkCallback* on_chunk);

  std::shared_ptr<const model::Model> model_;
  std::shared_ptr<const tokenizer::Tokenizer> tok_;
  std::string model_id_;
  std::optional<std::int32_t> eos_id_;
  std::string name_;
  bool naive_ = false;
  nlohmann::json extra_;
  tokenizer::ChatTemplate chat_template_;
  tokenizer::ChatTemplate tool_template_;  // tokenizer.chat_template.tool_use, else chat_template_
  tokenizer::GgufChat gguf_chat_;          // bos / eos text for the templates
  std::mutex mu_;                          // guards ctx_: one generation at a time
  std::unique_ptr<model::Context> ctx_;    // the KV cache and scratch, allocated once
};

// The weight type most of a model's matrices use ("F32", "Q8_0", ...): the quantization a user
// would name. A llama2.c checkpoint is "F32".
std::string model_quantization(const model::Model& model);

}  // namespace g2c::inference
