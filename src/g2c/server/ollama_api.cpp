// The Ollama API (api-compat.md §2): /, /api/version, tags, show, ps, generate, chat, embed, embeddings,
// pull, delete, copy.

#include <optional>

#include <fmt/format.h>

#include "g2c/core/log.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/inference/build_info.hpp"
#include "g2c/server/generation.hpp"
#include "g2c/server/request_parse.hpp"
#include "g2c/server/routes.hpp"

namespace g2c::server {
namespace {

// The Ollama version reported to clients: editors gate features on it (>= 0.6.4), and this is the API
// level implemented (native logprobs arrived in 0.12.11).
constexpr const char* kOllamaApiVersion = "0.12.11";

std::string dumps(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json logprob_entry(const ServedModel& m, std::int32_t token, double logprob,
                   const std::vector<sampling::TokenLogprob>& top) {
  const std::string text = token_text(m, token);
  Json e = {{"token", text}, {"logprob", logprob}, {"bytes", token_bytes(text)}};
  if (!top.empty()) {
    Json alts = Json::array();
    for (const auto& t : top) {
      const std::string tt = token_text(m, t.token);
      alts.push_back({{"token", tt}, {"logprob", t.logprob}, {"bytes", token_bytes(tt)}});
    }
    e["top_logprobs"] = alts;
  }
  return e;
}

struct Exchange {
  std::string model;  // as the client named it
  bool chat = false;
  bool stream = true;
  bool context = false;  // return the token ids (generate, not raw)
  std::int64_t t0 = 0;   // the handler's start
  ChatPrompt reply;      // chat: how the reply is read (tool calls, reasoning); text unused
  bool thinking = true;  // chat: the reasoning goes to message.thinking (false: `think: false`, dropped)
};

// Ollama's tool_calls: [{id, function: {index, name, arguments: object}}].
Json ollama_tool_calls(const tokenizer::ParsedChat& parsed, tokenizer::ChatFamily family) {
  Json calls = Json::array();
  const std::vector<inference::ToolCall> tc = inference::tool_calls_of(parsed, family);
  for (std::size_t i = 0; i < tc.size(); ++i)
    calls.push_back(
        {{"id", tc[i].id}, {"function", {{"index", i}, {"name", tc[i].name}, {"arguments", tc[i].arguments}}}});
  return calls;
}

// The parsed reply into an Ollama chat object: content, tool_calls, thinking; a malformed call is
// left as content and named in "tool_call_error".
void put_parsed(const Exchange& ex, Json& j, const tokenizer::ParsedChat& parsed, const std::string& content) {
  j["message"] = {{"role", "assistant"}, {"content", content}};
  if (ex.reply.tools && !parsed.tool_calls.empty())
    j["message"]["tool_calls"] = ollama_tool_calls(parsed, ex.reply.family);
  if (!parsed.reasoning_content.empty() && ex.thinking) j["message"]["thinking"] = parsed.reasoning_content;
  if (!parsed.tool_call_error.empty()) j["tool_call_error"] = parsed.tool_call_error;
}

Json chunk_base(const Exchange& ex) { return {{"model", ex.model}, {"created_at", created_at()}}; }

void put_text(const Exchange& ex, Json& j, const std::string& text) {
  if (ex.chat) {
    j["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    j["response"] = text;
  }
}

void put_final(const Exchange& ex, const Lease& lease, const Generation& gen, const engine::GenerateResult& r,
               Json& j) {
  j["done"] = true;
  j["done_reason"] = engine::done_reason(r.stop_reason);
  if (ex.context) {
    std::vector<std::int32_t> ctx = gen.prompt();
    ctx.insert(ctx.end(), r.tokens.begin(), r.tokens.end());
    j["context"] = ctx;
  }
  j["total_duration"] = now_ns() - ex.t0;
  j["load_duration"] = lease.load_ns();
  j["prompt_eval_count"] = r.stats.n_prompt_tokens;         // the whole prompt, as Ollama, reused or not
  j["prompt_eval_cached_count"] = r.stats.n_prompt_cached;  // g2c: of those, reused from the KV cache
  j["prompt_eval_duration"] = r.stats.prefill_ns;
  j["eval_count"] = r.stats.n_generated;
  j["eval_duration"] = r.stats.decode_ns;
}

// Runs the generation and answers: one object, or NDJSON chunks ending with the done:true object.
void answer(ServerState& st, httplib::Response& res, Lease lease, std::vector<std::int32_t> prompt,
            const engine::GenerateParams& params, const Exchange& ex) {
  auto gen = std::make_shared<Generation>(*lease, std::move(prompt), params, st.metrics);
  auto held = std::make_shared<Lease>(std::move(lease));
  const bool logprobs = params.logprobs;
  if (!ex.stream) {
    const engine::GenerateResult r = gen->wait();
    if (r.stop_reason == engine::StopReason::kCanceled)
      throw ApiError(503, "generation canceled: the server is shutting down");
    Json j = chunk_base(ex);
    if (ex.chat && ex.reply.parse()) {
      const tokenizer::ParsedChat parsed = ex.reply.read(r.text);
      put_parsed(ex, j, parsed, parsed.content);
    } else {
      put_text(ex, j, r.text);
    }
    if (logprobs) {
      Json lp = Json::array();
      for (std::size_t i = 0; i < r.tokens.size(); ++i)
        lp.push_back(
            logprob_entry(**held, r.tokens[i], r.logprobs[i],
                          i < r.top_logprobs.size() ? r.top_logprobs[i] : std::vector<sampling::TokenLogprob>{}));
      j["logprobs"] = lp;
    }
    put_final(ex, *held, *gen, r, j);
    reply_json(res, j);
    return;
  }
  stream_response(st, res, "application/x-ndjson", [gen, held, ex, logprobs](const auto& write) {
    std::vector<Piece> pieces;
    // With tools, text that may be a call is held back; the calls come whole in one chunk at the end.
    std::optional<tokenizer::ToolCallStream> calls;
    if (ex.chat && ex.reply.parse()) calls.emplace(ex.reply.stream());
    while (gen->next(pieces)) {
      for (const Piece& p : pieces) {
        const std::string text = calls ? calls->feed(p.text) : p.text;
        // Thinking goes out as it is generated, in message.thinking chunks of its own.
        if (const std::string r = calls ? calls->take_reasoning() : ""; !r.empty() && ex.thinking) {
          Json c = chunk_base(ex);
          put_text(ex, c, "");
          c["message"]["thinking"] = r;
          c["done"] = false;
          if (!write(dumps(c) + "\n")) {
            gen->cancel();
            return;
          }
        }
        if (text.empty() && !(logprobs && p.token >= 0)) continue;
        Json c = chunk_base(ex);
        put_text(ex, c, text);
        c["done"] = false;
        if (logprobs && p.token >= 0) c["logprobs"] = Json::array({logprob_entry(**held, p.token, p.logprob, p.top)});
        if (!write(dumps(c) + "\n")) {
          gen->cancel();  // the client is gone: free the sequence at the next step
          return;
        }
      }
      pieces.clear();
    }
    engine::GenerateResult r;
    try {
      r = gen->wait();
    } catch (const std::exception& e) {
      write(dumps(Json{{"error", e.what()}}) + "\n");
      return;
    }
    if (r.stop_reason == engine::StopReason::kCanceled) {
      write(dumps(Json{{"error", "generation canceled: the server is shutting down"}}) + "\n");
      return;
    }
    if (calls) {
      tokenizer::ToolCallStream::Final fin = calls->finish();
      fin.parsed.reasoning_content = fin.reasoning_rest;  // the thinking not streamed yet
      if (!fin.rest.empty() || !fin.parsed.tool_calls.empty() || !fin.parsed.reasoning_content.empty() ||
          !fin.parsed.tool_call_error.empty()) {
        Json c = chunk_base(ex);
        put_parsed(ex, c, fin.parsed, fin.rest);
        c["done"] = false;
        if (!write(dumps(c) + "\n")) return;
      }
    }
    Json f = chunk_base(ex);
    put_text(ex, f, "");
    put_final(ex, *held, *gen, r, f);
    write(dumps(f) + "\n");
  });
}

// An empty prompt / message list only loads the model (or, with keep_alive 0, unloads it).
void answer_load(ServerState& st, httplib::Response& res, const Exchange& ex, Lease lease,
                 const std::optional<std::chrono::nanoseconds>& keep_alive) {
  const bool unload = keep_alive && keep_alive->count() == 0;
  lease.release();
  if (unload) st.pool.unload(ex.model);
  Json j = chunk_base(ex);
  put_text(ex, j, "");
  j["done"] = true;
  j["done_reason"] = unload ? "unload" : "load";
  reply_json(res, j);
}

Json model_info(const ModelFile& f, bool verbose) {
  Json info = Json::object();
  for (auto it = f.metadata.begin(); it != f.metadata.end(); ++it) {
    const bool big = it.value().is_array() && it.value().size() > 64;
    info[it.key()] = big && !verbose ? Json(nullptr) : it.value();
  }
  info["general.architecture"] = f.arch;
  info["general.parameter_count"] = f.n_params;
  info[f.arch + ".context_length"] = f.n_ctx_train;
  info[f.arch + ".embedding_length"] = f.n_embd;
  return info;
}

Json tag_entry(const ModelFile& f) {
  return {{"name", f.name}, {"model", f.name},    {"modified_at", rfc3339_utc(f.modified_unix * 1'000'000'000)},
          {"size", f.size}, {"digest", f.digest}, {"details", details_json(f)}};
}

}  // namespace

void add_ollama_routes(httplib::Server& http, ServerState& st) {
  const Api O = Api::kOllama;
  add_route(http, st, "GET", "/", O, "/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("Ollama is running", "text/plain; charset=utf-8");
  });
  add_route(http, st, "GET", "/api/version", O, "/api/version", [](const httplib::Request&, httplib::Response& res) {
    reply_json(res, {{"version", kOllamaApiVersion}, {"g2c_version", inference::g2c_version()}});
  });
  add_route(http, st, "GET", "/api/tags", O, "/api/tags", [&st](const httplib::Request&, httplib::Response& res) {
    Json models = Json::array();
    for (const ModelFile& f : st.pool.list()) models.push_back(tag_entry(f));
    reply_json(res, {{"models", models}});
  });
  add_route(http, st, "GET", "/api/ps", O, "/api/ps", [&st](const httplib::Request&, httplib::Response& res) {
    Json models = Json::array();
    for (const LoadedInfo& l : st.pool.loaded()) {
      Json e = tag_entry(l.file);
      e["size"] = l.memory_bytes;
      e["size_vram"] = 0;
      e["expires_at"] = l.expires_unix_ns == INT64_MAX
                            ? "2318-01-01T00:00:00.000000Z"
                            : rfc3339_utc(l.expires_unix_ns == 0 ? unix_ns() : l.expires_unix_ns);
      e["context_length"] = l.n_ctx;
      // Requests asked for more context than --ctx gives each sequence; they ran clamped to it.
      if (l.clamped_ctx_max > 0) e["num_ctx_requested_max"] = l.clamped_ctx_max;
      e["parallel"] = l.parallel;
      e["kv_type"] = l.kv_type == model::KvType::kF16 ? "f16" : "f32";  // g2c serve --kv-type
      e["in_use"] = l.expires_unix_ns == 0;
      e["active_sequences"] = l.stats.active;
      e["queued"] = l.stats.queued;
      models.push_back(e);
    }
    reply_json(res, {{"models", models}});
  });
  add_route(http, st, "POST", "/api/show", O, "/api/show", [&st](const httplib::Request& req, httplib::Response& res) {
    const Json body = parse_body(req.body);
    const std::string name = require_model(body, true);
    const std::optional<ModelFile> f = st.pool.find(name);
    if (!f) throw ApiError(404, fmt::format("model '{}' not found", name), "model");
    const bool verbose = body.contains("verbose") && body["verbose"].is_boolean() && body["verbose"].get<bool>();
    const std::string params = fmt::format("num_ctx {}\nnum_parallel {}", st.opts.pool.n_ctx, st.opts.pool.parallel);
    reply_json(res, {{"modelfile", fmt::format("# served by g2c\nFROM {}\n", f->path)},
                     {"parameters", params},
                     {"template", f->chat_template},
                     {"system", ""},
                     {"license", ""},
                     {"details", details_json(*f)},
                     {"model_info", model_info(*f, verbose)},
                     {"capabilities", Json::array({"completion"})},
                     {"modified_at", rfc3339_utc(f->modified_unix * 1'000'000'000)}});
  });

  add_route(http, st, "POST", "/api/generate", O, "/api/generate",
            [&st](const httplib::Request& req, httplib::Response& res) {
              Exchange ex;
              ex.t0 = now_ns();
              const OllamaGenerateRequest r = parse_ollama_generate(parse_body(req.body));
              ex.model = r.model;
              ex.stream = r.stream;
              ex.context = !r.raw;
              Lease lease = st.pool.acquire(r.model, r.keep_alive);
              if (r.prompt.empty() && r.context.empty())
                return answer_load(st, res, ex, std::move(lease), r.keep_alive);
              note_num_ctx(*lease, r.sampling.num_ctx, "/api/generate");
              engine::GenerateParams params = r.sampling.params;
              params.truncate_prompt = r.truncate;
              // Ollama's default template for a model without one is the prompt itself (system text first).
              std::string text = r.prompt;
              if (!r.raw) {
                if (lease->has_chat_template()) {
                  std::vector<inference::ChatMessage> ms(r.system.empty() ? 1 : 2);
                  if (!r.system.empty()) ms[0].role = "system", ms[0].content = r.system;
                  ms.back().role = "user";
                  ms.back().content = r.prompt;
                  text = render_chat_prompt(*lease, ms, params.stop);
                } else if (!r.system.empty()) {
                  text = r.system + "\n\n" + r.prompt;
                }
              }
              std::vector<std::int32_t> ids = r.context;
              const std::vector<std::int32_t> more = lease->tokenizer().encode(text, r.context.empty(), true);
              ids.insert(ids.end(), more.begin(), more.end());
              answer(st, res, std::move(lease), std::move(ids), params, ex);
            });

  add_route(http, st, "POST", "/api/chat", O, "/api/chat", [&st](const httplib::Request& req, httplib::Response& res) {
    Exchange ex;
    ex.t0 = now_ns();
    ex.chat = true;
    const OllamaChatRequest r = parse_ollama_chat(parse_body(req.body));
    ex.model = r.model;
    ex.stream = r.stream;
    Lease lease = st.pool.acquire(r.model, r.keep_alive);
    if (r.messages.empty()) return answer_load(st, res, ex, std::move(lease), r.keep_alive);
    note_num_ctx(*lease, r.sampling.num_ctx, "/api/chat");
    engine::GenerateParams params = r.sampling.params;
    params.truncate_prompt = r.truncate;
    ex.reply = render_chat_prompt(*lease, r.model, r.messages, r.tools, params.stop);
    if (r.think && *r.think && !ex.reply.reasoning)
      throw ApiError(400, fmt::format("{} does not support thinking", r.model), "think");
    ex.thinking = r.think.value_or(true);
    std::vector<std::int32_t> ids = lease->tokenizer().encode(ex.reply.text, true, true);
    ex.reply.text.clear();
    answer(st, res, std::move(lease), std::move(ids), params, ex);
  });

  auto embed = [&st](const EmbedRequest& r, bool normalize, std::int64_t& n_tokens, std::int64_t& load_ns) {
    Lease lease = st.pool.acquire(r.model, r.keep_alive);
    load_ns = lease.load_ns();
    note_num_ctx(*lease, r.num_ctx, "/api/embed");
    return embed_inputs(*lease, r.inputs, normalize, r.truncate, r.dimensions, n_tokens);
  };
  add_route(http, st, "POST", "/api/embed", O, "/api/embed",
            [&st, embed](const httplib::Request& req, httplib::Response& res) {
              const std::int64_t t0 = now_ns();
              const EmbedRequest r = parse_ollama_embed(parse_body(req.body));
              std::int64_t n_tokens = 0, load_ns = 0;
              const auto vectors = embed(r, true, n_tokens, load_ns);
              reply_json(res, {{"model", r.model},
                               {"embeddings", vectors},
                               {"total_duration", now_ns() - t0},
                               {"load_duration", load_ns},
                               {"prompt_eval_count", n_tokens}});
            });
  add_route(http, st, "POST", "/api/embeddings", O, "/api/embeddings",
            [&st, embed](const httplib::Request& req, httplib::Response& res) {
              EmbedRequest r = parse_ollama_embeddings(parse_body(req.body));
              if (r.inputs.empty() || r.inputs[0].empty()) {
                st.pool.acquire(r.model, r.keep_alive);  // loads (or 404s), as Ollama does for an empty prompt
                reply_json(res, {{"embedding", Json::array()}});
                return;
              }
              std::int64_t n_tokens = 0, load_ns = 0;
              // The legacy endpoint's vector is not normalised in Ollama; kept so.
              const auto vectors = embed(r, false, n_tokens, load_ns);
              reply_json(res, {{"embedding", vectors.at(0)}});
            });

  add_route(http, st, "POST", "/api/pull", O, "/api/pull", [&st](const httplib::Request& req, httplib::Response& res) {
    const Json body = parse_body(req.body);
    const std::string name = require_model(body, true);
    if (!st.pool.find(name))
      throw ApiError(404, fmt::format("model '{}' not found: this server has no model registry", name), "model");
    const bool stream = !(body.contains("stream") && body["stream"].is_boolean() && !body["stream"].get<bool>());
    if (!stream) return reply_json(res, {{"status", "success"}});
    res.set_content(R"({"status":"pulling manifest"})"
                    "\n"
                    R"({"status":"success"})"
                    "\n",
                    "application/x-ndjson");
  });
  for (const char* path : {"/api/push", "/api/create"}) {
    add_route(http, st, "POST", path, O, path, [path](const httplib::Request&, httplib::Response&) {
      throw ApiError(501, fmt::format("{} is not supported: this server has no model registry", path));
    });
  }
  add_route(http, st, "DELETE", "/api/delete", O, "/api/delete",
            [&st](const httplib::Request& req, httplib::Response& res) {
              const std::string name = require_model(parse_body(req.body), true);
              st.pool.remove(name);
              res.status = 200;
            });
  add_route(http, st, "POST", "/api/copy", O, "/api/copy", [&st](const httplib::Request& req, httplib::Response& res) {
    const Json body = parse_body(req.body);
    auto field = [&](const char* k) {
      if (!body.contains(k) || !body[k].is_string() || body[k].get<std::string>().empty())
        throw bad_request(fmt::format("{} is required", k), k);
      return body[k].get<std::string>();
    };
    st.pool.copy(field("source"), field("destination"));
    res.status = 200;
  });
}

}  // namespace g2c::server
