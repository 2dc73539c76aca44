#pragma once
// ArtifactBackend: a saved model file run in-process through LocalTransformerBackend, found by path or
// by name (the seed's load_artifact_backend). What `name_or_path` may be, tried in this order:
//
//   1. a path to a file: a GGUF, or a llama2.c .bin whose tokenizer is ArtifactOptions::tokenizer_path or
//      lies beside it as tokenizer.bin or tok<vocab>.bin (tok512.bin for stories260K.bin);
//   2. a name looked up in the artifact folders (default_artifact_dirs()), preferring NAME-DPO, then
//      NAME-SFT, then NAME, as the seed's notebook does; each with .gguf, then .bin, then no extension.
//      The stage wins over the folder: NAME-DPO in the last folder beats NAME in the first;
//   3. an Ollama model name ("llama3.2:3b", "hf.co/user/repo:Q4_K_M", "stories260K") resolved through
//      Ollama's local store (ollama_store.hpp), so a model Ollama pulled runs here without Ollama.
//   "" means kDefaultArtifactName.
//
// When nothing matches, ArtifactNotFound lists every place looked (required = true) or the loader
// returns nullptr (required = false). A file that is found but does not load always throws, with the
// file named: a broken artifact is not a missing one.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "g2c/core/error.hpp"
#include "g2c/inference/local_backend.hpp"
#include "g2c/inference/prodlm.hpp"
#include "g2c/model/model.hpp"

namespace g2c::inference {

inline constexpr const char* kDefaultArtifactName = "stories260K";

class ArtifactNotFound : public IoError {
 public:
  ArtifactNotFound(const std::string& msg, std::vector<std::string> looked)
      : IoError(msg), looked_(std::move(looked)) {}
  const std::vector<std::string>& looked() const { return looked_; }

 private:
  std::vector<std::string> looked_;
};

struct ArtifactOptions {
  int threads = 0;  // 0: physical cores
  model::KvType kv_type = model::KvType::kF32;
  int n_ctx = 0;                       // 0: the model's training context, at most 4096
  bool naive = false;                  // no KV cache: every step recomputes the sequence (O(T^2))
  std::string tokenizer_path;          // llama2.c .bin only: its tokenizer.bin (else found beside the model)
  std::string name = "artifact";       // BackendInfo::name
  std::optional<std::int32_t> eos_id;  // see LocalTransformerBackend
  // Where names are looked up; nullopt: default_artifact_dirs() / default_ollama_roots().
  std::optional<std::vector<std::string>> search_dirs;
  std::optional<std::vector<std::string>> ollama_roots;
};

// $G2C_ARTIFACTS_DIR split on ':' when set; else $G2C_MODELS_DIR when set; else ../shared/models beside the
// source tree when that folder exists (the same default as the g2c command's models folder); else none.
std::vector<std::string> default_artifact_dirs();

// Where an artifact was found.
struct ArtifactLocation {
  std::string model_path;
  std::string tokenizer_path;                         // llama2.c .bin only
  std::string source;                                 // "path" | "artifacts_dir" | "ollama"
  std::string model_id;                               // file name, or the Ollama name ("stories260K:latest")
  nlohmann::json details = nlohmann::json::object();  // folder, stage, Ollama manifest and digest ...
};

// Resolution only (steps 1-3 above, no model loaded; the llama2.c tokenizer is found when the model
// loads). Nullopt when nothing matches; `looked` receives every place tried.
std::optional<ArtifactLocation> resolve_artifact(const std::string& name_or_path, const ArtifactOptions& opts = {},
                                                 std::vector<std::string>* looked = nullptr);

class ArtifactBackend : public LocalTransformerBackend {
 public:
  // Loads the model (and tokenizer) the location names. info().extra gains source, tokenizer_path and
  // the location's details.
  ArtifactBackend(const ArtifactLocation& location, const ArtifactOptions& opts = {});
  const ArtifactLocation& location() const { return location_; }

 private:
  struct Loaded;
  static Loaded load(const ArtifactLocation& location);
  ArtifactBackend(Loaded loaded, const ArtifactOptions& opts);
  ArtifactLocation location_;
};

// The seed's loader. threads 0: physical cores. required = false: nullptr when nothing is found.
std::unique_ptr<ArtifactBackend> load_artifact_backend(const std::string& name_or_path, int threads = 0,
                                                       model::KvType kv_type = model::KvType::kF32,
                                                       bool required = true);
// The same with every option.
std::unique_ptr<ArtifactBackend> open_artifact_backend(const std::string& name_or_path, const ArtifactOptions& opts,
                                                       bool required = true);

// For load_default_backend(): builds an ArtifactBackend for a name or path ("" = the default artifact).
LocalBackendFactory local_backend_factory(ArtifactOptions opts = {});

}  // namespace g2c::inference
