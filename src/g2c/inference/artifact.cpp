#include "g2c/inference/artifact.hpp"

#include <cstdlib>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

#include "g2c/engine/open_model.hpp"
#include "g2c/inference/ollama_store.hpp"

#ifndef G2C_SOURCE_ROOT
#define G2C_SOURCE_ROOT "."
#endif

namespace g2c::inference {
namespace fs = std::filesystem;
namespace {

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// Stages in the seed's order of preference: the most post-trained first.
constexpr const char* kStages[] = {"-DPO", "-SFT", ""};
constexpr const char* kExtensions[] = {".gguf", ".bin", ""};

std::vector<std::string> split_colon(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = s.find(':', start);
    std::string part = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!part.empty()) out.push_back(std::move(part));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace

std::vector<std::string> default_artifact_dirs() {
  if (const char* env = std::getenv("G2C_ARTIFACTS_DIR"); env != nullptr && *env != '\0') return split_colon(env);
  if (const char* env = std::getenv("G2C_MODELS_DIR"); env != nullptr && *env != '\0') return {env};
  const fs::path p = fs::path(G2C_SOURCE_ROOT) / ".." / "shared" / "models";
  std::error_code ec;
  if (fs::is_directory(p, ec)) return {fs::weakly_canonical(p, ec).string()};
  return {};
}

std::optional<ArtifactLocation> resolve_artifact(const std::string& name_or_path, const ArtifactOptions& opts,
                                                 std::vector<std::string>* looked) {
  const std::string name = name_or_path.empty() ? std::string(kDefaultArtifactName) : name_or_path;
  std::vector<std::string> tried;

  // 1. A path.
  if (is_file(name)) {
    ArtifactLocation loc;
    loc.model_path = name;
    loc.source = "path";
    loc.model_id = fs::path(name).filename().string();
    loc.tokenizer_path = opts.tokenizer_path;
    return loc;
  }
  tried.push_back(name + " (as a path)");

  // 2. A name in the artifact folders, stage first, then folder, then extension.
  const std::vector<std::string> dirs = opts.search_dirs ? *opts.search_dirs : default_artifact_dirs();
  std::string stem = name, given_ext;
  for (const char* ext : {".gguf", ".bin"}) {
    if (name.size() > std::string(ext).size() && name.ends_with(ext)) {
      given_ext = ext;
      stem = name.substr(0, name.size() - given_ext.size());
    }
  }
  for (const char* stage : kStages) {
    for (const std::string& dir : dirs) {
      for (const char* ext : kExtensions) {
        if (!given_ext.empty() && given_ext != ext) continue;
        const fs::path p = fs::path(dir) / (stem + stage + ext);
        if (!is_file(p)) continue;
        ArtifactLocation loc;
        loc.model_path = p.string();
        loc.source = "artifacts_dir";
        loc.model_id = p.filename().string();
        loc.tokenizer_path = opts.tokenizer_path;
        loc.details = {{"folder", dir}, {"stage", *stage ? stage + 1 : "base"}, {"name", name}};
        return loc;
      }
    }
  }
  const std::string exts = given_ext.empty() ? "{.gguf,.bin,}" : given_ext;
  if (dirs.empty()) {
    tried.push_back("no artifact folder ($G2C_ARTIFACTS_DIR and $G2C_MODELS_DIR unset, no ../shared/models)");
  }
  for (const std::string& dir : dirs) {
    tried.push_back((fs::path(dir) / fmt::format("{{{0}-DPO,{0}-SFT,{0}}}{1}", stem, exts)).string());
  }

  // 3. An Ollama name in Ollama's local store.
  const std::vector<std::string> roots = opts.ollama_roots ? *opts.ollama_roots : default_ollama_roots();
  std::vector<std::string> manifests;
  std::optional<OllamaModelRef> ref = find_ollama_model(name, roots, &manifests);
  for (const std::string& m : manifests) tried.push_back("Ollama manifest " + m);
  if (!parse_ollama_name(name)) tried.push_back("Ollama store (not an Ollama model name)");
  if (ref) {
    ArtifactLocation loc;
    loc.model_path = ref->blob_path;
    loc.source = "ollama";
    loc.model_id = ref->name.display();
    loc.details = {{"ollama_name", ref->name.display()},
                   {"ollama_root", ref->root},
                   {"manifest", ref->manifest_path},
                   {"digest", ref->digest}};
    if (!ref->params.empty()) loc.details["ollama_params"] = ref->params;
    return loc;
  }
  if (looked) looked->insert(looked->end(), tried.begin(), tried.end());
  return std::nullopt;
}

struct ArtifactBackend::Loaded {
  ArtifactLocation location;
  std::shared_ptr<const model::Model> model;
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer;
};

ArtifactBackend::Loaded ArtifactBackend::load(const ArtifactLocation& location) {
  try {
    engine::OpenedModel opened = engine::open_model(location.model_path, location.tokenizer_path);
    ArtifactBackend::Loaded l{location, std::move(opened.model), std::move(opened.tokenizer)};
    if (!opened.tokenizer_path.empty()) l.location.tokenizer_path = opened.tokenizer_path;
    return l;
  } catch (...) {
    rethrow_with_context("loading artifact '" + location.model_id + "' (" + location.model_path + ")");
  }
}

namespace {

nlohmann::json location_extra(const ArtifactLocation& loc) {
  nlohmann::json e = {{"source", loc.source}, {"path", loc.model_path}};
  if (!loc.tokenizer_path.empty()) e["tokenizer_path"] = loc.tokenizer_path;
  for (auto it = loc.details.begin(); it != loc.details.end(); ++it) e[it.key()] = it.value();
  return e;
}

model::ContextOptions context_options(const ArtifactOptions& opts) {
  model::ContextOptions co;
  co.threads = opts.threads;
  co.kv_type = opts.kv_type;
  co.n_ctx = opts.n_ctx;
  co.naive = opts.naive;
  return co;
}

}  // namespace

ArtifactBackend::ArtifactBackend(const ArtifactLocation& location, const ArtifactOptions& opts)
    : ArtifactBackend(load(location), opts) {}

ArtifactBackend::ArtifactBackend(Loaded l, const ArtifactOptions& opts)
    : LocalTransformerBackend(l.model, l.tokenizer, l.location.model_id, opts.eos_id, opts.name,
                              location_extra(l.location), context_options(opts)),
      location_(std::move(l.location)) {}

std::unique_ptr<ArtifactBackend> open_artifact_backend(const std::string& name_or_path, const ArtifactOptions& opts,
                                                       bool required) {
  std::vector<std::string> looked;
  std::optional<ArtifactLocation> loc = resolve_artifact(name_or_path, opts, &looked);
  if (!loc) {
    if (!required) return nullptr;
    const std::string name = name_or_path.empty() ? std::string(kDefaultArtifactName) : name_or_path;
    std::string msg = fmt::format("artifact '{}' not found; looked at: {}", name, fmt::join(looked, "; "));
    throw ArtifactNotFound(msg, std::move(looked));
  }
  return std::make_unique<ArtifactBackend>(*loc, opts);
}

std::unique_ptr<ArtifactBackend> load_artifact_backend(const std::string& name_or_path, int threads,
                                                       model::KvType kv_type, bool required) {
  ArtifactOptions opts;
  opts.threads = threads;
  opts.kv_type = kv_type;
  return open_artifact_backend(name_or_path, opts, required);
}

LocalBackendFactory local_backend_factory(ArtifactOptions opts) {
  return [opts = std::move(opts)](const std::string& name_or_path) -> std::unique_ptr<Backend> {
    return open_artifact_backend(name_or_path, opts, /*required=*/true);
  };
}

}  // namespace g2c::inference
