// `g2c eval --backend SPEC --task FILE [--type KIND] [--limit N] [--out PREFIX]`: a task scored through
// any backend (inference/eval.hpp): accuracy with n and a 95% Wilson interval (or perplexity), the
// latency of the calls; a progress line on stderr while it runs; --out writes PREFIX.jsonl (one record
// per item) and PREFIX.json (the summary).
#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "backend_args.hpp"
#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/inference/eval.hpp"

namespace g2c::app {
namespace {

struct EvalOptionsCli {
  BackendArgs backend;
  std::string task;
  std::string type = "auto";
  std::int64_t limit = -1;
  std::string out;
  std::size_t chunk_chars = 800;
  bool json = false;
  bool quiet = false;
  std::string kv_type = "f16";
};

void run_eval(const EvalOptionsCli& o) {
  using namespace g2c::inference;
  const std::optional<TaskKind> kind = o.type == "auto" ? std::nullopt : std::optional(parse_task_kind(o.type));
  const EvalTask task = load_task(o.task, kind, o.chunk_chars);
  BackendSpec spec = parse_backend_spec(o.backend.backend);
  BackendMakerOptions mo;
  mo.local.threads = o.backend.threads;
  mo.local.n_ctx = o.backend.n_ctx;
  if (o.kv_type == "f16") {
    mo.local.kv_type = model::KvType::kF16;
  } else if (o.kv_type != "f32") {
    throw InvalidArgument("--kv-type: expected f32 or f16, got '" + o.kv_type + "'");
  }
  mo.timeout_s = o.backend.timeout_s;
  std::unique_ptr<Backend> b = make_backend(spec, mo);

  std::ofstream items;
  if (!o.out.empty()) {
    items.open(o.out + ".jsonl");
    if (!items) throw IoError("cannot write " + o.out + ".jsonl");
  }
  EvalOptions eo;
  if (o.limit >= 0) eo.limit = static_cast<std::size_t>(o.limit);
  const bool tty = isatty(fileno(stderr)) != 0;
  std::size_t last_tenth = 0;
  eo.on_progress = [&](const EvalProgress& p) {
    if (o.quiet) return;
    const std::string acc =
        task.kind == TaskKind::kPerplexity
            ? std::string()
            : fmt::format(" acc {:.1f}%", 100.0 * static_cast<double>(p.correct) /
                                              static_cast<double>(std::max<std::size_t>(p.done, 1)));
    const std::string line = fmt::format("[eval] {}/{}{} | {:.1f} ms/call", p.done, p.total, acc, p.mean_latency_ms);
    if (tty) {
      std::fputs(("\r" + line + (p.done == p.total ? "\n" : "")).c_str(), stderr);
    } else if (const std::size_t tenth = p.done * 10 / std::max<std::size_t>(p.total, 1); tenth != last_tenth) {
      last_tenth = tenth;
      std::fputs((line + "\n").c_str(), stderr);
    }
  };
  if (items.is_open()) eo.on_item = [&](const nlohmann::json& j) { items << j.dump() << "\n"; };

  const EvalReport r = evaluate(*b, task, eo);
  const nlohmann::json summary = to_json(r);
  if (!o.out.empty()) {
    std::ofstream s(o.out + ".json");
    if (!s) throw IoError("cannot write " + o.out + ".json");
    s << summary.dump(2) << "\n";
  }
  if (o.json) {
    std::fputs((summary.dump(2) + "\n").c_str(), stdout);
  } else {
    std::fputs(format_report(r).c_str(), stdout);
  }
}

}  // namespace

void register_eval(CLI::App& app) {
  auto o = std::make_shared<EvalOptionsCli>();
  auto* cmd = app.add_subcommand(
      "eval",
      "Score a task file through any backend: generation, multiple choice (llama.cpp HellaSwag rule), perplexity");
  cmd->add_option("-b,--backend", o->backend.backend, std::string("Backend spec: ") + inference::kBackendSpecHelp)
      ->capture_default_str();
  cmd->add_option("--task", o->task, "Task file (.jsonl generation/choice, HellaSwag 6-line text, or plain text)")
      ->required();
  cmd->add_option("--type", o->type, "Task type: auto, generation, choice, hellaswag, perplexity")
      ->capture_default_str();
  cmd->add_option("--limit", o->limit, "Items at most (-1: all; hellaswag: tasks drawn as --hellaswag-tasks)")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "Write PREFIX.jsonl (per item) and PREFIX.json (summary)");
  cmd->add_option("--chunk-chars", o->chunk_chars, "Perplexity: characters per scored chunk (whole lines)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", o->backend.threads, "Threads of a local backend (0: physical cores)")
      ->capture_default_str();
  cmd->add_option("-c,--ctx", o->backend.n_ctx, "Context size of a local backend (0: the model's, at most 4096)")
      ->capture_default_str();
  cmd->add_option("--timeout", o->backend.timeout_s, "HTTP timeout in seconds")->capture_default_str();
  cmd->add_option("--kv-type", o->kv_type,
                  "KV cache type of a local backend: f16 (llama.cpp's default, so scores match it) or f32")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print the summary as JSON");
  cmd->add_flag("-q,--quiet", o->quiet, "No progress line");
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace g2c::app
