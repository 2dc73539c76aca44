// Model::load: GGUF (by magic) or llama2.c checkpoint; hyperparameters, then weight binding with
// shape and type validation. Every error carries "loading model <path>: ..." and names the key or
// tensor with expected vs actual.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "g2c/core/error.hpp"
#include "g2c/core/log.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/model/arch/arch.hpp"
#include "g2c/model/llama2c.hpp"
#include "g2c/model/model.hpp"
#include "g2c/model/weights.hpp"

#include <fmt/core.h>

namespace g2c::model {

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::kLlama: return "llama";
    case Arch::kQwen2: return "qwen2";
    case Arch::kGpt2: return "gpt2";
  }
  return "?";
}

std::string blk(std::int64_t il, const char* suffix) { return fmt::format("blk.{}.{}", il, suffix); }

// ---- keys ------------------------------------------------------------------------------------------

std::int64_t KeyReader::req_int(const std::string& key) const { return f_.require_int(full(key)); }
std::optional<std::int64_t> KeyReader::opt_int(const std::string& key) const { return f_.get_int(full(key)); }
float KeyReader::req_float(const std::string& key) const { return static_cast<float>(f_.require_float(full(key))); }
std::optional<float> KeyReader::opt_float(const std::string& key) const {
  auto v = f_.get_float(full(key));
  if (!v) return std::nullopt;
  return static_cast<float>(*v);
}
std::optional<std::string> KeyReader::opt_str(const std::string& key) const { return f_.get_str(full(key)); }

void read_common_hparams(const KeyReader& kr, HParams& hp) {
  hp.n_ctx_train = kr.req_int("context_length");
  hp.n_embd = kr.req_int("embedding_length");
  hp.n_layer = kr.req_int("block_count");
  hp.n_ff = kr.req_int("feed_forward_length");
  hp.n_head = kr.req_int("attention.head_count");
  hp.n_head_kv = kr.opt_int("attention.head_count_kv").value_or(hp.n_head);
  hp.head_dim = hp.n_head > 0 ? hp.n_embd / hp.n_head : 0;
  hp.head_dim = kr.opt_int("attention.key_length").value_or(hp.head_dim);
  if (auto vl = kr.opt_int("attention.value_length"); vl && *vl != hp.head_dim)
    throw UnsupportedError(
        fmt::format("{}.attention.value_length {} differs from key_length {}", kr.arch(), *vl, hp.head_dim));
  hp.n_rot = kr.opt_int("rope.dimension_count").value_or(hp.head_dim);
  hp.norm_rms_eps = kr.req_float("attention.layer_norm_rms_epsilon");
  hp.rope_freq_base = kr.opt_float("rope.freq_base").value_or(10000.0f);
  // llama.cpp: freq_scale = 1 / rope.scaling.factor (or the older rope.scale_linear) when set.
  const std::string scaling = kr.opt_str("rope.scaling.type").value_or("");
  if (scaling == "yarn" || scaling == "longrope")
    throw UnsupportedError(
        fmt::format("{}.rope.scaling.type '{}' is not supported (none, linear)", kr.arch(), scaling));
  float factor = kr.opt_float("rope.scaling.factor").value_or(0.0f);
  if (factor == 0.0f) factor = kr.opt_float("rope.scale_linear").value_or(0.0f);
  hp.rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
}

// ---- tensors ---------------------------------------------------------------------------------------

namespace {
std::string shape_of(std::int64_t a, std::int64_t b) { return fmt::format("[{}, {}]", a, b); }
}  // namespace

WeightTensor Binder::matrix(const std::string& name, std::int64_t n_in, std::int64_t n_out, bool required) {
  const gguf::TensorInfo* t = f_.find_tensor(name);
  if (!t) {
    if (required) throw FormatError(fmt::format("missing tensor '{}' (expected {})", name, shape_of(n_in, n_out)));
    return {};
  }
  if (t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != 1 || t->ne[3] != 1)
    throw ShapeError(fmt::format("tensor {}: expected {}, got {}", name, shape_of(n_in, n_out), t->shape_string()));
  const auto& tk = kernels::kernels().types[static_cast<std::size_t>(t->type)];
  if (!tk.supported())
    throw UnsupportedError(
        fmt::format("tensor {}: type {} is not supported (F32, F16, BF16, Q4_0, Q4_1, Q5_0, "
                    "Q5_1, Q8_0, Q2_K..Q6_K)",
                    name, type_name(t->type)));
  auto rb = row_bytes(t->type, static_cast<std::uint64_t>(n_in));
  if (!rb)
    throw ShapeError(fmt::format("tensor {}: row of {} elements is not a whole number of {} blocks ({})", name, n_in,
                                 type_name(t->type), type_traits(t->type).block_size));
  WeightTensor w;
  w.data = t->data;
  w.type = t->type;
  w.n_in = n_in;
  w.n_out = n_out;
  w.row_bytes = static_cast<std::size_t>(*rb);
  w.name = name;
  if (t->n_bytes < w.bytes())
    throw FormatError(fmt::format("tensor {}: {} bytes, expected {}", name, t->n_bytes, w.bytes()));
  ++n_bound_;
  return w;
}

WeightTensor Binder::vector(const std::string& name, std::int64_t n, bool required) {
  const gguf::TensorInfo* t = f_.find_tensor(name);
  if (!t) {
    if (required) throw FormatError(fmt::format("missing tensor '{}' (expected [{}])", name, n));
    return {};
  }
  if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
    throw ShapeError(fmt::format("tensor {}: expected [{}], got {}", name, n, t->shape_string()));
  if (t->type != GgmlType::F32)
    throw UnsupportedError(fmt::format("tensor {}: expected type F32, got {}", name, type_name(t->type)));
  if (reinterpret_cast<std::uintptr_t>(t->data) % alignof(float) != 0)
    throw FormatError(fmt::format("tensor {}: data not aligned to 4 bytes", name));
  WeightTensor w;
  w.data = t->data;
  w.type = GgmlType::F32;
  w.n_in = n;
  w.n_out = 1;
  w.row_bytes = static_cast<std::size_t>(n) * 4;
  w.name = name;
  ++n_bound_;
  return w;
}

// ---- Model -----------------------------------------------------------------------------------------

Model::Model() : w_(std::make_unique<Weights>()) {}
Model::~Model() = default;

namespace {

void validate_hparams(const HParams& hp) {
  auto bad = [&](const std::string& what) { throw FormatError("bad hyperparameters: " + what); };
  if (hp.n_vocab <= 0) bad(fmt::format("n_vocab {}", hp.n_vocab));
  if (hp.n_embd <= 0) bad(fmt::format("n_embd {}", hp.n_embd));
  if (hp.n_layer <= 0 || hp.n_layer > 4096) bad(fmt::format("n_layer {}", hp.n_layer));
  if (hp.n_ff <= 0) bad(fmt::format("n_ff {}", hp.n_ff));
  if (hp.n_head <= 0 || hp.n_head_kv <= 0) bad(fmt::format("n_head {} / n_head_kv {}", hp.n_head, hp.n_head_kv));
  if (hp.n_head % hp.n_head_kv != 0)
    bad(fmt::format("n_head {} is not a multiple of n_head_kv {}", hp.n_head, hp.n_head_kv));
  if (hp.head_dim <= 0) bad(fmt::format("head_dim {}", hp.head_dim));
  if (hp.n_ctx_train <= 0) bad(fmt::format("n_ctx_train {}", hp.n_ctx_train));
  if (hp.rope_type != RopeType::kNone && (hp.n_rot <= 0 || hp.n_rot % 2 != 0 || hp.n_rot > hp.head_dim))
    bad(fmt::format("rope dimension {} (head_dim {})", hp.n_rot, hp.head_dim));
  if (!(hp.rope_freq_base > 0.0f)) bad(fmt::format("rope.freq_base {}", hp.rope_freq_base));
}

std::int32_t token_id_or_none(const gguf::File& f, const char* key, std::int64_t n_vocab) {
  auto v = f.get_int(key);
  if (!v || *v < 0 || *v >= n_vocab) return -1;
  return static_cast<std::int32_t>(*v);
}

}  // namespace

// G2C_HUGEPAGES=1: copy the weights once, with pread, into anonymous memory the kernel backs with
// 2 MiB pages (THP via madvise), instead of using them in place from the file mapping. Decode streams
// every weight once per token, and with 4 KiB pages that is a TLB miss every 4 KiB: measured on
// tinyllama-1.1b Q4_0, 2 threads, tg +10-20%. But faulting in the huge pages (direct compaction) made
// the load 1.4 s against 3 ms in place and llama.cpp's 0.6 s, so it is off by default. The file
// mapping's data pages are never touched, so only one copy of the weights is ever resident.
template <class F>
void for_each_weight(Weights& w, F&& fn) {
  for (WeightTensor* t : {&w.tok_embd, &w.pos_embd, &w.output_norm, &w.output_norm_b, &w.output, &w.rope_freqs}) fn(*t);
  for (auto& L : w.layers)
    for (WeightTensor* t :
         {&L.attn_norm, &L.attn_norm_b, &L.wq, &L.wk, &L.wv, &L.bq, &L.bk, &L.bv, &L.wqkv, &L.bqkv, &L.wo, &L.bo,
          &L.ffn_norm, &L.ffn_norm_b, &L.ffn_gate, &L.ffn_up, &L.ffn_up_b, &L.ffn_down, &L.ffn_down_b})
      fn(*t);
}

void move_to_huge_pages_impl(Weights& w, std::shared_ptr<void>& keep, const std::string& path, const gguf::File& f) {
  const char* env = std::getenv("G2C_HUGEPAGES");
  if (!env || std::string(env) != "1") return;
  const std::uint8_t* lo = nullptr;
  const std::uint8_t* hi = nullptr;
  for_each_weight(w, [&](WeightTensor& t) {
    if (!t.data) return;
    const std::uint8_t* end = t.data + (t.n_in > 0 ? t.row_bytes * static_cast<std::size_t>(t.n_out) : 0);
    if (!lo || t.data < lo) lo = t.data;
    if (!hi || end > hi) hi = end;
  });
  if (!lo || hi - lo < (1 << 20)) return;  // tiny models: not worth it
  constexpr std::size_t kHuge = 2u << 20;
  const auto base = reinterpret_cast<std::uintptr_t>(lo) & ~(std::uintptr_t{4095});
  const std::size_t span = static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(hi) - base);
  const std::size_t size = (span + kHuge - 1) / kHuge * kHuge;
  void* mem = ::mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    log_warn("G2C_HUGEPAGES: cannot allocate {} MiB; weights stay in the file mapping", size >> 20);
    return;
  }
  // 2 MiB-align the copy inside the allocation so the kernel can use huge pages from the first byte.
  auto* aligned = reinterpret_cast<std::uint8_t*>((reinterpret_cast<std::uintptr_t>(mem) + kHuge - 1) & ~(kHuge - 1));
  const std::size_t total = size + kHuge;
  ::madvise(aligned, size, MADV_HUGEPAGE);
  // File offset of `base`: any tensor's pointer and its GGUF record relate mapping and file.
  const gguf::TensorInfo& t0 = f.tensors().front();
  const auto file_off =
      static_cast<std::int64_t>(f.data_offset() + t0.offset) +
      (static_cast<std::int64_t>(base) - static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(t0.data)));
  // pread straight into the huge pages: the file mapping's data pages are never touched, so only
  // one copy of the weights is ever resident in this process.
  bool ok = file_off >= 0;
  const int fd = ok ? ::open(path.c_str(), O_RDONLY | O_CLOEXEC) : -1;
  std::size_t done = 0;
  while (ok && fd >= 0 && done < span) {
    const ssize_t n = ::pread(fd, aligned + done, std::min<std::size_t>(span - done, 64u << 20),
                              file_off + static_cast<std::int64_t>(done));
    if (n <= 0)
      ok = false;
    else
      done += static_cast<std::size_t>(n);
  }
  if (fd >= 0) ::close(fd);
  if (!ok || fd < 0) {
    ::munmap(mem, total);
    log_warn("G2C_HUGEPAGES: cannot read {}; weights stay in the file mapping", path);
    return;
  }
  for_each_weight(w, [&](WeightTensor& t) {
    if (t.data) t.data = aligned + (reinterpret_cast<std::uintptr_t>(t.data) - base);
  });
  keep = std::shared_ptr<void>(mem, [total](void* p) { ::munmap(p, total); });
}

class ModelLoader {
 public:
  static std::unique_ptr<Model> load_gguf(const std::string& path) {
    std::unique_ptr<Model> m(new Model());
    m->path_ = path;
    m->gguf_ = gguf::File::open(path);
    const gguf::File& f = *m->gguf_;
    HParams& hp = m->hp_;
    hp.arch_name = f.architecture();
    if (hp.arch_name.empty()) throw FormatError("missing key 'general.architecture'");
    hp.name = f.get_str("general.name").value_or("");
    const gguf::TensorInfo* te = f.find_tensor("token_embd.weight");
    if (!te) throw FormatError("missing tensor 'token_embd.weight'");
    hp.n_vocab = te->ne[1];
    KeyReader kr(f, hp.arch_name);
    Binder b(f);
    using LoadFn = void (*)(const KeyReader&, HParams&);
    using BindFn = void (*)(Binder&, const HParams&, Weights&);
    LoadFn load_fn = nullptr;
    BindFn bind_fn = nullptr;
    if (hp.arch_name == "llama") {
      hp.arch = Arch::kLlama;
      load_fn = &llama_load_hparams;
      bind_fn = &llama_bind;
    } else if (hp.arch_name == "qwen2") {
      hp.arch = Arch::kQwen2;
      load_fn = &qwen2_load_hparams;
      bind_fn = &qwen2_bind;
    } else if (hp.arch_name == "gpt2") {
      hp.arch = Arch::kGpt2;
      load_fn = &gpt2_load_hparams;
      bind_fn = &gpt2_bind;
    } else {
      throw UnsupportedError("architecture '" + hp.arch_name + "' is not supported (llama, qwen2, gpt2)");
    }
    load_fn(kr, hp);
    validate_hparams(hp);
    if (auto tok = f.find("tokenizer.ggml.tokens");
        tok && tok->is_array() && static_cast<std::int64_t>(tok->size()) != hp.n_vocab)
      log_warn("{}: tokenizer has {} tokens, token_embd has {} rows", path, tok->size(), hp.n_vocab);
    hp.bos_id = token_id_or_none(f, "tokenizer.ggml.bos_token_id", hp.n_vocab);
    hp.eos_id = token_id_or_none(f, "tokenizer.ggml.eos_token_id", hp.n_vocab);
    bind_fn(b, hp, *m->w_);
    move_to_huge_pages_impl(*m->w_, m->weights_copy_, path, f);
    if (b.n_bound() != f.tensors().size())
      log_warn("{}: {} of {} tensors are not used by the {} architecture", path, f.tensors().size() - b.n_bound(),
               f.tensors().size(), hp.arch_name);
    return m;
  }

  static std::unique_ptr<Model> load_bin(const std::string& path, const ModelOptions& opts) {
    std::unique_ptr<Model> m(new Model());
    m->path_ = path;
    auto map = std::make_shared<MappedFile>(path);
    load_llama2c(*map, opts, m->hp_, *m->w_);
    m->hp_.name = std::filesystem::path(path).stem().string();
    validate_hparams(m->hp_);
    m->bin_map_ = std::move(map);
    return m;
  }
};

std::unique_ptr<Model> Model::load(const std::string& path, const ModelOptions& opts) {
  try {
    bool is_gguf = false;
    {
      MappedFile probe(path);
      is_gguf = probe.size() >= 4 && std::memcmp(probe.data(), "GGUF", 4) == 0;
    }
    auto m = is_gguf ? ModelLoader::load_gguf(path) : ModelLoader::load_bin(path, opts);
    log_info("loaded {}: {}", path, m->describe());
    return m;
  } catch (const Error&) {
    rethrow_with_context("loading model " + path);
  }
}

std::uint64_t Model::weight_bytes() const {
  const Weights& w = *w_;
  std::uint64_t n = w.tok_embd.bytes() + w.pos_embd.bytes() + w.output_norm.bytes() + w.output_norm_b.bytes() +
                    w.rope_freqs.bytes() + (w.tied_output ? 0 : w.output.bytes());
  for (const LayerWeights& l : w.layers) {
    for (const WeightTensor* t :
         {&l.attn_norm, &l.attn_norm_b, &l.wq, &l.wk, &l.wv, &l.bq, &l.bk, &l.bv, &l.wqkv, &l.bqkv, &l.wo, &l.bo,
          &l.ffn_norm, &l.ffn_norm_b, &l.ffn_gate, &l.ffn_up, &l.ffn_up_b, &l.ffn_down, &l.ffn_down_b})
      n += t->bytes();
  }
  return n;
}

std::string Model::describe() const {
  const HParams& h = hp_;
  const Weights& w = *w_;
  const WeightTensor& probe = w.layers.empty() ? w.tok_embd : (w.layers[0].wq ? w.layers[0].wq : w.layers[0].wqkv);
  return fmt::format("{} {}L n_embd {} heads {}/{} head_dim {} n_ff {} vocab {} ctx_train {} {}{}", h.arch_name,
                     h.n_layer, h.n_embd, h.n_head, h.n_head_kv, h.head_dim, h.n_ff, h.n_vocab, h.n_ctx_train,
                     type_name(probe.type), w.tied_output ? " tied-output" : "");
}

}  // namespace g2c::model
