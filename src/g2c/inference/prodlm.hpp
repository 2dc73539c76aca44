#pragma once
// ProdLM: the course's "production model" — a served model described by a small JSON manifest, so
// every later module gets it through load_prodlm_backend() / load_default_backend() instead of
// hard-coding a URL. Manifest (all keys but backend and model_id optional):
//   {
//     "format": "g2c.prodlm", "version": 1,
//     "backend": "ollama" | "openai",
//     "model_id": "llama3.2:3b",
//     "base_url": "http://127.0.0.1:11434",      // default: $OLLAMA_HOST rules / http://127.0.0.1:8080/v1
//     "quantization": "Q4_K_M", "context_length": 4096,
//     "api_key_env": "OPENAI_API_KEY",            // openai: name of the variable holding the key
//     "timeout_s": 120, "notes": "free text"
//   }
// The default path: $G2C_PRODLM_MANIFEST, else $XDG_CONFIG_HOME/g2c/prodlm.json, else
// $HOME/.config/g2c/prodlm.json.
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "g2c/inference/backend.hpp"
#include "g2c/inference/http_transport.hpp"

namespace g2c::inference {

struct ProdLMManifest {
  std::string backend = "ollama";
  std::string model_id = "llama3.2:3b";
  std::string base_url;  // empty: the backend's default
  std::string quantization;
  std::optional<std::int64_t> context_length;
  std::string api_key_env;
  double timeout_s = 120.0;
  std::string notes;

  nlohmann::json to_json() const;
  // Throws FormatError naming the key for a missing or mistyped field.
  static ProdLMManifest from_json(const nlohmann::json& j);
};

std::string default_prodlm_manifest_path();

// Atomic write (temporary name + rename); creates the parent folder.
void write_prodlm_manifest(const std::string& path, const ProdLMManifest& manifest);
ProdLMManifest load_prodlm_manifest(const std::string& path);

// The backend a manifest describes, named "prodlm", with the manifest's quantization, context length,
// notes and path in info().extra. `transport` null: the real HTTP client.
std::unique_ptr<Backend> make_prodlm_backend(const ProdLMManifest& manifest,
                                             std::shared_ptr<HttpTransport> transport = nullptr);
std::unique_ptr<Backend> load_prodlm_backend(const std::string& path = "",
                                             std::shared_ptr<HttpTransport> transport = nullptr);

// True when the manifest's server answers its cheap health route (Ollama GET /api/version, OpenAI
// GET /models) within timeout_s. `why` receives a one-line reason either way.
bool prodlm_server_answers(const ProdLMManifest& manifest, std::shared_ptr<HttpTransport> transport, double timeout_s,
                           std::string* why);

// One check of `g2c prodlm check`: what was checked, whether it passed, what was seen, and the fix to
// try when it failed ("" when it passed or was skipped).
struct ProdLMCheck {
  std::string name;  // "manifest" | "server" | "model" | "completion"
  bool ok = false;
  bool skipped = false;  // not run because an earlier check failed (counts as failed)
  std::string detail;
  std::string fix;
};

// Checks, in order: the server answers (Ollama GET /api/version, OpenAI GET {base}/models); the model is
// there (Ollama GET /api/tags, "NAME" matching "NAME:latest"; OpenAI's /models list); a one-token greedy
// completion answers. A check after a failed one is skipped. `transport` null: the real HTTP client.
std::vector<ProdLMCheck> check_prodlm(const ProdLMManifest& manifest,
                                      std::shared_ptr<HttpTransport> transport = nullptr, double timeout_s = 5.0);

// Builds the in-process backend for a model name or path (engine side: ArtifactBackend). Passed in,
// not registered globally, so this layer does not depend on the engine and tests can fake it.
using LocalBackendFactory = std::function<std::unique_ptr<Backend>(const std::string& name_or_path)>;

struct DefaultBackendOptions {
  std::string manifest_path;                 // "": default_prodlm_manifest_path()
  std::string local_name_or_path;            // handed to local_factory ("" lets the factory pick its default)
  LocalBackendFactory local_factory;         // null: no local fallback
  std::shared_ptr<HttpTransport> transport;  // null: the real HTTP client
  double probe_timeout_s = 2.0;
};

// kind: "auto" (ProdLM when its manifest exists, parses and its server answers, else the local
// artifact; a broken manifest is skipped with a warning, not fatal),
// "prodlm" (the manifest's backend, no probe) or "local" (the factory). The returned backend's
// info().extra["selected"] = {"kind": "prodlm"|"local", "reason": "..."} says which and why; the
// error when nothing fits lists every reason.
std::unique_ptr<Backend> load_default_backend(const std::string& kind = "auto", const DefaultBackendOptions& opts = {});

}  // namespace g2c::inference
