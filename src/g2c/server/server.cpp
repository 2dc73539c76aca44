#include "g2c/server/server.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <malloc.h>
#include <sys/socket.h>

#include <cstdlib>
#include <mutex>
#include <regex>

#include <fmt/format.h>

#include "g2c/core/log.hpp"
#include "g2c/inference/backend.hpp"
#include "g2c/server/routes.hpp"
#include "g2c/server/worker_pool.hpp"
#include "g2c/tokenizer/jinja.hpp"

namespace g2c::server {

// ---- helpers shared by the route files --------------------------------------------------------------

void reply_json(httplib::Response& res, const Json& body, int status) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json; charset=utf-8");
}

Json error_body(Api api, int status, const std::string& message, const std::string& param) {
  if (api == Api::kOllama) return {{"error", message}};
  const char* type = status == 400   ? "invalid_request_error"
                     : status == 401 ? "authentication_error"
                     : status == 404 ? "not_found_error"
                     : status == 413 ? "invalid_request_error"
                     : status == 503 ? "unavailable_error"
                     : status >= 500 ? "server_error"
                                     : "invalid_request_error";
  Json err = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}};
  if (!param.empty()) err["param"] = param;
  if (status == 404 && param == "model") err["code"] = "model_not_found";
  return {{"error", err}};
}

std::int64_t unix_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string created_at() { return rfc3339_utc(unix_ns()); }

std::string render_chat_prompt(const ServedModel& m, const std::vector<inference::ChatMessage>& messages,
                               std::vector<std::string>& stop) {
  return render_chat_prompt(m, m.file().name, messages, {}, stop).text;
}

ChatPrompt render_chat_prompt(const ServedModel& m, const std::string& model_name,
                              const std::vector<inference::ChatMessage>& messages,
                              const std::vector<inference::ToolSpec>& tools, std::vector<std::string>& stop) {
  const tokenizer::ChatTemplate& t = tools.empty() ? m.chat_template() : m.tool_template();
  if (!tools.empty() && !tokenizer::supports_tools(t))
    throw ApiError(400, fmt::format("{} does not support tools", model_name), "tools");
  ChatPrompt p;
  p.family = t.family;
  p.tools = !tools.empty();
  p.reasoning = t.family == tokenizer::ChatFamily::kDeepSeekR1;
  if (!t.jinja) {
    if (t.family == tokenizer::ChatFamily::kPlain) {
      for (const char* s : {"\nUser:", "\nSystem:"})
        if (std::find(stop.begin(), stop.end(), s) == stop.end()) stop.emplace_back(s);
    }
    p.text = tokenizer::render_chat(t, inference::chat_turns(messages), true);
    return p;
  }
  tokenizer::ChatRequest req = inference::chat_request(messages, tools);
  req.bos_token = m.file().bos_text;
  req.eos_token = m.file().eos_text;
  try {
    p.text = tokenizer::render_prompt(t, req);
    p.reasoning_open = p.reasoning && tokenizer::prompt_opens_reasoning(t.family, p.text);
  } catch (const tokenizer::jinja::TemplateRaised& e) {
    throw ApiError(400, fmt::format("the chat template of {} refuses this conversation: {}", model_name, e.what()),
                   "messages");
  } catch (const tokenizer::jinja::TemplateError& e) {
    throw ApiError(400, fmt::format("the chat template of {} failed on this conversation: {}", model_name, e.what()),
                   "messages");
  }
  return p;
}

std::string token_text(const ServedModel& m, std::int32_t id) {
  return m.tokenizer().decode(std::span<const std::int32_t>(&id, 1));
}

Json token_bytes(const std::string& text) {
  Json b = Json::array();
  for (unsigned char c : text) b.push_back(static_cast<int>(c));
  return b;
}

void note_num_ctx(const ServedModel& m, const std::optional<std::int32_t>& num_ctx, const std::string& route) {
  if (num_ctx && *num_ctx > m.n_ctx()) m.note_clamped_ctx(*num_ctx);
  if (num_ctx && *num_ctx > m.n_ctx())
    log_warn("serve: {} {}: num_ctx {} clamped to the served context of {} per sequence (--ctx)", route, m.file().name,
             *num_ctx, m.n_ctx());
}

std::vector<std::vector<float>> embed_inputs(ServedModel& m, const std::vector<std::string>& inputs, bool normalize,
                                             bool truncate, std::optional<std::int32_t> dimensions,
                                             std::int64_t& n_tokens) {
  std::vector<std::vector<float>> out;
  for (const std::string& text : inputs) {
    engine::Embedding e = m.with_embedder([&](engine::Embedder& em) {
      try {
        return em.embed_text(text, {.normalize = normalize, .truncate = truncate});
      } catch (const model::ContextOverflow& ex) {
        throw bad_request(ex.what(), "input");
      }
    });
    n_tokens += e.n_tokens;
    for (float v : e.vector)
      if (!std::isfinite(v)) throw ApiError(500, "the embedding has NaN or Inf values");
    if (dimensions && static_cast<std::size_t>(*dimensions) < e.vector.size()) {
      e.vector.resize(static_cast<std::size_t>(*dimensions));
      double ss = 0;
      for (float v : e.vector) ss += static_cast<double>(v) * v;
      if (ss > 0)
        for (float& v : e.vector) v = static_cast<float>(v / std::sqrt(ss));
    }
    out.push_back(std::move(e.vector));
  }
  return out;
}

void stream_response(ServerState& st, httplib::Response& res, const char* content_type,
                     std::function<void(const std::function<bool(const std::string&)>&)> produce) {
  st.hold();
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  auto provider = [produce = std::move(produce)](std::size_t, httplib::DataSink& sink) {
    bool ok = true;
    produce([&](const std::string& s) {
      if (!ok) return false;
      if (!s.empty()) ok = sink.write(s.data(), s.size());
      return ok;
    });
    if (ok) sink.done();
    return ok;
  };
  // Runs once the response is finished or dropped, whether or not the provider ever ran.
  auto released = [&st](bool) { st.release(); };
  res.set_chunked_content_provider(content_type, std::move(provider), std::move(released));
}

namespace {

// Browsers and editor webviews, as Ollama allows them by default.
bool allowed_origin(const std::string& origin) {
  for (const char* scheme : {"http://", "https://"}) {
    for (const char* host : {"localhost", "127.0.0.1", "0.0.0.0", "[::1]"}) {
      const std::string base = std::string(scheme) + host;
      if (origin == base || origin.starts_with(base + ":")) return true;
    }
  }
  for (const char* p : {"app://", "file://", "tauri://", "vscode-webview://", "vscode-file://"})
    if (origin.starts_with(p)) return true;
  return false;
}

constexpr const char* kAllowHeaders =
    "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, OpenAI-Beta, x-stainless-arch, "
    "x-stainless-async, x-stainless-custom-poll-interval, x-stainless-helper-method, x-stainless-lang, "
    "x-stainless-os, x-stainless-package-version, x-stainless-poll-helper, x-stainless-retry-count, "
    "x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout";

}  // namespace

void add_route(httplib::Server& http, ServerState& st, const char* method, const std::string& pattern, Api api,
               const std::string& route, Handler handler) {
  auto wrapped = [&st, api, route, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    st.hold();
    struct Release {
      ServerState& st;
      ~Release() { st.release(); }
    } release{st};
    try {
      handler(req, res);
    } catch (const ApiError& e) {
      reply_json(res, error_body(api, e.status(), e.what(), e.param()), e.status());
      if (e.status() >= 500 && api == Api::kOpenAI)
        res.set_header("x-should-retry", e.status() == 503 ? "true" : "false");
    } catch (const std::exception& e) {
      log_error("serve: {} {}: {}", req.method, req.path, e.what());
      reply_json(res, error_body(api, 500, e.what()), 500);
      if (api == Api::kOpenAI) res.set_header("x-should-retry", "false");
    }
    st.metrics.request(route, res.status);
    if (res.status >= 400 && log_level() >= LogLevel::kInfo)
      log_info("serve: {} {} -> {}", req.method, req.path, res.status);
  };
  const std::string m = method;
  st.routes.emplace_back(m, std::regex(pattern));
  if (m == "GET") {
    http.Get(pattern, wrapped);
  } else if (m == "POST") {
    http.Post(pattern, wrapped);
  } else if (m == "DELETE") {
    http.Delete(pattern, wrapped);
  } else {
    G2C_CHECK(false && "add_route: unknown method");
  }
}

// ---- the server ---------------------------------------------------------------------------------------

struct Server::Impl {
  ServerState st;
  httplib::Server http;
  int port = -1;
  int listen_fd = -1;  // the listening socket, seen through httplib's socket-options hook
  explicit Impl(ServerOptions o) : st(std::move(o)) {}
};

Server::Server(ServerOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {
  // glibc gives each new thread that allocates an arena of its own, up to 8 per core. A server's
  // requests run on many worker threads, so without a cap its resident memory creeps up for as long as
  // new workers first touch the heap (seen as ~10% over 640 requests in the soak test), which looks
  // like a leak and is not one. Four arenas are plenty for 2-16 cores of request handling; a
  // MALLOC_ARENA_MAX set by the user wins.
  static std::once_flag arenas;
  std::call_once(arenas, [] {
    if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 4);
  });
  ServerState& st = impl_->st;
  httplib::Server& http = impl_->http;
  const int threads = st.opts.http_threads > 0 ? st.opts.http_threads : st.opts.pool.parallel + st.opts.pool.queue + 16;
  http.new_task_queue = [threads] { return new WorkerPool(static_cast<std::size_t>(threads)); };
  http.set_payload_max_length(st.opts.max_body_bytes);
  // cpp-httplib 0.11 (built as a library, so its CPPHTTPLIB_LISTEN_BACKLOG of 5 is fixed) listens with a
  // backlog of 5: a burst of 16 clients connecting at once overflows it and the kernel drops SYNs, which
  // clients retry a second later. Keep the socket to listen() again with a real backlog after binding.
  http.set_socket_options([impl = impl_.get()](socket_t sock) {
    httplib::default_socket_options(sock);
    impl->listen_fd = static_cast<int>(sock);
  });
  http.set_post_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty() && allowed_origin(origin) && !res.has_header("Access-Control-Allow-Origin")) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
    }
  });
  http.Options(R"(.*)", [](const httplib::Request& req, httplib::Response& res) {
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty() && allowed_origin(origin)) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", kAllowHeaders);
      res.set_header("Access-Control-Max-Age", "43200");
    }
    res.status = 204;
  });
  // What httplib answers itself (no route, a body over the limit, a malformed request line) gets a body
  // in the shape of the API the path belongs to.
  http.set_error_handler([&st](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const bool openai = req.path.starts_with("/v1/");
    // A path served under another method: 405, as Ollama's router answers (cpp-httplib says 404, or
    // 400 for a body-less POST to a GET route).
    if (res.status == 404 || res.status == 400) {
      std::string allow;
      for (const auto& [method, pattern] : st.routes)
        if (method != req.method && std::regex_match(req.path, pattern)) allow += (allow.empty() ? "" : ", ") + method;
      if (!allow.empty()) {
        res.status = 405;
        res.set_header("Allow", allow);
      }
    }
    std::string msg = res.status == 405   ? "405 method not allowed"
                      : res.status == 404 ? "404 page not found"
                      : res.status == 413
                          ? fmt::format("request body too large (limit {} bytes)", st.opts.max_body_bytes)
                          : fmt::format("bad request ({})", res.status);
    if ((res.status == 404 || res.status == 405) && !openai) {
      res.set_content(msg, "text/plain; charset=utf-8");
    } else {
      reply_json(res, error_body(openai ? Api::kOpenAI : Api::kOllama, res.status, msg), res.status);
    }
    st.metrics.request("other", res.status);
  });
  add_ollama_routes(http, st);
  add_openai_routes(http, st);
  add_ops_routes(http, st);
}

Server::~Server() { stop(); }

ModelPool& Server::pool() { return impl_->st.pool; }

int Server::bind() {
  const std::string& host = impl_->st.opts.host;
  const int want = impl_->st.opts.port;
  int port = -1;
  if (want == 0) {
    port = impl_->http.bind_to_any_port(host);
  } else if (impl_->http.bind_to_port(host, want)) {
    port = want;
  }
  if (port <= 0)
    throw IoError(fmt::format("serve: cannot listen on {}:{} (in use, or not an address of this machine)", host, want));
  if (impl_->listen_fd >= 0) ::listen(impl_->listen_fd, SOMAXCONN);
  impl_->port = port;
  return port;
}

void Server::serve() {
  G2C_CHECK(impl_->port > 0);
  impl_->http.listen_after_bind();
}

void Server::stop() {
  if (impl_->st.stopping.exchange(true)) return;
  ServerState& st = impl_->st;
  st.pool.shutdown();  // running and queued generations end as canceled; their streams write a last chunk
  {
    std::unique_lock lk(st.streams_mu);
    st.streams_cv.wait_for(lk, std::chrono::seconds(10), [&] { return st.open_streams == 0; });
  }
  impl_->http.stop();
}

}  // namespace g2c::server
