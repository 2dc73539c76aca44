#pragma once
// Ollama's local model store, read without Ollama: a model name -> its manifest -> the GGUF blob, so a
// model `ollama pull` fetched runs in-process (ArtifactBackend). Layout (../shared/docs/formats.md §1):
//   <root>/manifests/<host>/<namespace>/<model>/<tag>   JSON manifest, no extension
//   <root>/blobs/sha256-<64 hex>                         content-addressed blobs; the layer with
//                                                        mediaType application/vnd.ollama.image.model
//                                                        is the GGUF, unmodified
// Roots, searched in this order: $OLLAMA_MODELS (when set), ~/.ollama/models (Ollama run as
// yourself), /usr/share/ollama/.ollama/models (the Linux system service's home).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace g2c::inference {

// A parsed model name with Ollama's defaults filled in (types/model/name.go):
//   "llama3.2:3b"            -> registry.ollama.ai / library / llama3.2 / 3b
//   "stories260K"            -> registry.ollama.ai / library / stories260K / latest
//   "hf.co/user/repo:Q4_K_M" -> hf.co / user / repo / Q4_K_M
// Case is kept as typed.
struct OllamaName {
  std::string host = "registry.ollama.ai";
  std::string ns = "library";
  std::string model;
  std::string tag = "latest";

  std::string manifest_relpath() const;  // "<host>/<ns>/<model>/<tag>"
  std::string display() const;           // "stories260K:latest", "hf.co/user/repo:Q4_K_M"
};

// Nullopt when `typed` is not a valid Ollama name (an empty part, a part over 80 characters (host 350),
// a first character other than alphanumeric or '_', characters outside [A-Za-z0-9_.-], '.' in the
// namespace, ':' outside the host). A leading "scheme://" is dropped.
std::optional<OllamaName> parse_ollama_name(std::string_view typed);

// $OLLAMA_MODELS (when set and not empty), ~/.ollama/models, /usr/share/ollama/.ollama/models; duplicates
// removed, folders that do not exist kept (they are reported as places looked).
std::vector<std::string> default_ollama_roots();

struct OllamaModelRef {
  OllamaName name;
  std::string root;           // the store it was found in
  std::string manifest_path;  // the manifest file read
  std::string digest;         // "sha256:<hex>" of the model layer
  std::string blob_path;      // the GGUF
  std::string template_text;  // the Go template layer, when present (informational; g2c uses the GGUF's)
  nlohmann::json params = nlohmann::json::object();  // the params layer, when present
};

// Finds `name` in the roots, in order: the exact manifest path first, then a case-insensitive scan of
// manifests/*/*/*/* (Ollama compares names case-insensitively; filesystems may not). Nullopt when no
// root has it or the name is not an Ollama name; `looked` (when given) receives each manifest path tried.
// A manifest that exists but is broken (not JSON, no model layer, a bad digest, a missing blob) throws
// FormatError / IoError naming the file: it is a damaged store, not a missing model.
std::optional<OllamaModelRef> find_ollama_model(std::string_view name, const std::vector<std::string>& roots,
                                                std::vector<std::string>* looked = nullptr);

// Reads one manifest file of `root` (the checks above).
OllamaModelRef read_ollama_manifest(const std::string& root, const std::string& manifest_path, const OllamaName& name);

}  // namespace g2c::inference
