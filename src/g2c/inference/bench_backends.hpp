#pragma once
// The pieces of `g2c bench-backends` (and `g2c complete`, `chat`, `prodlm`) that are not argument
// parsing: backend specs, the prompt file, and one benchmark per backend with its cold start.
// One spec syntax for every command:
//
//   local:PATH|NAME        an ArtifactBackend (a path, an artifact name or an Ollama model name;
//                          artifact.hpp), named "local"
//   local-naive:PATH|NAME  the same without the KV cache (the O(T^2) loop of `g2c run --no-kv-cache`),
//                          named "local-naive"
//   ollama:MODEL[@URL]     OllamaBackend (URL default: $OLLAMA_HOST or http://127.0.0.1:11434)
//   openai:MODEL[@URL]     OpenAIBackend (URL default http://127.0.0.1:8080/v1; key $OPENAI_API_KEY)
//   prodlm[:MANIFEST]      the ProdLM manifest's backend (default_prodlm_manifest_path()), no probe
//   auto                   load_default_backend("auto"): ProdLM when its manifest exists and its server
//                          answers, else the default local artifact; info().extra["selected"] says why
// The URL starts after the last '@' (model names have none).
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "g2c/inference/artifact.hpp"
#include "g2c/inference/backend.hpp"
#include "g2c/inference/benchmark.hpp"

namespace g2c::inference {

struct BackendSpec {
  std::string kind;   // "local" | "local-naive" | "ollama" | "openai" | "prodlm" | "auto"
  std::string model;  // path / name / model id; prodlm: the manifest path ("" = default); auto: ""
  std::string url;    // "" for local, prodlm and auto, or when the default is meant
  std::string text;   // as typed
};

// Throws InvalidArgument naming the spec and the accepted forms.
BackendSpec parse_backend_spec(std::string_view spec);

struct BackendMakerOptions {
  ArtifactOptions local;        // threads, n_ctx, kv type of the local backends
  double timeout_s = 120.0;     // HTTP backends
  std::string openai_api_key;   // "": $OPENAI_API_KEY when set
  std::string prodlm_manifest;  // "auto": the manifest it reads ("" = default_prodlm_manifest_path())
};

// A one-line description of the accepted forms, for help texts.
inline constexpr const char* kBackendSpecHelp =
    "local:PATH|NAME, local-naive:PATH|NAME (no KV cache), ollama:MODEL[@URL], openai:MODEL[@URL], "
    "prodlm[:MANIFEST], auto";

// Builds the backend once (the commands that make one call or one chat).
std::unique_ptr<Backend> make_backend(const BackendSpec& spec, const BackendMakerOptions& opts = {});

// Builds the backend a spec names; called once per benchmark so its construction is the cold start.
std::function<std::unique_ptr<Backend>()> backend_maker(const BackendSpec& spec, const BackendMakerOptions& opts = {});

// One prompt per line; blank lines and lines starting with '#' are skipped; "\n" and "\\" in a line
// are a newline and a backslash. Throws IoError / InvalidArgument (no prompts).
std::vector<std::string> read_prompts_file(const std::string& path);
std::vector<std::string> parse_prompts(std::string_view text);

// The prompt set in the source tree (bench/prompts/stories.txt) when it exists, else "".
std::string default_prompts_path();

}  // namespace g2c::inference
