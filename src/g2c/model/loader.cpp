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
#include <optional>
#include <string>

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

namespace {

// Reads `<arch>.<key>` with llama.cpp's get_key(name, required) behaviour; errors name key and file.
class KeyReader {
 public:
  KeyReader(const gguf::File& f, std::string arch) : f_(f), arch_(std::move(arch)) {}
  std::int64_t req_int(Key k) const { return f_.require_int(key_name(arch_, k)); }
  std::optional<std::int64_t> opt_int(Key k) const { return f_.get_int(key_name(arch_, k)); }
  float req_float(Key k) const { return static_cast<float>(f_.require_float(key_name(arch_, k))); }
  std::optional<float> opt_float(Key k) const {
    auto v = f_.get_float(key_name(arch_, k));
    if (!v) return std::nullopt;
    return static_cast<float>(*v);
  }
  std::optional<std::string> opt_str(Key k) const { return f_.get_str(key_name(arch_, k)); }
  const std::string& arch() const { return arch_; }

 private:
  const gguf::File& f_;
  std::string arch_;
};

// Hyperparameters of any architecture in the table: the sizes, then the keys its norm and rope types
// need (n_vocab is already set from token_embd).
void read_hparams(const KeyReader& kr, const ArchSpec& spec, HParams& hp) {
  hp.arch = spec.arch;
  hp.norm_type = spec.norm;
  hp.rope_type = spec.rope;
  hp.ffn_type = spec.ffn;
  hp.n_ctx_train = kr.req_int(Key::kContextLength);
  hp.n_embd = kr.req_int(Key::kEmbeddingLength);
  hp.n_layer = kr.req_int(Key::kBlockCount);
  hp.n_ff = kr.req_int(Key::kFeedForwardLength);
  hp.n_head = kr.req_int(Key::kHeadCount);
  hp.n_head_kv = kr.opt_int(Key::kHeadCountKv).value_or(hp.n_head);
  hp.head_dim = hp.n_head > 0 ? hp.n_embd / hp.n_head : 0;
  hp.head_dim = kr.opt_int(Key::kKeyLength).value_or(hp.head_dim);
  // The KV cache and attention kernels use one head size for K and V.
  if (auto vl = kr.opt_int(Key::kValueLength); vl && *vl != hp.head_dim)
    throw UnsupportedError(
        fmt::format("{} {} differs from key_length {}", key_name(kr.arch(), Key::kValueLength), *vl, hp.head_dim));
  if (spec.norm == NormType::kRms)
    hp.norm_rms_eps = kr.req_float(Key::kLayerNormRmsEps);
  else
    hp.norm_eps = kr.req_float(Key::kLayerNormEps);
  if (spec.rope == RopeType::kNone) {
    hp.n_rot = 0;
    return;
  }
  hp.n_rot = kr.opt_int(Key::kRopeDimensionCount).value_or(hp.head_dim);
  hp.rope_freq_base = kr.opt_float(Key::kRopeFreqBase).value_or(10000.0f);
  // llama.cpp: freq_scale = 1 / rope.scaling.factor (or the older rope.scale_linear) when set.
  const std::string scaling = kr.opt_str(Key::kRopeScalingType).value_or("");
  if (scaling == "yarn" || scaling == "longrope")
    throw UnsupportedError(
        fmt::format("{} '{}' is not supported (none, linear)", key_name(kr.arch(), Key::kRopeScalingType), scaling));
  float factor = kr.opt_float(Key::kRopeScalingFactor).value_or(0.0f);
  if (factor == 0.0f) factor = kr.opt_float(Key::kRopeScaleLinear).value_or(0.0f);
  hp.rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
}

std::string shape_of(std::int64_t a, std::int64_t b) { return fmt::format("[{}, {}]", a, b); }

// A matrix with GGUF ne = [n_in, n_out] in any type the kernel table computes; {} when absent and optional.
WeightTensor bind_matrix(const gguf::File& f, const std::string& name, std::int64_t n_in, std::int64_t n_out,
                         bool required) {
  const gguf::TensorInfo* t = f.find_tensor(name);
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
  return w;
}

// A 1-D F32 vector of n elements; {} when absent and optional.
WeightTensor bind_vector(const gguf::File& f, const std::string& name, std::int64_t n, bool required) {
  const gguf::TensorInfo* t = f.find_tensor(name);
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
  return w;
}

// Binds every tensor the architecture's row names, in file order, validating shape and type. Returns
// how many were bound, so the loader can warn about tensors the architecture does not use.
std::size_t bind_weights(const gguf::File& f, const ArchSpec& spec, const HParams& hp, Weights& w) {
  std::size_t n_bound = 0;
  w.layers.resize(static_cast<std::size_t>(hp.n_layer));
  for (const TensorSpec& ts : tensor_specs()) {
    const Has has = spec.has(ts.id);
    if (has == Has::kNo) continue;
    const std::int64_t n_in = dim_size(ts.n_in, hp);
    for (std::int64_t il = ts.per_layer ? 0 : -1; il < (ts.per_layer ? hp.n_layer : 0); ++il) {
      const std::string name = tensor_name(ts.id, il);
      WeightTensor t = ts.is_vector() ? bind_vector(f, name, n_in, has == Has::kRequired)
                                      : bind_matrix(f, name, n_in, dim_size(ts.n_out, hp), has == Has::kRequired);
      n_bound += t ? 1 : 0;
      ts.in(w, il) = std::move(t);
    }
  }
  if (!w.output) {  // optional output.weight: tied to the token embedding
    w.output = w.tok_embd;
    w.tied_output = true;
  }
  return n_bound;
}

// Calls fn(WeightTensor&) on every tensor slot of w, bound or not (the table lists them all).
template <class Fn>
void for_each_weight(Weights& w, Fn&& fn) {
  for (const TensorSpec& ts : tensor_specs()) {
    if (!ts.per_layer) {
      fn(ts.in(w, -1));
      continue;
    }
    for (std::size_t il = 0; il < w.layers.size(); ++il) fn(ts.in(w, static_cast<std::int64_t>(il)));
  }
}

}  // namespace

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
    const ArchSpec* spec = find_arch(hp.arch_name);
    if (!spec)
      throw UnsupportedError(
          fmt::format("architecture '{}' is not supported ({})", hp.arch_name, supported_arch_names()));
    read_hparams(KeyReader(f, hp.arch_name), *spec, hp);
    validate_hparams(hp);
    if (auto tok = f.find("tokenizer.ggml.tokens");
        tok && tok->is_array() && static_cast<std::int64_t>(tok->size()) != hp.n_vocab)
      log_warn("{}: tokenizer has {} tokens, token_embd has {} rows", path, tok->size(), hp.n_vocab);
    hp.bos_id = token_id_or_none(f, "tokenizer.ggml.bos_token_id", hp.n_vocab);
    hp.eos_id = token_id_or_none(f, "tokenizer.ggml.eos_token_id", hp.n_vocab);
    const std::size_t n_bound = bind_weights(f, *spec, hp, *m->w_);
    move_to_huge_pages_impl(*m->w_, m->weights_copy_, path, f);
    if (n_bound != f.tensors().size())
      log_warn("{}: {} of {} tensors are not used by the {} architecture", path, f.tensors().size() - n_bound,
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
  std::uint64_t n = 0;
  for_each_weight(*w_, [&](const WeightTensor& t) { n += t.bytes(); });
  return w_->tied_output ? n - w_->output.bytes() : n;  // a tied output is token_embd, read once
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
