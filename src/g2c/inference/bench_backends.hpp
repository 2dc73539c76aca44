#pragma once
// The pieces of `g2c bench-backends` that are not argument parsing: backend specs, the prompt file,
// and one benchmark per backend with its cold start.
//
//   --backend local:PATH          an ArtifactBackend (a path, an artifact name or an Ollama model name;
//                                 artifact.hpp), named "local"
//   --backend ollama:MODEL[@URL]  OllamaBackend (URL default: $OLLAMA_HOST or http://127.0.0.1:11434)
//   --backend openai:MODEL[@URL]  OpenAIBackend (URL default http://127.0.0.1:8080/v1; key $OPENAI_API_KEY)
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
  std::string kind;   // "local" | "ollama" | "openai"
  std::string model;  // path / name / model id
  std::string url;    // "" for local, or when the default is meant
  std::string text;   // as typed
};

// Throws InvalidArgument naming the spec and the accepted forms.
BackendSpec parse_backend_spec(std::string_view spec);

struct BackendMakerOptions {
  ArtifactOptions local;       // threads, n_ctx, kv type of the local backends
  double timeout_s = 120.0;    // HTTP backends
  std::string openai_api_key;  // "": $OPENAI_API_KEY when set
};

// Builds the backend a spec names; called once per benchmark so its construction is the cold start.
std::function<std::unique_ptr<Backend>()> backend_maker(const BackendSpec& spec, const BackendMakerOptions& opts = {});

// One prompt per line; blank lines and lines starting with '#' are skipped; "\n" and "\\" in a line
// are a newline and a backslash. Throws IoError / InvalidArgument (no prompts).
std::vector<std::string> read_prompts_file(const std::string& path);
std::vector<std::string> parse_prompts(std::string_view text);

// The prompt set in the source tree (bench/prompts/stories.txt) when it exists, else "".
std::string default_prompts_path();

}  // namespace g2c::inference
