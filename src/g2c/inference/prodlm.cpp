#include "g2c/inference/prodlm.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "g2c/core/error.hpp"
#include "g2c/core/log.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/inference/ollama.hpp"
#include "g2c/inference/openai.hpp"

namespace g2c::inference {
namespace {

constexpr const char* kManifestFormat = "g2c.prodlm";
constexpr int kManifestVersion = 1;

std::string string_field(const nlohmann::json& j, const char* key, const std::string& fallback, bool required) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) throw FormatError(fmt::format("ProdLM manifest: missing required key '{}'", key));
    return fallback;
  }
  if (!j[key].is_string()) {
    throw FormatError(fmt::format("ProdLM manifest: '{}' must be a string, got {}", key, j[key].dump()));
  }
  return j[key].get<std::string>();
}

// Forwards to the chosen backend and adds the selection to info().extra, so whoever got the default
// backend can print which one it is and why.
class SelectedBackend final : public Backend {
 public:
  SelectedBackend(std::unique_ptr<Backend> inner, std::string kind, std::string reason)
      : inner_(std::move(inner)), kind_(std::move(kind)), reason_(std::move(reason)) {}
  BackendInfo info() const override {
    BackendInfo i = inner_->info();
    i.extra["selected"] = {{"kind", kind_}, {"reason", reason_}};
    return i;
  }
  InferenceResult complete(const std::string& prompt, const GenerateOptions& opts) override {
    InferenceResult r = inner_->complete(prompt, opts);
    r.backend = info();
    return r;
  }
  InferenceResult stream(const std::string& prompt, const GenerateOptions& opts, const ChunkCallback& cb) override {
    InferenceResult r = inner_->stream(prompt, opts, cb);
    r.backend = info();
    return r;
  }
  ChatResult chat(const std::vector<ChatMessage>& m, const std::vector<ToolSpec>& t,
                  const GenerateOptions& o) override {
    ChatResult r = inner_->chat(m, t, o);
    r.backend = info();
    return r;
  }
  ChatResult chat_stream(const std::vector<ChatMessage>& m, const std::vector<ToolSpec>& t, const GenerateOptions& o,
                         const ChunkCallback& cb) override {
    ChatResult r = inner_->chat_stream(m, t, o, cb);
    r.backend = info();
    return r;
  }
  LoglikResult loglikelihood(const std::string& context, const std::string& continuation) override {
    LoglikResult r = inner_->loglikelihood(context, continuation);
    r.backend = info();
    return r;
  }

 private:
  std::unique_ptr<Backend> inner_;
  std::string kind_, reason_;
};

}  // namespace

nlohmann::json ProdLMManifest::to_json() const {
  nlohmann::json j = {
      {"format", kManifestFormat}, {"version", kManifestVersion}, {"backend", backend}, {"model_id", model_id}};
  if (!base_url.empty()) j["base_url"] = base_url;
  if (!quantization.empty()) j["quantization"] = quantization;
  if (context_length) j["context_length"] = *context_length;
  if (!api_key_env.empty()) j["api_key_env"] = api_key_env;
  j["timeout_s"] = timeout_s;
  if (!notes.empty()) j["notes"] = notes;
  return j;
}

ProdLMManifest ProdLMManifest::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw FormatError("ProdLM manifest: expected a JSON object, got " + j.dump());
  if (j.contains("version") && (!j["version"].is_number_integer() || j["version"].get<int>() > kManifestVersion)) {
    throw FormatError(fmt::format("ProdLM manifest: version {} is newer than this g2c reads ({})", j["version"].dump(),
                                  kManifestVersion));
  }
  ProdLMManifest m;
  m.backend = string_field(j, "backend", "", true);
  if (m.backend != "ollama" && m.backend != "openai") {
    throw FormatError(fmt::format("ProdLM manifest: backend must be \"ollama\" or \"openai\", got \"{}\"", m.backend));
  }
  m.model_id = string_field(j, "model_id", "", true);
  if (m.model_id.empty()) throw FormatError("ProdLM manifest: model_id is empty");
  m.base_url = string_field(j, "base_url", "", false);
  m.quantization = string_field(j, "quantization", "", false);
  m.api_key_env = string_field(j, "api_key_env", "", false);
  m.notes = string_field(j, "notes", "", false);
  if (j.contains("context_length") && !j["context_length"].is_null()) {
    if (!j["context_length"].is_number_integer() || j["context_length"].get<std::int64_t>() <= 0) {
      throw FormatError("ProdLM manifest: context_length must be a positive integer, got " +
                        j["context_length"].dump());
    }
    m.context_length = j["context_length"].get<std::int64_t>();
  }
  if (j.contains("timeout_s") && !j["timeout_s"].is_null()) {
    if (!j["timeout_s"].is_number() || j["timeout_s"].get<double>() <= 0) {
      throw FormatError("ProdLM manifest: timeout_s must be a positive number, got " + j["timeout_s"].dump());
    }
    m.timeout_s = j["timeout_s"].get<double>();
  }
  return m;
}

std::string default_prodlm_manifest_path() {
  if (const char* p = std::getenv("G2C_PRODLM_MANIFEST"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/g2c/prodlm.json";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.config/g2c/prodlm.json";
}

void write_prodlm_manifest(const std::string& path, const ProdLMManifest& manifest) {
  ProdLMManifest::from_json(manifest.to_json());  // refuse to write what we could not read back
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) throw IoError(fmt::format("cannot create {} for the ProdLM manifest: {}", parent.string(), ec.message()));
  std::string text = manifest.to_json().dump(2) + "\n";
  write_file_atomic(path, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

ProdLMManifest load_prodlm_manifest(const std::string& path) {
  std::string text = read_file(path);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) throw FormatError("ProdLM manifest " + path + ": not valid JSON");
  try {
    return ProdLMManifest::from_json(j);
  } catch (const Error&) {
    rethrow_with_context("ProdLM manifest " + path);
  }
}

std::unique_ptr<Backend> make_prodlm_backend(const ProdLMManifest& m, std::shared_ptr<HttpTransport> transport) {
  nlohmann::json extra = {{"prodlm", true}};
  if (!m.quantization.empty()) extra["quantization"] = m.quantization;
  if (m.context_length) extra["context_length"] = *m.context_length;
  if (!m.notes.empty()) extra["notes"] = m.notes;
  if (m.backend == "ollama") {
    return std::make_unique<OllamaBackend>(
        OllamaConfig{m.model_id, m.base_url, m.timeout_s, std::move(transport), "prodlm", extra});
  }
  if (m.backend == "openai") {
    std::string key;
    if (!m.api_key_env.empty()) {
      const char* v = std::getenv(m.api_key_env.c_str());
      if (!v) log_warn("ProdLM: ${} is not set; sending no API key", m.api_key_env);
      key = v ? v : "";
    }
    OpenAIConfig cfg;
    if (!m.base_url.empty()) cfg.base_url = m.base_url;
    cfg.model = m.model_id;
    cfg.api_key = key;
    cfg.timeout_s = m.timeout_s;
    cfg.transport = std::move(transport);
    cfg.name = "prodlm";
    cfg.extra = extra;
    return std::make_unique<OpenAIBackend>(std::move(cfg));
  }
  throw InvalidArgument("ProdLM: unknown backend kind '" + m.backend + "'");
}

std::unique_ptr<Backend> load_prodlm_backend(const std::string& path_in, std::shared_ptr<HttpTransport> transport) {
  std::string path = path_in.empty() ? default_prodlm_manifest_path() : path_in;
  ProdLMManifest m = load_prodlm_manifest(path);
  std::unique_ptr<Backend> b = make_prodlm_backend(m, std::move(transport));
  return b;
}

bool prodlm_server_answers(const ProdLMManifest& m, std::shared_ptr<HttpTransport> transport, double timeout_s,
                           std::string* why) {
  if (!transport) transport = make_httplib_transport();
  try {
    if (m.backend == "ollama") {
      OllamaBackend b(OllamaConfig{m.model_id, m.base_url, timeout_s, transport, "prodlm", {}});
      std::string v = b.version(timeout_s);
      if (why) *why = fmt::format("ProdLM server (Ollama {}) at {} answered", v, b.base_url());
    } else {
      OpenAIConfig cfg;
      if (!m.base_url.empty()) cfg.base_url = m.base_url;
      cfg.model = m.model_id;
      cfg.timeout_s = timeout_s;
      cfg.transport = transport;
      OpenAIBackend b(std::move(cfg));
      b.list_models(timeout_s);
      if (why) *why = fmt::format("ProdLM server (OpenAI-compatible) at {} answered", b.base_url());
    }
    return true;
  } catch (const Error& e) {
    if (why) *why = fmt::format("ProdLM server did not answer: {}", e.what());
    return false;
  }
}

namespace {

// The model names an Ollama server lists (GET /api/tags: {"models": [{"name", "model", ...}]}).
std::vector<std::string> ollama_tags(HttpTransport& t, const std::string& base_url, double timeout_s) {
  HttpRequest req;
  req.url = base_url + "/api/tags";
  req.timeout_s = timeout_s;
  const HttpResponse r = t.get(req);
  if (r.status != 200) throw IoError(fmt::format("GET {} answered HTTP {}", req.url, r.status));
  const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("models") || !j["models"].is_array()) {
    throw FormatError(fmt::format("GET {}: no \"models\" list in the answer", req.url));
  }
  std::vector<std::string> names;
  for (const auto& m : j["models"]) {
    if (m.contains("name") && m["name"].is_string()) names.push_back(m["name"].get<std::string>());
  }
  return names;
}

bool same_model(const std::string& want, const std::string& have) {
  // "llama3.2" and "llama3.2:latest" name the same model (Ollama, and Ollama-style servers such as
  // g2c serve behind their OpenAI routes, list the tagged name and accept either).
  const auto norm = [](const std::string& n) { return n.find(':') == std::string::npos ? n + ":latest" : n; };
  return norm(want) == norm(have);
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

std::vector<ProdLMCheck> check_prodlm(const ProdLMManifest& m, std::shared_ptr<HttpTransport> transport,
                                      double timeout_s) {
  if (!transport) transport = make_httplib_transport();
  const bool ollama = m.backend == "ollama";
  std::string base_url;
  if (ollama) {
    base_url = OllamaBackend(OllamaConfig{m.model_id, m.base_url, timeout_s, transport, "prodlm", {}}).base_url();
  } else {
    OpenAIConfig cfg;
    if (!m.base_url.empty()) cfg.base_url = m.base_url;
    cfg.model = m.model_id;
    cfg.transport = transport;
    base_url = OpenAIBackend(std::move(cfg)).base_url();
  }
  std::vector<ProdLMCheck> out;
  const auto skip_rest = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) out.push_back({n, false, true, "skipped: an earlier check failed", ""});
  };

  // 1. The server.
  ProdLMCheck server{"server", false, false, "", ""};
  std::string why;
  server.ok = prodlm_server_answers(m, transport, timeout_s, &why);
  server.detail = one_line(why);
  if (!server.ok) {
    server.fix = ollama ? fmt::format(
                              "start Ollama: `ollama serve` (or `g2c serve --port {}`), or point the manifest "
                              "at the running server with `g2c prodlm set ollama:{}@URL`",
                              parse_url(base_url).port, m.model_id)
                        : fmt::format(
                              "start the OpenAI-compatible server at {} (g2c serve, llama-server, "
                              "mlx_lm.server), or `g2c prodlm set openai:{}@URL`",
                              base_url, m.model_id);
  }
  out.push_back(server);
  if (!server.ok) {
    skip_rest({"model", "completion"});
    return out;
  }

  // 2. The model.
  ProdLMCheck model{"model", false, false, "", ""};
  try {
    std::vector<std::string> names;
    if (ollama) {
      names = ollama_tags(*transport, base_url, timeout_s);
    } else {
      OpenAIConfig cfg;
      cfg.base_url = base_url;
      cfg.model = m.model_id;
      cfg.transport = transport;
      names = OpenAIBackend(std::move(cfg)).list_models(timeout_s);
    }
    for (const std::string& n : names) model.ok = model.ok || same_model(m.model_id, n);
    model.detail = model.ok ? fmt::format("{} is listed by {}", m.model_id, base_url)
                            : fmt::format("{} is not among the {} model(s) {} lists: {}", m.model_id, names.size(),
                                          base_url, fmt::join(names, ", "));
    if (!model.ok) {
      model.fix = ollama
                      ? fmt::format("`ollama pull {}` (or `g2c prodlm set ollama:NAME` with a listed name)", m.model_id)
                      : "load the model in the server, or `g2c prodlm set openai:NAME@URL` with a listed name";
    }
  } catch (const Error& e) {
    model.detail = one_line(e.what());
    model.fix = "check that the server at " + base_url + " is the one meant (" + (ollama ? "/api/tags" : "/models") +
                " did not answer as expected)";
  }
  out.push_back(model);
  if (!model.ok) {
    skip_rest({"completion"});
    return out;
  }

  // 3. One token.
  ProdLMCheck comp{"completion", false, false, "", ""};
  try {
    ProdLMManifest mm = m;
    mm.timeout_s = std::max(timeout_s, m.timeout_s);
    std::unique_ptr<Backend> b = make_prodlm_backend(mm, transport);
    GenerateOptions g;
    g.max_new_tokens = 1;
    g.temperature = 0.0;
    const InferenceResult r = b->complete("Hello", g);
    comp.ok = true;
    comp.detail = fmt::format("one-token completion {} in {:.1f} ms ({} completion token(s))",
                              nlohmann::json(r.completion).dump(), r.latency_ms,
                              r.completion_tokens ? std::to_string(*r.completion_tokens) : "?");
  } catch (const Error& e) {
    comp.detail = one_line(e.what());
    comp.fix = ollama ? "see `ollama ps` and the server log; `ollama run " + m.model_id + " hi` shows the same failure"
                      : "see the server's log; the model is listed but does not complete";
  }
  out.push_back(comp);
  return out;
}

std::unique_ptr<Backend> load_default_backend(const std::string& kind, const DefaultBackendOptions& opts) {
  if (kind != "auto" && kind != "prodlm" && kind != "local") {
    throw InvalidArgument("load_default_backend: kind must be auto, prodlm or local, got '" + kind + "'");
  }
  std::string manifest_path = opts.manifest_path.empty() ? default_prodlm_manifest_path() : opts.manifest_path;
  std::vector<std::string> tried;

  if (kind == "prodlm") {
    auto b = load_prodlm_backend(manifest_path, opts.transport);
    return std::make_unique<SelectedBackend>(std::move(b), "prodlm", "asked for prodlm; manifest " + manifest_path);
  }
  if (kind == "auto") {
    std::error_code ec;
    if (!std::filesystem::exists(manifest_path, ec)) {
      tried.push_back("no ProdLM manifest at " + manifest_path);
    } else {
      std::optional<ProdLMManifest> m;
      try {
        m = load_prodlm_manifest(manifest_path);
      } catch (const Error& e) {
        log_warn("load_default_backend: ignoring the ProdLM manifest: {}", e.what());
        tried.push_back(std::string("unusable ProdLM manifest: ") + e.what());
      }
      std::string why;
      if (m && prodlm_server_answers(*m, opts.transport, opts.probe_timeout_s, &why)) {
        log_info("load_default_backend: chose ProdLM: {}", why);
        return std::make_unique<SelectedBackend>(make_prodlm_backend(*m, opts.transport), "prodlm",
                                                 why + " (manifest " + manifest_path + ")");
      }
      if (m) tried.push_back(why);
    }
  }
  if (!opts.local_factory) {
    tried.push_back("no local backend factory given (the engine registers ArtifactBackend there)");
  } else {
    try {
      std::unique_ptr<Backend> b = opts.local_factory(opts.local_name_or_path);
      if (b) {
        std::string what = opts.local_name_or_path.empty() ? std::string("the default local artifact")
                                                           : "local artifact '" + opts.local_name_or_path + "'";
        std::string reason = kind == "local" ? "asked for local; " + what
                                             : fmt::format("{}; fell back to {}", fmt::join(tried, "; "), what);
        log_info("load_default_backend: chose local: {}", reason);
        return std::make_unique<SelectedBackend>(std::move(b), "local", reason);
      }
      tried.push_back("the local factory found no artifact for '" + opts.local_name_or_path + "'");
    } catch (const Error& e) {
      tried.push_back(std::string("the local backend failed to load: ") + e.what());
    }
  }
  throw Error(fmt::format("load_default_backend({}): no backend available: {}", kind, fmt::join(tried, "; ")));
}

}  // namespace g2c::inference
