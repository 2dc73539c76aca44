// The OpenAI API (api-compat.md §4): /v1/models, /v1/models/{id}, /v1/completions, /v1/chat/completions,
// /v1/embeddings. Streams are SSE: `data: {json}\n\n` events, a finish chunk, an optional usage chunk,
// then `data: [DONE]`.
#include <atomic>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "g2c/core/timer.hpp"
#include "g2c/inference/build_info.hpp"
#include "g2c/server/generation.hpp"
#include "g2c/server/request_parse.hpp"
#include "g2c/server/routes.hpp"

namespace g2c::server {
namespace {

std::string dumps(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }
std::string sse(const Json& j) { return "data: " + dumps(j) + "\n\n"; }

std::string new_id(const char* prefix) {
  static std::atomic<std::uint64_t> counter{0};
  return fmt::format("{}-{:x}{:04x}", prefix, static_cast<std::uint64_t>(unix_ns() / 1000), counter++ & 0xffff);
}

std::string fingerprint() { return std::string("fp_g2c_") + inference::g2c_commit(); }

std::string base64(const std::vector<float>& v) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<unsigned char> bytes(v.size() * 4);
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<unsigned char>(u >> (8 * b));  // little-endian
  }
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::uint32_t n = (std::uint32_t(bytes[i]) << 16) |
                            (i + 1 < bytes.size() ? std::uint32_t(bytes[i + 1]) << 8 : 0) |
                            (i + 2 < bytes.size() ? std::uint32_t(bytes[i + 2]) : 0);
    out += k[(n >> 18) & 63];
    out += k[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? k[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? k[n & 63] : '=';
  }
  return out;
}

Json usage(const engine::GenerateResult& r) {
  const std::int64_t p = r.stats.n_prompt_tokens, c = r.stats.n_generated;
  return {{"prompt_tokens", p},
          {"completion_tokens", c},
          {"total_tokens", p + c},
          {"prompt_tokens_details", {{"cached_tokens", r.stats.n_prompt_cached}}}};
}

// llama.cpp's `timings`, so clients (and g2c's own OpenAIBackend) can tell server time from the wire.
Json timings(const engine::GenerateResult& r) {
  const double pm = static_cast<double>(r.stats.prefill_ns) / 1e6, dm = static_cast<double>(r.stats.decode_ns) / 1e6;
  const double pn = r.stats.n_prompt_tokens, dn = r.stats.n_generated;
  return {{"prompt_n", r.stats.n_prompt_tokens},
          {"prompt_ms", pm},
          {"prompt_per_second", pm > 0 ? pn * 1e3 / pm : 0.0},
          {"predicted_n", r.stats.n_generated},
          {"predicted_ms", dm},
          {"predicted_per_second", dm > 0 ? dn * 1e3 / dm : 0.0}};
}

// Chat logprobs entries: {token, logprob, bytes, top_logprobs: [...]}.
Json chat_logprob(const ServedModel& m, std::int32_t token, double lp, const std::vector<sampling::TokenLogprob>& top) {
  const std::string text = token_text(m, token);
  Json alts = Json::array();
  for (const auto& t : top) {
    const std::string tt = token_text(m, t.token);
    alts.push_back({{"token", tt}, {"logprob", t.logprob}, {"bytes", token_bytes(tt)}});
  }
  return {{"token", text}, {"logprob", lp}, {"bytes", token_bytes(text)}, {"top_logprobs", alts}};
}

// Where each token of `ids` starts in `text`, the text a client receives for them: the tokens' pieces
// decoded one after another, less the word-start space SentencePiece puts before the first word when
// `text` does not carry it (an echoed prompt as the client wrote it, a completion after BOS alone).
std::vector<std::size_t> text_offsets(const tokenizer::Tokenizer& tok, const std::vector<std::int32_t>& ids,
                                      const std::string& text, std::size_t base) {
  tokenizer::StreamDecoder dec(tok);
  std::vector<std::size_t> acc;
  std::string decoded;
  for (std::int32_t id : ids) {
    acc.push_back(decoded.size());
    decoded += dec.push(id);
  }
  const std::size_t shift = !decoded.empty() && decoded[0] == ' ' && (text.empty() || text[0] != ' ') ? 1 : 0;
  for (std::size_t& a : acc) a = base + std::min(text.size(), a >= shift ? a - shift : 0);
  return acc;
}

// Legacy completion logprobs: parallel arrays over tokens; the prompt's first token has a null logprob.
struct LegacyLogprobs {
  Json tokens = Json::array(), token_logprobs = Json::array(), top_logprobs = Json::array(),
       text_offset = Json::array();
  void add(const ServedModel& m, std::int32_t token, const Json& lp, const std::vector<sampling::TokenLogprob>& top,
           std::size_t offset) {
    tokens.push_back(token_text(m, token));
    token_logprobs.push_back(lp);
    Json alts = Json::object();
    for (const auto& t : top) alts[token_text(m, t.token)] = t.logprob;
    top_logprobs.push_back(top.empty() && lp.is_null() ? Json(nullptr) : alts);
    text_offset.push_back(offset);
  }
  Json json() const {
    return {{"tokens", tokens},
            {"token_logprobs", token_logprobs},
            {"top_logprobs", top_logprobs},
            {"text_offset", text_offset}};
  }
};

void add_prompt_logprobs(const ServedModel& m, const std::vector<std::int32_t>& prompt, const std::string& echo_text,
                         const engine::GenerateResult& r, LegacyLogprobs& lp) {
  const std::vector<std::size_t> offsets = text_offsets(m.tokenizer(), prompt, echo_text, 0);
  for (std::size_t i = 0; i < prompt.size(); ++i) {
    const bool have = i > 0 && i < r.prompt_logprobs.size();
    lp.add(m, prompt[i], have ? Json(r.prompt_logprobs[i]) : Json(nullptr),
           have && i < r.prompt_top_logprobs.size() ? r.prompt_top_logprobs[i] : std::vector<sampling::TokenLogprob>{},
           offsets[i]);
  }
}

struct Exchange {
  std::string id, model;
  std::int64_t created = 0;
  bool chat = false;
  bool include_usage = false;
  bool echo = false;
  std::string echo_text;
  bool return_tokens = false;
  ChatPrompt reply{};  // chat: how the reply is read (tool calls, reasoning); text unused
};

// OpenAI's tool_calls: [{id, type: "function", function: {name, arguments: "<JSON string>"}}] (with
// "index" in stream deltas). The arguments keep the key order the model wrote.
Json openai_tool_calls(const tokenizer::ParsedChat& parsed, tokenizer::ChatFamily family, bool delta) {
  Json calls = Json::array();
  for (std::size_t i = 0; i < parsed.tool_calls.size(); ++i) {
    const tokenizer::ParsedToolCall& p = parsed.tool_calls[i];
    Json c = {{"id", p.id.empty() ? inference::new_tool_call_id(family) : p.id},
              {"type", "function"},
              {"function", {{"name", p.name}, {"arguments", p.arguments.dump()}}}};
    if (delta) c["index"] = i;
    calls.push_back(std::move(c));
  }
  return calls;
}

Json chunk(const Exchange& ex) {
  return {{"id", ex.id},
          {"object", ex.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", ex.created},
          {"model", ex.model},
          {"system_fingerprint", fingerprint()}};
}

void answer(ServerState& st, httplib::Response& res, Lease lease, std::vector<std::int32_t> prompt,
            const engine::GenerateParams& params, bool stream, Exchange ex) {
  auto gen = std::make_shared<Generation>(*lease, std::move(prompt), params, st.metrics);
  auto held = std::make_shared<Lease>(std::move(lease));
  const bool logprobs = params.logprobs;
  if (!stream) {
    const engine::GenerateResult r = gen->wait();
    if (r.stop_reason == engine::StopReason::kCanceled)
      throw ApiError(503, "generation canceled: the server is shutting down");
    Json j = chunk(ex);
    j["object"] = ex.chat ? "chat.completion" : "text_completion";
    Json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", engine::done_reason(r.stop_reason)}};
    if (ex.chat) {
      choice["message"] = {{"role", "assistant"}, {"content", r.text}, {"refusal", nullptr}};
      if (ex.reply.parse()) {
        const tokenizer::ParsedChat parsed = ex.reply.read(r.text);
        const bool has_calls = ex.reply.tools && !parsed.tool_calls.empty();
        choice["message"]["content"] = has_calls && parsed.content.empty() ? Json(nullptr) : Json(parsed.content);
        if (has_calls) {
          choice["message"]["tool_calls"] = openai_tool_calls(parsed, ex.reply.family, false);
          choice["finish_reason"] = "tool_calls";
        }
        if (!parsed.reasoning_content.empty()) choice["message"]["reasoning_content"] = parsed.reasoning_content;
        if (!parsed.tool_call_error.empty()) j["tool_call_error"] = parsed.tool_call_error;
      }
      if (logprobs) {
        Json content = Json::array();
        for (std::size_t i = 0; i < r.tokens.size(); ++i)
          content.push_back(
              chat_logprob(**held, r.tokens[i], r.logprobs[i],
                           i < r.top_logprobs.size() ? r.top_logprobs[i] : std::vector<sampling::TokenLogprob>{}));
        choice["logprobs"] = {{"content", content}};
      }
    } else {
      choice["text"] = (ex.echo ? ex.echo_text : std::string()) + r.text;
      if (ex.return_tokens) choice["tokens"] = r.tokens;
      if (logprobs) {
        LegacyLogprobs lp;
        if (ex.echo) add_prompt_logprobs(**held, gen->prompt(), ex.echo_text, r, lp);
        const std::vector<std::size_t> offsets =
            text_offsets((*held)->tokenizer(), r.tokens, r.text, ex.echo ? ex.echo_text.size() : 0);
        for (std::size_t i = 0; i < r.tokens.size(); ++i)
          lp.add(**held, r.tokens[i], r.logprobs[i],
                 i < r.top_logprobs.size() ? r.top_logprobs[i] : std::vector<sampling::TokenLogprob>{}, offsets[i]);
        choice["logprobs"] = lp.json();
      }
    }
    j["choices"] = Json::array({choice});
    j["usage"] = usage(r);
    j["timings"] = timings(r);
    reply_json(res, j);
    return;
  }
  res.set_header("Connection", "keep-alive");
  stream_response(st, res, "text/event-stream", [gen, held, ex, logprobs](const auto& write) {
    auto delta_chunk = [&](const std::string& text, const Json& lp, std::int32_t token = -1) {
      Json c = chunk(ex);
      Json choice = {{"index", 0}, {"logprobs", lp}, {"finish_reason", nullptr}};
      if (ex.chat) {
        choice["delta"] = {{"content", text}};
      } else {
        choice["text"] = text;
        if (ex.return_tokens) choice["tokens"] = token >= 0 ? Json::array({token}) : Json::array();
      }
      c["choices"] = Json::array({choice});
      if (ex.include_usage) c["usage"] = nullptr;
      return c;
    };
    std::size_t sent = 0;  // characters of text streamed so far: the legacy text_offset of the next token
    // With tools, text that may be a call is held back; the calls come whole in one delta at the end.
    std::optional<tokenizer::ToolCallStream> calls;
    if (ex.chat && ex.reply.parse()) calls.emplace(ex.reply.stream());
    // Reasoning (deepseek-r1 <think>, command-r7b thinking) goes out as it is generated, in chunks of its
    // own with delta.reasoning_content (llama-server's spelling), never in content.
    auto reasoning_chunk = [&](const std::string& text) {
      Json c = delta_chunk("", nullptr);
      c["choices"][0]["delta"] = {{"reasoning_content", text}};
      return write(sse(c));
    };
    auto emit = [&](const Piece& piece) {
      Piece shown;
      const Piece& p = calls ? (shown = piece, shown.text = calls->feed(piece.text), shown) : piece;
      if (calls) {
        const std::string r = calls->take_reasoning();
        if (!r.empty() && !reasoning_chunk(r)) return false;
      }
      if (p.text.empty() && !((logprobs || ex.return_tokens) && p.token >= 0)) return true;
      Json lp = nullptr;
      if (logprobs && p.token >= 0) {
        if (ex.chat) {
          lp = {{"content", Json::array({chat_logprob(**held, p.token, p.logprob, p.top)})}};
        } else {
          LegacyLogprobs l;
          l.add(**held, p.token, p.logprob, p.top, sent);
          lp = l.json();
        }
      }
      sent += p.text.size();
      return write(sse(delta_chunk(p.text, lp, p.token)));
    };
    if (ex.chat) {
      Json first = delta_chunk("", nullptr);
      first["choices"][0]["delta"] = {{"role", "assistant"}, {"content", ""}};
      if (!write(sse(first))) return gen->cancel();
    } else if (ex.echo && !ex.echo_text.empty() && !logprobs) {
      if (!write(sse(delta_chunk(ex.echo_text, nullptr)))) return gen->cancel();
      sent = ex.echo_text.size();
    }
    // Echo with logprobs: the prompt's log-probabilities are complete only when the request is, and the
    // echoed prompt must come first, so this one case is sent at the end, in order.
    const bool hold_back = !ex.chat && ex.echo && logprobs;
    std::vector<Piece> pieces, held_back;
    while (gen->next(pieces)) {
      for (Piece& p : pieces) {
        if (hold_back) {
          held_back.push_back(std::move(p));
        } else if (!emit(p)) {
          return gen->cancel();
        }
      }
      pieces.clear();
    }
    engine::GenerateResult r;
    try {
      r = gen->wait();
    } catch (const std::exception& e) {
      write(sse(Json{{"error", {{"message", e.what()}, {"type", "server_error"}, {"code", nullptr}}}}));
      return;
    }
    if (r.stop_reason == engine::StopReason::kCanceled) {
      write(sse(Json{{"error",
                      {{"message", "generation canceled: the server is shutting down"},
                       {"type", "server_error"},
                       {"code", nullptr}}}}));
      return;
    }
    if (hold_back) {
      LegacyLogprobs l;
      add_prompt_logprobs(**held, gen->prompt(), ex.echo_text, r, l);
      if (!write(sse(delta_chunk(ex.echo_text, l.json())))) return;
      sent = ex.echo_text.size();
      for (const Piece& p : held_back)
        if (!emit(p)) return;
    }
    bool tool_calls_sent = false;
    if (calls) {
      const tokenizer::ToolCallStream::Final f = calls->finish();
      if (!f.rest.empty() && !write(sse(delta_chunk(f.rest, nullptr)))) return;
      if (!f.reasoning_rest.empty() && !reasoning_chunk(f.reasoning_rest)) return;
      if (ex.reply.tools && !f.parsed.tool_calls.empty()) {
        Json c = delta_chunk("", nullptr);
        c["choices"][0]["delta"] = {{"tool_calls", openai_tool_calls(f.parsed, ex.reply.family, true)}};
        if (!write(sse(c))) return;
        tool_calls_sent = true;
      }
    }
    Json fin = delta_chunk("", nullptr);
    fin["choices"][0]["finish_reason"] = tool_calls_sent ? "tool_calls" : engine::done_reason(r.stop_reason);
    if (ex.chat) fin["choices"][0]["delta"] = Json::object();
    fin["timings"] = timings(r);
    write(sse(fin));
    if (ex.include_usage) {
      Json u = chunk(ex);
      u["choices"] = Json::array();
      u["usage"] = usage(r);
      write(sse(u));
    }
    write("data: [DONE]\n\n");
  });
}

Json model_entry(const ModelFile& f) {
  return {{"id", f.name},
          {"object", "model"},
          {"created", f.modified_unix},
          {"owned_by", "g2c"},
          {"context_length", f.n_ctx_train},
          {"meta", {{"n_ctx_train", f.n_ctx_train}, {"n_embd", f.n_embd}, {"n_params", f.n_params}, {"size", f.size}}}};
}

}  // namespace

void add_openai_routes(httplib::Server& http, ServerState& st) {
  const Api A = Api::kOpenAI;
  add_route(http, st, "GET", "/v1/models", A, "/v1/models", [&st](const httplib::Request&, httplib::Response& res) {
    Json data = Json::array();
    for (const ModelFile& f : st.pool.list()) data.push_back(model_entry(f));
    reply_json(res, {{"object", "list"}, {"data", data}});
  });
  add_route(http, st, "GET", R"(/v1/models/(.+))", A, "/v1/models/{id}",
            [&st](const httplib::Request& req, httplib::Response& res) {
              const std::string id = req.matches[1];
              const std::optional<ModelFile> f = st.pool.find(id);
              if (!f) throw ApiError(404, fmt::format("model '{}' not found", id), "model");
              Json e = model_entry(*f);
              e["id"] = id;
              reply_json(res, e);
            });

  add_route(http, st, "POST", "/v1/completions", A, "/v1/completions",
            [&st](const httplib::Request& req, httplib::Response& res) {
              const OpenAICompletionRequest r = parse_openai_completion(parse_body(req.body));
              Lease lease = st.pool.acquire(r.model, std::nullopt);
              note_num_ctx(*lease, r.sampling.num_ctx, "/v1/completions");
              Exchange ex{new_id("cmpl"), r.model, unix_ns() / 1'000'000'000, false, r.include_usage, r.echo, {},
                          r.return_tokens};
              std::vector<std::int32_t> ids;
              if (r.prompt_is_ids) {
                ids = r.prompt_ids;
                const int n_vocab = lease->tokenizer().n_vocab();
                for (std::int32_t id : ids)
                  if (id >= n_vocab)
                    throw bad_request(
                        fmt::format("invalid request: token id {} is outside the vocabulary (0..{})", id, n_vocab - 1),
                        "prompt");
                if (r.echo) ex.echo_text = lease->tokenizer().decode(ids);
              } else {
                ids = lease->tokenizer().encode(r.prompt_text, true, true);
                ex.echo_text = r.prompt_text;
              }
              answer(st, res, std::move(lease), std::move(ids), r.sampling.params, r.stream, ex);
            });

  add_route(
      http, st, "POST", "/v1/chat/completions", A, "/v1/chat/completions",
      [&st](const httplib::Request& req, httplib::Response& res) {
        const OpenAIChatRequest r = parse_openai_chat(parse_body(req.body));
        Lease lease = st.pool.acquire(r.model, std::nullopt);
        note_num_ctx(*lease, r.sampling.num_ctx, "/v1/chat/completions");
        engine::GenerateParams params = r.sampling.params;
        ChatPrompt prompt = render_chat_prompt(*lease, r.model, r.messages, r.tools, params.stop);
        std::vector<std::int32_t> ids = lease->tokenizer().encode(prompt.text, true, true);
        prompt.text.clear();
        Exchange ex{
            new_id("chatcmpl"), r.model, unix_ns() / 1'000'000'000, true, r.include_usage, false, {}, false, prompt};
        answer(st, res, std::move(lease), std::move(ids), params, r.stream, ex);
      });

  add_route(http, st, "POST", "/v1/embeddings", A, "/v1/embeddings",
            [&st](const httplib::Request& req, httplib::Response& res) {
              const OpenAIEmbeddingsRequest r = parse_openai_embeddings(parse_body(req.body));
              Lease lease = st.pool.acquire(r.model, std::nullopt);
              std::int64_t n_tokens = 0;
              const auto vectors = embed_inputs(*lease, r.inputs, true, true, r.dimensions, n_tokens);
              Json data = Json::array();
              for (std::size_t i = 0; i < vectors.size(); ++i) {
                Json item = {{"object", "embedding"}, {"index", i}};
                if (r.base64) {
                  item["embedding"] = base64(vectors[i]);
                } else {
                  item["embedding"] = vectors[i];
                }
                data.push_back(item);
              }
              reply_json(res, {{"object", "list"},
                               {"data", data},
                               {"model", r.model},
                               {"usage", {{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}}});
            });
}

}  // namespace g2c::server
