// `g2c info FILE [--json] [--system]`: architecture summary, metadata, tensor table, totals by type.
#include <fmt/core.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "commands.hpp"
#include "g2c/core/cpu.hpp"
#include "g2c/core/error.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/model/arch/arch.hpp"
#include "g2c/model/quantize.hpp"
#include "g2c/tokenizer/chat_template.hpp"

namespace g2c::app {
namespace {

struct InfoOptions {
  std::string file;
  bool json = false;
  bool system = false;
};

std::string human_bytes(std::uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", static_cast<double>(b) / (1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", static_cast<double>(b) / (1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.2f} KiB", static_cast<double>(b) / (1ull << 10));
  return fmt::format("{} B", b);
}

struct Summary {
  std::string arch;
  std::optional<std::int64_t> n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train, n_vocab, n_rot;
  std::optional<double> rope_freq_base;
  std::optional<std::string> rope_scaling;
  std::optional<std::string> tokenizer_model, name, file_type_label;
  std::string chat_template;  // the family tokenizer.chat_template is recognised as (chat_template.hpp)
};

// general.file_type is a llama_ftype, not a tensor type id (formats.md 5.4): "MOSTLY_Q4_K_M (15)".
std::string ftype_label(std::int64_t ft) {
  const model::FileTypeInfo* info = model::find_file_type(ft);
  return info == nullptr ? fmt::format("unknown ({})", ft) : fmt::format("{} ({})", info->label, ft);
}

Summary summarize(const gguf::File& f) {
  Summary s;
  s.arch = f.architecture();
  // Tolerant reads: a key of the wrong type shows as missing rather than failing the whole listing.
  auto geti = [&](const std::string& k) -> std::optional<std::int64_t> {
    try {
      return f.get_int(k);
    } catch (const Error&) {
      return std::nullopt;
    }
  };
  auto getf = [&](const std::string& k) -> std::optional<double> {
    try {
      return f.get_float(k);
    } catch (const Error&) {
      return std::nullopt;
    }
  };
  auto gets = [&](const std::string& k) -> std::optional<std::string> {
    try {
      return f.get_str(k);
    } catch (const Error&) {
      return std::nullopt;
    }
  };
  // Keys of any architecture (not only those g2c runs), named by the architecture table.
  using model::Key;
  auto key = [&](Key k) { return model::key_name(s.arch, k); };
  if (!s.arch.empty()) {
    s.n_embd = geti(key(Key::kEmbeddingLength));
    s.n_layer = geti(key(Key::kBlockCount));
    s.n_head = geti(key(Key::kHeadCount));
    s.n_head_kv = geti(key(Key::kHeadCountKv));
    if (!s.n_head_kv) s.n_head_kv = s.n_head;
    s.n_ff = geti(key(Key::kFeedForwardLength));
    s.n_ctx_train = geti(key(Key::kContextLength));
    s.n_rot = geti(key(Key::kRopeDimensionCount));
    s.rope_freq_base = getf(key(Key::kRopeFreqBase));
    s.rope_scaling = gets(key(Key::kRopeScalingType));
    s.n_vocab = geti(key(Key::kVocabSize));
  }
  if (const gguf::Value* toks = f.find("tokenizer.ggml.tokens"); toks && toks->is_array())
    s.n_vocab = static_cast<std::int64_t>(toks->size());
  s.tokenizer_model = gets("tokenizer.ggml.model");
  const std::string tmpl = gets("tokenizer.chat_template").value_or("");
  s.chat_template =
      tmpl.empty() ? "none (plain fallback)" : tokenizer::family_name(tokenizer::detect_chat_template(tmpl).family);
  s.name = gets("general.name");
  if (auto ft = geti("general.file_type")) s.file_type_label = ftype_label(*ft);
  return s;
}

template <typename T>
std::string dash(const std::optional<T>& v) {
  if (!v) return "–";
  return fmt::format("{}", *v);
}
template <typename T>
nlohmann::json jopt(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json value_json(const gguf::Value& v) {
  if (v.is_string()) return v.as_str();
  if (v.is_bool()) return v.as_bool();
  if (v.is_float()) return v.as_f64();
  if (v.is_integer())
    return v.type() == gguf::ValueType::UINT64 ? nlohmann::json(v.as_u64()) : nlohmann::json(v.as_i64());
  // arrays: shortened, like the text form
  nlohmann::json j;
  j["type"] = std::string("array[") + gguf::value_type_name(v.elem_type()) + "]";
  j["count"] = v.size();
  nlohmann::json head = nlohmann::json::array();
  for (std::size_t i = 0; i < v.size() && i < 8; ++i) {
    if (v.elem_type() == gguf::ValueType::STRING)
      head.push_back(v.strings()[i]);
    else
      head.push_back(v.float_at(i));
  }
  j["head"] = head;
  return j;
}

nlohmann::json system_json() {
  const auto& c = cpu_features();
  return {{"cpu", c.brand},
          {"features", c.to_string()},
          {"logical_cores", c.logical_cores},
          {"physical_cores", c.physical_cores}};
}

void print_system() {
  const auto& c = cpu_features();
  fmt::print("system:\n  cpu:            {}\n  cores:          {} physical, {} logical\n  features:       {}\n",
             c.brand.empty() ? "–" : c.brand, c.physical_cores, c.logical_cores, c.to_string());
}

void run_info(const InfoOptions& o) {
  if (o.file.empty()) {
    if (!o.system) throw InvalidArgument("g2c info: a FILE is required (or --system)");
    if (o.json)
      fmt::print("{}\n", nlohmann::json{{"system", system_json()}}.dump(2));
    else
      print_system();
    return;
  }
  auto f = gguf::File::open(resolve_model_path(o.file));
  Summary s = summarize(*f);

  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_type;  // name -> (count, bytes)
  std::uint64_t n_params = 0, n_bytes = 0;
  for (const auto& t : f->tensors()) {
    auto& e = by_type[type_name(t.type)];
    e.first += 1;
    e.second += t.n_bytes;
    n_params += static_cast<std::uint64_t>(t.n_elements());
    n_bytes += t.n_bytes;
  }

  if (o.json) {
    nlohmann::json j;
    j["file"] = f->path();
    j["version"] = f->version();
    j["alignment"] = f->alignment();
    j["data_offset"] = f->data_offset();
    j["file_size"] = f->file_size();
    j["summary"] = {{"architecture", s.arch.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.arch)},
                    {"name", jopt(s.name)},
                    {"file_type", jopt(s.file_type_label)},
                    {"n_embd", jopt(s.n_embd)},
                    {"n_layer", jopt(s.n_layer)},
                    {"n_head", jopt(s.n_head)},
                    {"n_head_kv", jopt(s.n_head_kv)},
                    {"n_ff", jopt(s.n_ff)},
                    {"n_ctx_train", jopt(s.n_ctx_train)},
                    {"n_vocab", jopt(s.n_vocab)},
                    {"n_rot", jopt(s.n_rot)},
                    {"rope_freq_base", jopt(s.rope_freq_base)},
                    {"rope_scaling", jopt(s.rope_scaling)},
                    {"tokenizer", jopt(s.tokenizer_model)},
                    {"chat_template", s.chat_template},
                    {"n_params", n_params},
                    {"n_tensor_bytes", n_bytes}};
    nlohmann::json md = nlohmann::json::object();
    for (const auto& kv : f->kvs()) md[kv.key] = value_json(kv.value);
    j["metadata"] = md;
    nlohmann::json ts = nlohmann::json::array();
    for (const auto& t : f->tensors()) {
      nlohmann::json ne = nlohmann::json::array();
      for (std::uint32_t d = 0; d < t.n_dims; ++d) ne.push_back(t.ne[d]);
      ts.push_back({{"name", t.name},
                    {"type", type_name(t.type)},
                    {"ne", ne},
                    {"bytes", t.n_bytes},
                    {"offset", f->data_offset() + t.offset}});
    }
    j["tensors"] = ts;
    nlohmann::json tt = nlohmann::json::object();
    for (const auto& [name, e] : by_type) tt[name] = {{"count", e.first}, {"bytes", e.second}};
    j["totals_by_type"] = tt;
    if (o.system) j["system"] = system_json();
    fmt::print("{}\n", j.dump(2));
    return;
  }

  fmt::print("file:           {}\n", f->path());
  fmt::print("format:         GGUF v{}, alignment {}, data at {}, {} ({} bytes)\n", f->version(), f->alignment(),
             f->data_offset(), human_bytes(f->file_size()), f->file_size());
  fmt::print("architecture:   {}\n", s.arch.empty() ? "–" : s.arch);
  fmt::print("name:           {}\n", dash(s.name));
  fmt::print("file type:      {}\n", dash(s.file_type_label));
  fmt::print("n_embd:         {}\n", dash(s.n_embd));
  fmt::print("n_layer:        {}\n", dash(s.n_layer));
  fmt::print("n_head:         {}\n", dash(s.n_head));
  fmt::print("n_head_kv:      {}\n", dash(s.n_head_kv));
  fmt::print("n_ff:           {}\n", dash(s.n_ff));
  fmt::print("n_ctx_train:    {}\n", dash(s.n_ctx_train));
  fmt::print("n_vocab:        {}\n", dash(s.n_vocab));
  fmt::print("rope:           n_rot {}, freq_base {}, scaling {}\n", dash(s.n_rot), dash(s.rope_freq_base),
             dash(s.rope_scaling));
  fmt::print("tokenizer:      {}\n", dash(s.tokenizer_model));
  fmt::print("chat template:  {}\n", s.chat_template);
  fmt::print("parameters:     {} ({} in tensors)\n", n_params, human_bytes(n_bytes));

  fmt::print("\nmetadata ({} keys):\n", f->kvs().size());
  for (const auto& kv : f->kvs()) {
    const char* tn = kv.value.is_array() ? "arr" : gguf::value_type_name(kv.value.type());
    fmt::print("  {:<44} {:<4} {}\n", kv.key, tn, kv.value.to_display(6));
  }

  fmt::print("\ntensors ({}):\n", f->tensors().size());
  fmt::print("  {:<40} {:<8} {:<22} {:>12} {:>12}\n", "name", "type", "shape", "bytes", "offset");
  for (const auto& t : f->tensors())
    fmt::print("  {:<40} {:<8} {:<22} {:>12} {:>12}\n", t.name, type_name(t.type), t.shape_string(), t.n_bytes,
               f->data_offset() + t.offset);

  fmt::print("\ntotals by type:\n");
  for (const auto& [name, e] : by_type)
    fmt::print("  {:<8} {:>5} tensors {:>14} bytes  ({:.1f}%)\n", name, e.first, e.second,
               n_bytes ? 100.0 * static_cast<double>(e.second) / static_cast<double>(n_bytes) : 0.0);
  if (o.system) {
    fmt::print("\n");
    print_system();
  }
}

}  // namespace

void register_info(CLI::App& app) {
  auto opts = std::make_shared<InfoOptions>();
  auto* cmd = app.add_subcommand("info", "Show a GGUF file's architecture, metadata and tensors");
  cmd->add_option("file", opts->file, "GGUF file (a path, or a name in $G2C_MODELS_DIR)");
  cmd->add_flag("--json", opts->json, "Print JSON");
  cmd->add_flag("--system", opts->system, "Also print the CPU features found");
  cmd->callback([opts] { run_info(*opts); });
}

}  // namespace g2c::app
