// `g2c prodlm set SPEC [--quantization Q] [--ctx N] [--notes T]`, `g2c prodlm show`, `g2c prodlm check`:
// the course's ProdLM manifest (inference/prodlm.hpp) written, printed and checked from the shell (the
// seed's prodlm.sh / setup.sh steps). SPEC is ollama:MODEL[@URL] or openai:MODEL[@URL]. The manifest is
// --manifest PATH, else $G2C_PRODLM_MANIFEST, else ~/.config/g2c/prodlm.json. `check` prints one line per
// check (with the fix when it fails) and exits 1 when any fails.
#include <fmt/core.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/inference/bench_backends.hpp"
#include "g2c/inference/prodlm.hpp"

namespace g2c::app {
namespace {

struct ProdLMOptions {
  std::string manifest;
  std::string spec;
  std::string quantization;
  std::optional<std::int64_t> ctx;
  std::string notes;
  std::string api_key_env;
  double timeout_s = 120.0;
  double check_timeout_s = 5.0;
};

std::string manifest_path(const ProdLMOptions& o) {
  return o.manifest.empty() ? inference::default_prodlm_manifest_path() : o.manifest;
}

void run_set(const ProdLMOptions& o) {
  using namespace g2c::inference;
  const BackendSpec spec = parse_backend_spec(o.spec);
  if (spec.kind != "ollama" && spec.kind != "openai") {
    throw InvalidArgument("prodlm set: '" + o.spec +
                          "' is not a served backend; ProdLM is ollama:MODEL[@URL] or openai:MODEL[@URL]");
  }
  if (o.ctx && *o.ctx <= 0) throw InvalidArgument("prodlm set: --ctx must be positive, got " + std::to_string(*o.ctx));
  ProdLMManifest m;
  m.backend = spec.kind;
  m.model_id = spec.model;
  m.base_url = spec.url;
  m.quantization = o.quantization;
  m.context_length = o.ctx;
  m.notes = o.notes;
  m.api_key_env = o.api_key_env;
  m.timeout_s = o.timeout_s;
  const std::string path = manifest_path(o);
  write_prodlm_manifest(path, m);
  std::fputs(fmt::format("wrote {}\n{}\n", path, m.to_json().dump(2)).c_str(), stdout);
}

void run_show(const ProdLMOptions& o) {
  const std::string path = manifest_path(o);
  const inference::ProdLMManifest m = inference::load_prodlm_manifest(path);
  std::fputs(fmt::format("{}\n{}\n", path, m.to_json().dump(2)).c_str(), stdout);
}

void run_check(const ProdLMOptions& o) {
  using namespace g2c::inference;
  const std::string path = manifest_path(o);
  ProdLMManifest m;
  try {
    m = load_prodlm_manifest(path);
  } catch (const Error& e) {
    std::fputs(
        fmt::format("FAIL manifest: {} | fix: g2c prodlm set ollama:llama3.2:3b (or openai:MODEL@URL)\n", e.what())
            .c_str(),
        stdout);
    g_exit_code = 1;
    return;
  }
  std::fputs(fmt::format("ok   manifest: {} ({} {}{})\n", path, m.backend, m.model_id,
                         m.base_url.empty() ? "" : " at " + m.base_url)
                 .c_str(),
             stdout);
  bool all_ok = true;
  for (const ProdLMCheck& c : check_prodlm(m, nullptr, o.check_timeout_s)) {
    const char* tag = c.ok ? "ok  " : c.skipped ? "SKIP" : "FAIL";
    std::string line = fmt::format("{} {}: {}", tag, c.name, c.detail);
    if (!c.fix.empty()) line += " | fix: " + c.fix;
    std::fputs((line + "\n").c_str(), stdout);
    all_ok = all_ok && c.ok;
  }
  std::fflush(stdout);
  if (!all_ok) g_exit_code = 1;
}

}  // namespace

void register_prodlm(CLI::App& app) {
  auto o = std::make_shared<ProdLMOptions>();
  auto* cmd = app.add_subcommand("prodlm", "Write, print and check the ProdLM manifest (the course's served model)");
  cmd->require_subcommand(1);
  const std::string manifest_help = "Manifest path (default: $G2C_PRODLM_MANIFEST, else ~/.config/g2c/prodlm.json)";

  auto* set = cmd->add_subcommand("set", "Write the manifest (atomically) for a served backend");
  set->add_option("spec", o->spec, "ollama:MODEL[@URL] or openai:MODEL[@URL]")->required();
  set->add_option("--quantization", o->quantization, "The served model's quantization (Q4_K_M, ...), for the record");
  set->add_option("--ctx", o->ctx, "The served model's context length, for the record");
  set->add_option("--notes", o->notes, "Free text");
  set->add_option("--api-key-env", o->api_key_env, "openai: the variable holding the API key");
  set->add_option("--timeout", o->timeout_s, "HTTP timeout of every request, seconds")->capture_default_str();
  set->add_option("--manifest", o->manifest, manifest_help);
  set->callback([o] { run_set(*o); });

  auto* show = cmd->add_subcommand("show", "Print the manifest");
  show->add_option("--manifest", o->manifest, manifest_help);
  show->callback([o] { run_show(*o); });

  auto* check = cmd->add_subcommand("check", "Check the manifest: server reachable, model present, one token answers");
  check->add_option("--manifest", o->manifest, manifest_help);
  check->add_option("--timeout", o->check_timeout_s, "Seconds to wait for each check")->capture_default_str();
  check->callback([o] { run_check(*o); });
}

}  // namespace g2c::app
