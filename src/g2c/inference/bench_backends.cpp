#include "g2c/inference/bench_backends.hpp"

#include <cstdlib>
#include <filesystem>

#include "g2c/core/error.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/inference/ollama.hpp"
#include "g2c/inference/openai.hpp"
#include "g2c/inference/prodlm.hpp"

#ifndef G2C_SOURCE_ROOT
#define G2C_SOURCE_ROOT "."
#endif

namespace g2c::inference {

BackendSpec parse_backend_spec(std::string_view spec) {
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("backend spec '" + std::string(spec) + "': " + why + " (expected " + kBackendSpecHelp + ")");
  };
  BackendSpec s;
  s.text = std::string(spec);
  if (spec == "auto" || spec == "prodlm") {
    s.kind = std::string(spec);
    return s;
  }
  const std::size_t colon = spec.find(':');
  if (colon == std::string_view::npos) throw bad("no kind");
  s.kind = std::string(spec.substr(0, colon));
  std::string_view rest = spec.substr(colon + 1);
  if (s.kind == "auto") throw bad("auto takes nothing after it");
  if (s.kind == "prodlm") {
    s.model = std::string(rest);  // the manifest path
    if (s.model.empty()) throw bad("no manifest path after 'prodlm:'");
    return s;
  }
  if (s.kind == "local" || s.kind == "local-naive") {
    s.model = std::string(rest);  // a path may contain '@'; local specs have no URL
  } else if (s.kind == "ollama" || s.kind == "openai") {
    const std::size_t at = rest.rfind('@');
    if (at != std::string_view::npos) {
      s.url = std::string(rest.substr(at + 1));
      rest = rest.substr(0, at);
      if (s.url.empty()) throw bad("empty URL after '@'");
    }
    s.model = std::string(rest);
  } else {
    throw bad("unknown kind '" + s.kind + "'");
  }
  if (s.model.empty()) throw bad("no model");
  return s;
}

std::function<std::unique_ptr<Backend>()> backend_maker(const BackendSpec& spec, const BackendMakerOptions& opts) {
  if (spec.kind == "local" || spec.kind == "local-naive") {
    ArtifactOptions lo = opts.local;
    lo.name = spec.kind;
    lo.naive = spec.kind == "local-naive";
    return [model = spec.model, lo]() -> std::unique_ptr<Backend> { return open_artifact_backend(model, lo); };
  }
  if (spec.kind == "ollama") {
    OllamaConfig cfg;
    cfg.model_id = spec.model;
    cfg.base_url = spec.url;
    cfg.timeout_s = opts.timeout_s;
    return [cfg]() -> std::unique_ptr<Backend> { return std::make_unique<OllamaBackend>(cfg); };
  }
  if (spec.kind == "openai") {
    OpenAIConfig cfg;
    if (!spec.url.empty()) cfg.base_url = spec.url;
    cfg.model = spec.model;
    cfg.timeout_s = opts.timeout_s;
    cfg.api_key = opts.openai_api_key;
    if (cfg.api_key.empty()) {
      if (const char* key = std::getenv("OPENAI_API_KEY"); key != nullptr) cfg.api_key = key;
    }
    return [cfg]() -> std::unique_ptr<Backend> { return std::make_unique<OpenAIBackend>(cfg); };
  }
  if (spec.kind == "prodlm") {
    return [path = spec.model]() -> std::unique_ptr<Backend> { return load_prodlm_backend(path); };
  }
  if (spec.kind == "auto") {
    DefaultBackendOptions d;
    d.manifest_path = opts.prodlm_manifest;
    d.local_factory = local_backend_factory(opts.local);
    return [d]() -> std::unique_ptr<Backend> { return load_default_backend("auto", d); };
  }
  throw InvalidArgument("backend spec '" + spec.text + "': unknown kind '" + spec.kind + "'");
}

std::unique_ptr<Backend> make_backend(const BackendSpec& spec, const BackendMakerOptions& opts) {
  return backend_maker(spec, opts)();
}

std::vector<std::string> parse_prompts(std::string_view text) {
  std::vector<std::string> prompts;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = end + 1;
    if (line.empty() || line.front() == '#') continue;
    std::string p;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size() && (line[i + 1] == 'n' || line[i + 1] == '\\')) {
        p += line[i + 1] == 'n' ? '\n' : '\\';
        ++i;
      } else {
        p += line[i];
      }
    }
    prompts.push_back(std::move(p));
  }
  return prompts;
}

std::vector<std::string> read_prompts_file(const std::string& path) {
  std::vector<std::string> prompts = parse_prompts(read_file(path));
  if (prompts.empty()) throw InvalidArgument("prompt file " + path + ": no prompts (one per line, '#' comments)");
  return prompts;
}

std::string default_prompts_path() {
  const std::filesystem::path p = std::filesystem::path(G2C_SOURCE_ROOT) / "bench" / "prompts" / "stories.txt";
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec) ? p.string() : std::string();
}

}  // namespace g2c::inference
