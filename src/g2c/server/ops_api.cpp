// Operations: /health, /metrics (Prometheus), /tokenize, /detokenize (llama-server's shapes, with a
// `model` field since this server holds several).
#include <fmt/format.h>

#include "g2c/server/request_parse.hpp"
#include "g2c/server/routes.hpp"

namespace g2c::server {

void add_ops_routes(httplib::Server& http, ServerState& st) {
  const Api O = Api::kOllama;
  add_route(http, st, "GET", "/health", Api::kOpenAI, "/health",
            [&st](const httplib::Request&, httplib::Response& res) {
              if (st.stopping) throw ApiError(503, "shutting down");
              reply_json(res, {{"status", "ok"}});
            });
  add_route(http, st, "GET", "/metrics", O, "/metrics", [&st](const httplib::Request&, httplib::Response& res) {
    std::vector<ModelGauges> gauges;
    for (const LoadedInfo& l : st.pool.loaded()) {
      ModelGauges g;
      g.model = l.file.name;
      g.queued = l.stats.queued;
      g.active = l.stats.active;
      g.kv_cells = l.stats.kv_cells;
      g.kv_capacity = l.stats.kv_capacity;
      g.rejected = l.stats.rejected;
      g.canceled = l.stats.canceled;
      gauges.push_back(g);
    }
    res.set_content(st.metrics.render(gauges), "text/plain; version=0.0.4; charset=utf-8");
  });
  add_route(http, st, "POST", "/tokenize", O, "/tokenize", [&st](const httplib::Request& req, httplib::Response& res) {
    const Json body = parse_body(req.body);
    const std::string model = require_model(body, false);
    if (!body.contains("content") || !body["content"].is_string())
      throw bad_request("invalid request: content must be a string", "content");
    const bool add_special = body.value("add_special", false);
    const bool with_pieces = body.value("with_pieces", false);
    Lease lease = st.pool.acquire(model, std::nullopt);
    const auto ids = lease->tokenizer().encode(body["content"].get<std::string>(), add_special, true);
    Json tokens = Json::array();
    for (std::int32_t id : ids) {
      if (with_pieces) {
        tokens.push_back({{"id", id}, {"piece", token_text(*lease, id)}});
      } else {
        tokens.push_back(id);
      }
    }
    reply_json(res, {{"tokens", tokens}});
  });
  add_route(http, st, "POST", "/detokenize", O, "/detokenize",
            [&st](const httplib::Request& req, httplib::Response& res) {
              const Json body = parse_body(req.body);
              const std::string model = require_model(body, false);
              if (!body.contains("tokens") || !body["tokens"].is_array())
                throw bad_request("invalid request: tokens must be an array of token ids", "tokens");
              Lease lease = st.pool.acquire(model, std::nullopt);
              const int n_vocab = lease->tokenizer().n_vocab();
              std::vector<std::int32_t> ids;
              for (const Json& t : body["tokens"]) {
                if (!t.is_number_integer() || t.get<std::int64_t>() < 0 || t.get<std::int64_t>() >= n_vocab)
                  throw bad_request(fmt::format("invalid request: tokens must be ids in 0..{}", n_vocab - 1), "tokens");
                ids.push_back(static_cast<std::int32_t>(t.get<std::int64_t>()));
              }
              reply_json(res, {{"content", lease->tokenizer().decode(ids)}}, 200);
            });
}

}  // namespace g2c::server
