#include "g2c/inference/ollama_store.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "g2c/core/error.hpp"
#include "g2c/core/mmap.hpp"

namespace g2c::inference {
namespace fs = std::filesystem;
namespace {

enum class Part { kHost, kNamespace, kModel, kTag };

bool valid_part(std::string_view s, Part part) {
  const std::size_t max_len = part == Part::kHost ? 350 : 80;
  if (s.empty() || s.size() > max_len) return false;
  const auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(s[0]) && s[0] != '_') return false;
  for (char c : s.substr(1)) {
    if (alnum(c) || c == '_' || c == '-') continue;
    if (c == '.' && part != Part::kNamespace) continue;
    if (c == ':' && part == Part::kHost) continue;
    return false;
  }
  return true;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

}  // namespace

std::string OllamaName::manifest_relpath() const { return host + "/" + ns + "/" + model + "/" + tag; }

std::string OllamaName::display() const {
  std::string out;
  if (host != "registry.ollama.ai")
    out = host + "/" + ns + "/";
  else if (ns != "library")
    out = ns + "/";
  return out + model + ":" + tag;
}

std::optional<OllamaName> parse_ollama_name(std::string_view s) {
  if (auto p = s.find("://"); p != std::string_view::npos) s.remove_prefix(p + 3);
  OllamaName n;
  const std::size_t colon = s.rfind(':');
  const std::size_t slash = s.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    n.tag = std::string(s.substr(colon + 1));
    s = s.substr(0, colon);
  }
  std::size_t i = s.rfind('/');
  n.model = std::string(i == std::string_view::npos ? s : s.substr(i + 1));
  if (i != std::string_view::npos) {
    s = s.substr(0, i);
    i = s.rfind('/');
    n.ns = std::string(i == std::string_view::npos ? s : s.substr(i + 1));
    if (i != std::string_view::npos) n.host = std::string(s.substr(0, i));
  }
  if (!valid_part(n.host, Part::kHost) || !valid_part(n.ns, Part::kNamespace) || !valid_part(n.model, Part::kModel) ||
      !valid_part(n.tag, Part::kTag)) {
    return std::nullopt;
  }
  return n;
}

std::vector<std::string> default_ollama_roots() {
  std::vector<std::string> roots;
  if (const char* env = std::getenv("OLLAMA_MODELS"); env != nullptr && *env != '\0') roots.emplace_back(env);
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    roots.push_back((fs::path(home) / ".ollama" / "models").string());
  }
  roots.emplace_back("/usr/share/ollama/.ollama/models");
  std::vector<std::string> unique;
  for (const std::string& r : roots) {
    if (std::find(unique.begin(), unique.end(), r) == unique.end()) unique.push_back(r);
  }
  return unique;
}

OllamaModelRef read_ollama_manifest(const std::string& root, const std::string& manifest_path, const OllamaName& name) {
  const std::string where = "Ollama manifest " + manifest_path;
  nlohmann::json j = nlohmann::json::parse(read_file(manifest_path), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw FormatError(where + ": not a JSON object");
  if (!j.contains("layers") || !j["layers"].is_array()) throw FormatError(where + ": expected a \"layers\" array");

  OllamaModelRef ref;
  ref.name = name;
  ref.root = root;
  ref.manifest_path = manifest_path;
  const auto blob_of = [&](const nlohmann::json& layer) -> std::string {
    if (!layer.contains("digest") || !layer["digest"].is_string()) throw FormatError(where + ": a layer has no digest");
    const std::string digest = layer["digest"].get<std::string>();
    // "sha256:<hex>" in JSON; the blob file uses '-' (very old stores used ':' in the file name too).
    if (digest.size() != 71 || digest.compare(0, 6, "sha256") != 0 || (digest[6] != ':' && digest[6] != '-') ||
        !is_hex64(std::string_view(digest).substr(7))) {
      throw FormatError(where + ": bad digest '" + digest + "' (expected sha256:<64 hex>)");
    }
    const std::string hex = digest.substr(7);
    for (const std::string& file : {"sha256-" + hex, "sha256:" + hex}) {
      fs::path p = fs::path(root) / "blobs" / file;
      std::error_code ec;
      if (fs::is_regular_file(p, ec)) return p.string();
    }
    throw IoError(where + ": blob " + (fs::path(root) / "blobs" / ("sha256-" + hex)).string() +
                  " is missing (re-run `ollama pull " + name.display() + "`)");
  };

  for (const nlohmann::json& layer : j["layers"]) {
    if (!layer.is_object() || !layer.contains("mediaType") || !layer["mediaType"].is_string()) continue;
    const std::string type = layer["mediaType"].get<std::string>();
    if (type == "application/vnd.ollama.image.model") {
      if (!ref.blob_path.empty()) continue;  // one per model; a second would be unusual, keep the first
      ref.blob_path = blob_of(layer);
      ref.digest = "sha256:" + layer["digest"].get<std::string>().substr(7);
    } else if (type == "application/vnd.ollama.image.template" || type == "application/vnd.ollama.image.prompt") {
      try {
        ref.template_text = read_file(blob_of(layer));
      } catch (const Error&) {
        // Informational only: a missing template blob does not stop the model from running.
      }
    } else if (type == "application/vnd.ollama.image.params") {
      try {
        nlohmann::json p = nlohmann::json::parse(read_file(blob_of(layer)), nullptr, false);
        if (p.is_object()) ref.params = std::move(p);
      } catch (const Error&) {
      }
    }
  }
  if (ref.blob_path.empty()) {
    throw FormatError(where + ": no layer of mediaType application/vnd.ollama.image.model (not a GGUF model)");
  }
  return ref;
}

std::optional<OllamaModelRef> find_ollama_model(std::string_view typed, const std::vector<std::string>& roots,
                                                std::vector<std::string>* looked) {
  const std::optional<OllamaName> name = parse_ollama_name(typed);
  if (!name) return std::nullopt;
  const std::string rel = name->manifest_relpath();
  for (const std::string& root : roots) {
    const fs::path manifests = fs::path(root) / "manifests";
    const fs::path exact = manifests / rel;
    if (looked) looked->push_back(exact.string());
    std::error_code ec;
    if (fs::is_regular_file(exact, ec)) return read_ollama_manifest(root, exact.string(), *name);
    if (!fs::is_directory(manifests, ec)) continue;
    // Case-insensitive scan of the four levels host/namespace/model/tag.
    const std::string want = lower(rel);
    for (auto it = fs::recursive_directory_iterator(manifests, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it.depth() > 3) {
        it.disable_recursion_pending();
        continue;
      }
      if (it.depth() != 3 || !it->is_regular_file(ec)) continue;
      const std::string found = fs::relative(it->path(), manifests, ec).generic_string();
      if (!ec && lower(found) == want) return read_ollama_manifest(root, it->path().string(), *name);
    }
  }
  return std::nullopt;
}

}  // namespace g2c::inference
