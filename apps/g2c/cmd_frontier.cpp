// `g2c frontier --model BASE.gguf --types F16,Q8_0,...,Q2_K --text T [--ctx N] [--threads N] [--out PREFIX]
// [--show-text PROMPT] [--keep]`: the quantization cost-quality frontier of one model on this machine.
//
// For each type: `g2c quantize`'s library (model::quantize_model) writes the file into a temporary
// directory; its quality is measured exactly as `g2c perplexity --kl-divergence` measures it (the base
// model's log-probabilities over the text are written once in llama-perplexity's base-file format, each
// quantized file is compared against them: PPL, mean KLD, same-top-token rate), and its speed and memory
// by `g2c bench` (the bench library, engine::speed_bench) run as a child process of this binary, so each
// type's peak RSS is its own and not the largest seen so far. A type whose recipe cannot apply to the model
// (Q4_0/Q8_0 on rows that are not a multiple of 32, a K-quant fallback g2c cannot encode) is a row saying
// why. Prints a table, writes PREFIX.json and PREFIX.svg (mean KLD against tg tok/s and against file size).
#include <fcntl.h>
#include <fmt/core.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "g2c/core/cpu.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/engine/generate.hpp"
#include "g2c/engine/open_model.hpp"
#include "g2c/model/model.hpp"
#include "g2c/model/perplexity.hpp"
#include "g2c/model/quantize.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

extern char** environ;

namespace g2c::app {
namespace {

namespace fs = std::filesystem;

struct FrontierOptions {
  std::string model;
  std::vector<std::string> types{"F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K"};
  std::string text;
  int n_ctx = 128;
  int threads = 0;
  std::string out = "frontier";
  std::string show_text;
  int show_tokens = 32;
  int pp = 128;
  int tg = 32;
  int reps = 3;
  std::string kv = "f16";
  bool keep = false;
  bool no_bench = false;
};

struct Row {
  std::string type;  // "base" for the model itself
  std::string file;
  bool ok = false;
  std::string reason;  // why the type could not apply
  std::uint64_t file_bytes = 0;
  double ppl = 0, ppl_ratio = 0, mean_kld = 0, same_top = 0;
  std::optional<double> pp_ts, tg_ts, peak_rss_mib;
  std::string continuation;
};

// `g2c bench` on `file` in a child process of this same binary; its JSON rows on a pipe.
nlohmann::json bench_child(const FrontierOptions& o, const std::string& file) {
  std::vector<std::string> args = {"/proc/self/exe",
                                   "bench",
                                   "-m",
                                   file,
                                   "-p",
                                   std::to_string(o.pp),
                                   "-n",
                                   std::to_string(o.tg),
                                   "-r",
                                   std::to_string(o.reps),
                                   "-t",
                                   std::to_string(o.threads),
                                   "-o",
                                   "json",
                                   "--kv",
                                   o.kv};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (::pipe(fds) != 0) throw IoError("frontier: pipe() failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw IoError("frontier: cannot start g2c bench for " + file);
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw Error("frontier: g2c bench failed on " + file);
  return nlohmann::json::parse(out);
}

std::string greedy_text(const FrontierOptions& o, const engine::OpenedModel& m) {
  const tokenizer::Tokenizer& tok = *m.tokenizer;
  const std::vector<std::int32_t> prompt = tok.encode(o.show_text, /*add_special=*/true, /*parse_special=*/false);
  model::ContextOptions co;
  co.n_ctx = static_cast<std::int32_t>(prompt.size()) + o.show_tokens + 1;
  co.threads = o.threads;
  co.kv_type = o.kv == "f16" ? model::KvType::kF16 : model::KvType::kF32;
  model::Context ctx(*m.model, co);
  engine::GenerateParams gp;
  gp.max_tokens = o.show_tokens;
  gp.sampling.temperature = 0;
  return engine::generate(ctx, tok, prompt, gp, {}).text;
}

// 1, 2 or 5 times a power of ten, about `n` steps over [0, hi].
double nice_step(double hi, int n) {
  if (hi <= 0) return 1;
  const double raw = hi / n, p = std::pow(10.0, std::floor(std::log10(raw))), f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

std::string xml_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '&')
      r += "&amp;";
    else if (c == '<')
      r += "&lt;";
    else if (c == '>')
      r += "&gt;";
    else if (c == '"')
      r += "&quot;";
    else
      r += c;
  }
  return r;
}

std::string tick_label(double v, double step) {
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  return fmt::format("{:.{}f}", v, decimals);
}

// One panel: mean KLD (y) against `x` for every measured row, at (ox, oy) of size w x h (plot area).
std::string svg_panel(const std::vector<Row>& rows, const std::vector<double>& xs, const std::string& x_label,
                      const std::string& title, double ox, double oy, double w, double h) {
  double xmax = 0, ymax = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    xmax = std::max(xmax, xs[i]);
    ymax = std::max(ymax, rows[i].mean_kld);
  }
  const double xstep = nice_step(xmax * 1.1, 5), ystep = nice_step(ymax * 1.1, 5);
  const double xhi = xstep * std::ceil(xmax * 1.1 / xstep), yhi = ystep * std::ceil(ymax * 1.1 / ystep);
  auto px = [&](double v) { return ox + w * v / xhi; };
  auto py = [&](double v) { return oy + h - h * v / yhi; };
  std::string s = fmt::format(
      "<g class=\"panel\">\n<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"14\" text-anchor=\"middle\">{}</text>\n",
      ox + w / 2, oy - 12, xml_escape(title));
  s += fmt::format(
      "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#000\"/>\n", ox, oy, w,
      h);
  for (double v = 0; v <= xhi + xstep / 2; v += xstep) {
    s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#000\"/>\n", px(v),
                     oy + h, oy + h + 5);
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\n", px(v),
                     oy + h + 18, tick_label(v, xstep));
  }
  for (double v = 0; v <= yhi + ystep / 2; v += ystep) {
    s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#000\"/>\n", ox - 5, py(v),
                     ox, py(v));
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"end\">{}</text>\n", ox - 8,
                     py(v) + 4, tick_label(v, ystep));
  }
  s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\" text-anchor=\"middle\">{}</text>\n", ox + w / 2,
                   oy + h + 38, xml_escape(x_label));
  s += fmt::format(
      "<text x=\"{0:.1f}\" y=\"{1:.1f}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 {0:.1f} "
      "{1:.1f})\">mean KLD vs base (nats)</text>\n",
      ox - 52, oy + h / 2);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    // Labels alternate above and below their points, so neighbours with equal quality stay readable.
    const double dy = i % 2 == 0 ? -6 : 15;
    s += fmt::format(
        "<circle class=\"point\" data-type=\"{0}\" cx=\"{1:.1f}\" cy=\"{2:.1f}\" r=\"4\" fill=\"#1f77b4\"/>\n"
        "<text x=\"{3:.1f}\" y=\"{4:.1f}\" font-size=\"11\">{0}</text>\n",
        xml_escape(rows[i].type), px(xs[i]), py(rows[i].mean_kld), px(xs[i]) + 6, py(rows[i].mean_kld) + dy);
  }
  return s + "</g>\n";
}

std::string frontier_svg(const std::vector<Row>& all, const std::string& model_name) {
  std::vector<Row> rows;
  std::vector<double> speed, size;
  for (const Row& r : all) {
    if (!r.ok) continue;
    rows.push_back(r);
    speed.push_back(r.tg_ts.value_or(0));
    size.push_back(static_cast<double>(r.file_bytes) / (1 << 20));
  }
  std::string s =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"420\" viewBox=\"0 0 960 420\" "
      "font-family=\"sans-serif\">\n<rect width=\"960\" height=\"420\" fill=\"#fff\"/>\n";
  s +=
      fmt::format("<text x=\"480\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">Quantization frontier: {}</text>\n",
                  xml_escape(model_name));
  s += svg_panel(rows, speed, "generation speed, tg tok/s", "quality against speed", 90, 60, 360, 290);
  s += svg_panel(rows, size, "file size, MiB", "quality against size", 570, 60, 360, 290);
  return s + "</svg>\n";
}

void run_frontier(const FrontierOptions& o) {
  if (o.text.empty()) throw InvalidArgument("--text FILE is required (the text quality is measured on)");
  if (o.n_ctx < 4) throw InvalidArgument(fmt::format("--ctx {}: need at least 4", o.n_ctx));
  if (o.kv != "f16" && o.kv != "f32") throw InvalidArgument("--kv-type must be f16 or f32, got '" + o.kv + "'");
  std::vector<model::FileType> fts;
  for (const std::string& t : o.types) {
    const auto ft = model::file_type_from_name(t);
    if (!ft) {
      std::string names;
      for (const auto& n : model::file_type_names()) names += (names.empty() ? "" : ", ") + n;
      throw InvalidArgument(fmt::format("--types: unknown type '{}' (expected one of {})", t, names));
    }
    fts.push_back(*ft);
  }
  const std::string base_path = resolve_model_path(o.model);
  std::string text = read_file(o.text);
  if (!text.empty() && text.back() == '\n') text.pop_back();

  char tmpl[] = "/tmp/g2c-frontier-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw IoError("frontier: cannot create a temporary directory");
  const fs::path dir = tmpl;
  struct Cleanup {
    fs::path dir;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove_all(dir, ec);
    }
  } cleanup{dir, o.keep};

  const model::KvType kv = o.kv == "f16" ? model::KvType::kF16 : model::KvType::kF32;
  auto context_for = [&](const engine::OpenedModel& m, int n_ctx) {
    model::ContextOptions co;
    co.n_ctx = n_ctx;
    co.n_batch = n_ctx;
    co.threads = o.threads;
    co.kv_type = kv;
    return std::make_unique<model::Context>(*m.model, co);
  };

  std::vector<Row> rows;
  const std::string base_kld = (dir / "base.kld").string();
  {
    Row r;
    r.type = "base";
    r.file = base_path;
    r.ok = true;
    r.file_bytes = fs::file_size(base_path);
    const engine::OpenedModel m = engine::open_model(base_path);
    const tokenizer::Tokenizer& tok = *m.tokenizer;
    const std::vector<std::int32_t> tokens = tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
    const bool add_bos = tok.add_bos() && tok.bos_id() >= 0;
    auto ctx = context_for(m, o.n_ctx);
    std::ofstream base(base_kld, std::ios::binary | std::ios::trunc);
    if (!base) throw IoError("cannot write " + base_kld);
    fmt::print(stderr, "frontier: base {} over {} tokens of {}\n", base_path, tokens.size(), o.text);
    const model::PerplexityResult p =
        model::perplexity(*ctx, tokens, o.n_ctx, add_bos ? tok.bos_id() : -1, -1, {}, &base);
    base.close();
    if (!base) throw IoError("writing " + base_kld + " failed");
    r.ppl = p.ppl;
    r.ppl_ratio = 1.0;
    r.same_top = 1.0;
    if (!o.show_text.empty()) r.continuation = greedy_text(o, m);
    rows.push_back(r);
  }
  const double base_ppl = rows[0].ppl;

  for (std::size_t i = 0; i < fts.size(); ++i) {
    Row r;
    r.type = model::file_type_name(fts[i]);
    r.file = (dir / (r.type + ".gguf")).string();
    fmt::print(stderr, "frontier: {} ..\n", r.type);
    try {
      model::QuantizeOptions qo;
      qo.ftype = fts[i];
      qo.threads = o.threads;
      model::quantize_model(base_path, r.file, qo);
    } catch (const Error& e) {
      r.reason = e.what();
      r.file.clear();
      fmt::print(stderr, "frontier: {} does not apply: {}\n", r.type, r.reason);
      rows.push_back(r);
      continue;
    }
    r.ok = true;
    r.file_bytes = fs::file_size(r.file);
    const engine::OpenedModel m = engine::open_model(r.file);
    auto ctx = context_for(m, o.n_ctx);
    std::ifstream in(base_kld, std::ios::binary);
    const tokenizer::Tokenizer& tok = *m.tokenizer;
    const bool add_bos = tok.add_bos() && tok.bos_id() >= 0;
    const model::KldResult k = model::kl_divergence(*ctx, in, base_kld, add_bos ? tok.bos_id() : -1);
    const double n = static_cast<double>(k.count);
    r.ppl = std::exp(k.sum_nll / n);
    r.ppl_ratio = std::exp(k.sum_nll / n - k.sum_nll_base / n);
    r.mean_kld = k.sum_kld / n;
    r.same_top = static_cast<double>(k.n_same_top) / n;
    if (!o.show_text.empty()) r.continuation = greedy_text(o, m);
    rows.push_back(r);
  }

  if (!o.no_bench) {
    for (Row& r : rows) {
      if (!r.ok) continue;
      fmt::print(stderr, "frontier: bench {} ..\n", r.type);
      const nlohmann::json b = bench_child(o, r.file);
      for (const auto& row : b) {
        if (row.at("n_prompt").get<int>() > 0) r.pp_ts = row.at("avg_ts").get<double>();
        if (row.at("n_gen").get<int>() > 0) r.tg_ts = row.at("avg_ts").get<double>();
        r.peak_rss_mib = row.at("peak_rss_mib").get<double>();
      }
    }
  }

  // The table.
  auto opt = [](const std::optional<double>& v, int prec) {
    return v ? fmt::format("{:.{}f}", *v, prec) : std::string("–");
  };
  fmt::print(
      "| type | file MiB | PPL | PPL ratio | mean KLD | same top % | pp{} t/s | tg{} t/s | peak RSS MiB | note |\n",
      o.pp, o.tg);
  fmt::print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
  for (const Row& r : rows) {
    if (!r.ok) {
      fmt::print("| {} | – | – | – | – | – | – | – | – | not applicable: {} |\n", r.type, r.reason);
      continue;
    }
    fmt::print("| {} | {:.3f} | {:.4f} | {:.4f} | {:.6f} | {:.2f} | {} | {} | {} | |\n", r.type,
               static_cast<double>(r.file_bytes) / (1 << 20), r.ppl, r.ppl_ratio, r.mean_kld, 100.0 * r.same_top,
               opt(r.pp_ts, 1), opt(r.tg_ts, 1), opt(r.peak_rss_mib, 1));
  }
  if (!o.show_text.empty()) {
    fmt::print("\nGreedy continuations of \"{}\" ({} tokens):\n", o.show_text, o.show_tokens);
    for (const Row& r : rows)
      if (r.ok) fmt::print("  {:<7} {}\n", r.type, r.continuation);
  }

  nlohmann::json j;
  j["model"] = base_path;
  j["text"] = o.text;
  j["n_ctx"] = o.n_ctx;
  j["kv_type"] = o.kv;
  j["threads"] = o.threads;
  j["bench"] = {{"n_prompt", o.pp}, {"n_gen", o.tg}, {"reps", o.reps}, {"run", !o.no_bench}};
  j["cpu"] = cpu_features().brand;
  j["work_dir"] = o.keep ? dir.string() : std::string();
  j["base_kld_file"] = o.keep ? base_kld : std::string();
  if (!o.show_text.empty()) j["show_text"] = o.show_text;
  nlohmann::json arr = nlohmann::json::array();
  auto jopt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  for (const Row& r : rows) {
    nlohmann::json e = {{"type", r.type}, {"ok", r.ok}};
    if (!r.ok) {
      e["reason"] = r.reason;
    } else {
      e["file"] = (o.keep || r.type == "base") ? r.file : std::string();
      e["file_bytes"] = r.file_bytes;
      e["ppl"] = r.ppl;
      e["ppl_ratio"] = r.ppl_ratio;
      e["mean_kld"] = r.mean_kld;
      e["same_top"] = r.same_top;
      e["pp_ts"] = jopt(r.pp_ts);
      e["tg_ts"] = jopt(r.tg_ts);
      e["peak_rss_mib"] = jopt(r.peak_rss_mib);
      if (!o.show_text.empty()) e["continuation"] = r.continuation;
    }
    arr.push_back(e);
  }
  j["rows"] = arr;
  j["base_ppl"] = base_ppl;
  {
    std::ofstream f(o.out + ".json");
    f << j.dump(2) << "\n";
    if (!f) throw IoError("cannot write " + o.out + ".json");
  }
  {
    std::ofstream f(o.out + ".svg");
    f << frontier_svg(rows, fs::path(base_path).filename().string());
    if (!f) throw IoError("cannot write " + o.out + ".svg");
  }
  fmt::print(stderr, "frontier: wrote {}.json and {}.svg{}\n", o.out, o.out,
             o.keep ? " (files kept in " + dir.string() + ")" : "");
}

}  // namespace

void register_frontier(CLI::App& app) {
  auto o = std::make_shared<FrontierOptions>();
  auto* cmd = app.add_subcommand(
      "frontier", "Quantize a model to several types and measure each: size, PPL, KLD vs the base, speed, memory");
  cmd->add_option("-m,--model", o->model, "Base model (GGUF; a path, or a name in $G2C_MODELS_DIR)")->required();
  cmd->add_option("--types", o->types, "Quantization recipes, comma-separated")->delimiter(',')->capture_default_str();
  cmd->add_option("--text", o->text, "Text file the quality is measured on")->required();
  cmd->add_option("-c,--ctx", o->n_ctx, "Chunk length in tokens (as g2c perplexity -c)")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Threads (0: physical cores)")->capture_default_str();
  cmd->add_option("--out", o->out, "Writes PREFIX.json and PREFIX.svg")->capture_default_str();
  cmd->add_option("--show-text", o->show_text, "Also show each type's greedy continuation of this prompt");
  cmd->add_option("--show-tokens", o->show_tokens, "Tokens of --show-text continuation")->capture_default_str();
  cmd->add_option("-p,--n-prompt", o->pp, "Bench prompt size (pp)")->capture_default_str();
  cmd->add_option("-n,--n-gen", o->tg, "Bench generation length (tg)")->capture_default_str();
  cmd->add_option("-r,--repetitions", o->reps, "Bench repetitions")->capture_default_str();
  cmd->add_option("--kv-type", o->kv, "KV cache type: f16 or f32")->capture_default_str();
  cmd->add_flag("--keep", o->keep, "Keep the quantized files and the base log-probability file");
  cmd->add_flag("--no-bench", o->no_bench, "Skip the speed and memory measurements");
  cmd->callback([o] { run_frontier(*o); });
}

}  // namespace g2c::app
