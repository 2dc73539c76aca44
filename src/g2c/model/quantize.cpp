#include "g2c/model/quantize.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <unordered_map>

#include "g2c/core/error.hpp"
#include "g2c/core/thread_pool.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/model/arch/arch.hpp"
#include "g2c/quant/quant.hpp"

namespace g2c::model {

namespace {

// llama.h's enum llama_ftype (c392e50), with the base ggml type of each recipe g2c produces. Values
// llama.h dropped (4-6, 33-35) are absent, as they are from llama.cpp's own name table.
constexpr FileTypeInfo kFileTypes[] = {
    {0, "ALL_F32", "F32", GgmlType::F32},
    {1, "MOSTLY_F16", "F16", GgmlType::F16},
    {32, "MOSTLY_BF16", "BF16", GgmlType::BF16},
    {7, "MOSTLY_Q8_0", "Q8_0", GgmlType::Q8_0},
    {2, "MOSTLY_Q4_0", "Q4_0", GgmlType::Q4_0},
    {3, "MOSTLY_Q4_1", "Q4_1", GgmlType::Q4_1},
    {8, "MOSTLY_Q5_0", "Q5_0", GgmlType::Q5_0},
    {9, "MOSTLY_Q5_1", "Q5_1", GgmlType::Q5_1},
    {10, "MOSTLY_Q2_K", "Q2_K", GgmlType::Q2_K},
    {11, "MOSTLY_Q3_K_S", "Q3_K_S", GgmlType::Q3_K},
    {12, "MOSTLY_Q3_K_M", "Q3_K_M", GgmlType::Q3_K},
    {13, "MOSTLY_Q3_K_L", "Q3_K_L", GgmlType::Q3_K},
    {14, "MOSTLY_Q4_K_S", "Q4_K_S", GgmlType::Q4_K},
    {15, "MOSTLY_Q4_K_M", "Q4_K_M", GgmlType::Q4_K},
    {16, "MOSTLY_Q5_K_S", "Q5_K_S", GgmlType::Q5_K},
    {17, "MOSTLY_Q5_K_M", "Q5_K_M", GgmlType::Q5_K},
    {18, "MOSTLY_Q6_K", "Q6_K", GgmlType::Q6_K},
    // Recognized only: g2c has no recipe for these (and no encoder for the IQ and TQ types).
    {19, "MOSTLY_IQ2_XXS", "IQ2_XXS", std::nullopt},
    {20, "MOSTLY_IQ2_XS", "IQ2_XS", std::nullopt},
    {21, "MOSTLY_Q2_K_S", "Q2_K_S", std::nullopt},
    {22, "MOSTLY_IQ3_XS", "IQ3_XS", std::nullopt},
    {23, "MOSTLY_IQ3_XXS", "IQ3_XXS", std::nullopt},
    {24, "MOSTLY_IQ1_S", "IQ1_S", std::nullopt},
    {25, "MOSTLY_IQ4_NL", "IQ4_NL", std::nullopt},
    {26, "MOSTLY_IQ3_S", "IQ3_S", std::nullopt},
    {27, "MOSTLY_IQ3_M", "IQ3_M", std::nullopt},
    {28, "MOSTLY_IQ2_S", "IQ2_S", std::nullopt},
    {29, "MOSTLY_IQ2_M", "IQ2_M", std::nullopt},
    {30, "MOSTLY_IQ4_XS", "IQ4_XS", std::nullopt},
    {31, "MOSTLY_IQ1_M", "IQ1_M", std::nullopt},
    {36, "MOSTLY_TQ1_0", "TQ1_0", std::nullopt},
    {37, "MOSTLY_TQ2_0", "TQ2_0", std::nullopt},
    {1024, "GUESSED", "GUESSED", std::nullopt},  // llama.cpp's marker for a type it inferred, not a recipe
};

const FileTypeInfo& entry(FileType ft) {
  const FileTypeInfo* e = find_file_type(static_cast<std::int64_t>(ft));
  G2C_CHECK(e != nullptr && e->base && "a FileType value missing from kFileTypes");
  return *e;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

bool is_float_type(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

std::int64_t block_of(GgmlType t) { return type_traits(t).block_size; }

// "blk.12.attn_v.weight" -> 12; -1 for tensors outside the layers (sscanf "blk.%d." in llama.cpp).
int layer_of(const std::string& name) {
  int il = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &il) != 1) return -1;
  return il;
}

// ggml_n_dims: trailing dimensions of 1 do not count ([768, 1] is 1-D for llama-quantize).
int effective_dims(const TensorDesc& t) {
  int n = 1;
  for (int i = 1; i < 4; ++i)
    if (t.ne[i] > 1) n = i + 1;
  return n;
}

std::string shape_str(const TensorDesc& t) {
  std::string s = "[";
  for (std::uint32_t i = 0; i < std::max<std::uint32_t>(t.n_dims, 1); ++i)
    s += (i ? ", " : "") + std::to_string(t.ne[i]);
  return s + "]";
}

}  // namespace

std::span<const FileTypeInfo> file_type_table() { return kFileTypes; }

const FileTypeInfo* find_file_type(std::int64_t id) {
  for (const auto& e : kFileTypes)
    if (e.id == id) return &e;
  return nullptr;
}

std::optional<FileType> file_type_from_name(std::string_view name) {
  for (const auto& e : kFileTypes)
    if (e.base && iequals(name, e.recipe)) return static_cast<FileType>(e.id);
  // llama-quantize's aliases: the bare K-quant names are the _M recipes.
  if (iequals(name, "Q3_K")) return FileType::MOSTLY_Q3_K_M;
  if (iequals(name, "Q4_K")) return FileType::MOSTLY_Q4_K_M;
  if (iequals(name, "Q5_K")) return FileType::MOSTLY_Q5_K_M;
  return std::nullopt;
}

const char* file_type_name(FileType t) { return entry(t).recipe; }

std::vector<std::string> file_type_names() {
  std::vector<std::string> v;
  for (const auto& e : kFileTypes)
    if (e.base) v.emplace_back(e.recipe);
  return v;
}

GgmlType file_type_base(FileType t) { return *entry(t).base; }

MixInfo MixInfo::from_gguf(const gguf::File& f) {
  MixInfo m;
  m.arch = f.architecture();
  auto get = [&](const std::string& key) -> std::int64_t {
    const gguf::Value* v = f.find(key);
    if (!v) return 0;
    if (v->is_array()) return v->size() ? v->int_at(0) : 0;  // per-layer arrays: layer 0, as n_gqa(0)
    return v->as_i64();
  };
  m.n_layer = get(key_name(m.arch, Key::kBlockCount));
  m.n_head = get(key_name(m.arch, Key::kHeadCount));
  m.n_head_kv = get(key_name(m.arch, Key::kHeadCountKv));
  if (m.n_head_kv == 0 && !f.has(key_name(m.arch, Key::kHeadCountKv))) m.n_head_kv = m.n_head;
  m.n_expert = get(key_name(m.arch, Key::kExpertCount));
  return m;
}

bool is_quantizable(const TensorDesc& t) {
  const std::string& n = t.name;
  if (n.size() < 6 || n.compare(n.size() - 6, 6, "weight") != 0) return false;
  if (effective_dims(t) < 2) return false;
  static const char* const kNever[] = {
      "_norm.weight",         // norms stay F32
      "ffn_gate_inp.weight",  // MoE router
      "ssm_conv1d.weight",    // Mamba
      "time_mix_first.weight",
      "time_mix_w1.weight",
      "time_mix_w2.weight",
      "time_mix_decay_w1.weight",
      "time_mix_decay_w2.weight",
      "time_mix_lerp_fused.weight",  // RWKV
      "attn_rel_b.weight",           // T5 relative position bias
  };
  for (const char* s : kNever)
    if (contains(n, s)) return false;
  return n != tensor_name(Tensor::kPosEmbd) && n != "token_types.weight";
}

std::vector<std::size_t> llama_tensor_order(std::span<const TensorDesc> tensors) {
  std::vector<std::size_t> idx(tensors.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    const int la = layer_of(tensors[a].name), lb = layer_of(tensors[b].name);
    if (la != lb) return la < lb;
    return tensors[a].name < tensors[b].name;
  });
  return idx;
}

// The mixture rules of llama.cpp c392e50 (src/llama-quant.cpp, llama_tensor_get_type), restated for the
// recipes g2c produces. They apply only when the recipe's base type is a quantized type and --pure is
// not given; otherwise every quantizable tensor gets the base type.
//
// Tensors are visited in llama_tensor_order. Counters: i_v counts attn_v (or fused attn_qkv) tensors
// seen so far out of n_v in the model; i_down counts ffn_down tensors out of n_layer (for MoE models,
// n_expert > 1, the layer index is read from the name instead). more_bits(i, n) is true for the first
// n/8 and the last n/8 of the layers and for every third layer in between: i < n/8 || i >= 7n/8 ||
// (i - n/8) % 3 == 2. gqa = n_head / n_head_kv.
//
// 1. The output projection (output.weight; token_embd.weight when the model has no output.weight,
//    i.e. tied embeddings): Q8_0 for falcon or when ne[0] is not a multiple of the base type's block;
//    else Q6_K unless the base is Q8_0. So even a Q4_0 file keeps its output matrix in Q6_K.
// 2. attn_v: Q2_K -> Q4_K if gqa >= 4 else Q3_K; Q3_K_M -> Q5_K for the first two, Q4_K after;
//    Q3_K_L -> Q5_K; Q4_K_M and Q5_K_M -> Q6_K where more_bits(i_v, n_v); Q4_K_S -> Q5_K for the
//    first four. Then a 70B-class model (80 layers, GQA) lifts Q3_K/Q4_K to Q5_K, and an 8-expert
//    model takes Q8_0.
// 3. attn_k: Q8_0 in an 8-expert model.
// 4. ffn_down (layer il of n): Q2_K -> Q3_K; Q3_K_M -> Q5_K if il < n/16, else Q4_K (falcon: Q4_K only
//    where more_bits, Q3_K elsewhere); Q3_K_L -> Q5_K (falcon Q4_K); Q4_K_M -> Q6_K where more_bits
//    (falcon: Q6_K below n/16, Q5_K where more_bits); Q5_K_M -> Q6_K where more_bits; Q4_K_S -> Q5_K
//    for il < n/8 (not falcon).
// 5. attn_output (not falcon): Q2_K -> Q3_K, Q3_K_M -> Q4_K, Q3_K_L -> Q5_K; in an 8-expert model
//    Q5_K for Q2_K, Q3_K_S, Q3_K_M, Q4_K_S, Q4_K_M. Falcon: Q3_K_L -> Q4_K.
// 6. attn_qkv (fused): Q3_K_M, Q3_K_L -> Q4_K; Q4_K_M -> Q5_K; Q5_K_M -> Q6_K.
// Everything else (attn_q, ffn_gate, ffn_up, token_embd with a separate output) keeps the base type.
// Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 recipes are touched only by rule 1.
//
// Fallback: when the chosen type is a K-quant and ne[0] is not a multiple of 256, llama.cpp swaps
// Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0 (Q2_K/Q3_K -> IQ4_NL, which g2c cannot encode: refused),
// and F16 if even 32 does not divide ne[0].
std::vector<TensorChoice> choose_tensor_types(std::span<const TensorDesc> tensors, const MixInfo& info, FileType ft,
                                              bool pure) {
  // Names from the architecture table; the patterns of architectures g2c does not run (attn_kv_b, MoE
  // experts) stay as llama.cpp spells them.
  const std::string kTokEmbd = tensor_name(Tensor::kTokEmbd), kOutput = tensor_name(Tensor::kOutput);
  const char *kAttnQ = tensor_suffix(Tensor::kAttnQ), *kAttnK = tensor_suffix(Tensor::kAttnK),
             *kAttnV = tensor_suffix(Tensor::kAttnV), *kAttnQkv = tensor_suffix(Tensor::kAttnQkv),
             *kAttnOut = tensor_suffix(Tensor::kAttnOut);
  const GgmlType base = file_type_base(ft);
  const bool mix = !pure && !is_float_type(base);
  const bool falcon = info.arch == "falcon";
  const std::int64_t gqa = info.n_head_kv > 0 ? info.n_head / info.n_head_kv : 0;
  const bool is_70b = info.n_layer == 80 && !(info.arch == "llama" && info.n_head == info.n_head_kv);

  int n_v = 0;
  bool has_output = false;
  int max_layer = -1;
  for (const auto& t : tensors) {
    if (contains(t.name, kAttnV) || contains(t.name, kAttnQkv) || contains(t.name, "attn_kv_b.weight"))
      ++n_v;
    else if (t.name == kOutput)
      has_output = true;
    max_layer = std::max(max_layer, layer_of(t.name));
  }
  const int n_layer = info.n_layer > 0 ? static_cast<int>(info.n_layer) : max_layer + 1;
  int i_v = 0, i_down = 0;

  auto more_bits = [](int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; };
  auto layer_index = [&](int counter, const std::string& name) {
    if (info.n_expert <= 1) return counter;
    const int il = layer_of(name);
    if (il < 0 || il >= n_layer)
      throw FormatError(fmt::format("tensor {}: cannot tell its layer (n_layer {})", name, n_layer));
    return il;
  };

  auto mixture = [&](const TensorDesc& t, GgmlType type) -> GgmlType {
    const std::string& name = t.name;
    using FT = FileType;
    if (name == kOutput || (!has_output && name == kTokEmbd)) {
      if (falcon || t.ne[0] % block_of(type) != 0) return GgmlType::Q8_0;
      return type != GgmlType::Q8_0 ? GgmlType::Q6_K : type;
    }
    if (name == kTokEmbd) return type;
    if (contains(name, kAttnV)) {
      if (ft == FT::MOSTLY_Q2_K)
        type = gqa >= 4 ? GgmlType::Q4_K : GgmlType::Q3_K;
      else if (ft == FT::MOSTLY_Q3_K_M)
        type = i_v < 2 ? GgmlType::Q5_K : GgmlType::Q4_K;
      else if (ft == FT::MOSTLY_Q3_K_L)
        type = GgmlType::Q5_K;
      else if ((ft == FT::MOSTLY_Q4_K_M || ft == FT::MOSTLY_Q5_K_M) && more_bits(i_v, n_v))
        type = GgmlType::Q6_K;
      else if (ft == FT::MOSTLY_Q4_K_S && i_v < 4)
        type = GgmlType::Q5_K;
      if (is_70b && (type == GgmlType::Q3_K || type == GgmlType::Q4_K)) type = GgmlType::Q5_K;
      if (info.n_expert == 8) type = GgmlType::Q8_0;
      ++i_v;
      return type;
    }
    if (contains(name, kAttnK)) return info.n_expert == 8 ? GgmlType::Q8_0 : type;
    if (contains(name, kAttnQ)) return type;
    if (contains(name, "ffn_down")) {
      const int il = layer_index(i_down, name), n = n_layer;
      if (ft == FT::MOSTLY_Q2_K)
        type = GgmlType::Q3_K;
      else if (ft == FT::MOSTLY_Q3_K_M)
        type = il < n / 16 ? GgmlType::Q5_K : (!falcon || more_bits(il, n)) ? GgmlType::Q4_K : GgmlType::Q3_K;
      else if (ft == FT::MOSTLY_Q3_K_L)
        type = falcon ? GgmlType::Q4_K : GgmlType::Q5_K;
      else if (ft == FT::MOSTLY_Q4_K_M) {
        if (falcon)
          type = il < n / 16 ? GgmlType::Q6_K : more_bits(il, n) ? GgmlType::Q5_K : GgmlType::Q4_K;
        else if (more_bits(il, n))
          type = GgmlType::Q6_K;
      } else if (ft == FT::MOSTLY_Q5_K_M && more_bits(il, n))
        type = GgmlType::Q6_K;
      else if (ft == FT::MOSTLY_Q4_K_S && !falcon && il < n / 8)
        type = GgmlType::Q5_K;
      ++i_down;
      return type;
    }
    if (contains(name, kAttnOut)) {
      if (!falcon) {
        if (info.n_expert == 8) {
          if (ft == FT::MOSTLY_Q2_K || ft == FT::MOSTLY_Q3_K_S || ft == FT::MOSTLY_Q3_K_M || ft == FT::MOSTLY_Q4_K_S ||
              ft == FT::MOSTLY_Q4_K_M)
            type = GgmlType::Q5_K;
        } else if (ft == FT::MOSTLY_Q2_K)
          type = GgmlType::Q3_K;
        else if (ft == FT::MOSTLY_Q3_K_M)
          type = GgmlType::Q4_K;
        else if (ft == FT::MOSTLY_Q3_K_L)
          type = GgmlType::Q5_K;
      } else if (ft == FT::MOSTLY_Q3_K_L) {
        type = GgmlType::Q4_K;
      }
      return type;
    }
    if (contains(name, kAttnQkv)) {
      if (ft == FT::MOSTLY_Q3_K_M || ft == FT::MOSTLY_Q3_K_L)
        type = GgmlType::Q4_K;
      else if (ft == FT::MOSTLY_Q4_K_M)
        type = GgmlType::Q5_K;
      else if (ft == FT::MOSTLY_Q5_K_M)
        type = GgmlType::Q6_K;
      return type;
    }
    // ffn_gate / ffn_up: only IQ3_XS changes them. llama.cpp still checks the layer of MoE tensors.
    if (contains(name, "ffn_gate") || contains(name, "ffn_up")) (void)layer_index(0, name);
    return type;
  };

  std::vector<TensorChoice> out(tensors.size());
  for (std::size_t i : llama_tensor_order(tensors)) {
    const TensorDesc& t = tensors[i];
    if (!is_quantizable(t)) {
      out[i].type = t.type;
      continue;
    }
    GgmlType type = mix ? mixture(t, base) : base;
    if (mix && t.ne[0] % block_of(type) != 0) {
      GgmlType fb;
      switch (type) {
        case GgmlType::Q4_K: fb = GgmlType::Q5_0; break;
        case GgmlType::Q5_K: fb = GgmlType::Q5_1; break;
        case GgmlType::Q6_K: fb = GgmlType::Q8_0; break;
        case GgmlType::Q2_K:
        case GgmlType::Q3_K:
          throw UnsupportedError(fmt::format(
              "tensor {} {}: row length {} is not a multiple of 256; llama.cpp falls back to IQ4_NL for {}, "
              "which g2c cannot encode (use a Q4_K/Q5_K/Q6_K recipe or --pure with a 32-block type)",
              t.name, shape_str(t), t.ne[0], type_name(type)));
        default:
          throw InvalidArgument(fmt::format("tensor {}: row length {} is not a multiple of the {} block size {}",
                                            t.name, t.ne[0], type_name(type), block_of(type)));
      }
      if (t.ne[0] % block_of(fb) != 0) fb = GgmlType::F16;
      out[i].fallback = true;
      type = fb;
    }
    if (t.ne[0] % block_of(type) != 0)
      throw InvalidArgument(fmt::format("tensor {}: row length {} is not a multiple of the {} block size {}", t.name,
                                        t.ne[0], type_name(type), block_of(type)));
    out[i].type = type;
  }
  return out;
}

void encode_rows(GgmlType type, std::int64_t ne0, std::int64_t n_rows,
                 const std::function<void(std::int64_t row, float* dst)>& row, std::span<std::uint8_t> dst,
                 ThreadPool& pool, const std::function<void(std::int64_t rows_done)>& progress) {
  const auto rb = row_bytes(type, static_cast<std::uint64_t>(ne0));
  G2C_CHECK(rb.has_value());
  G2C_CHECK(dst.size() == *rb * static_cast<std::uint64_t>(n_rows));
  // Slabs of ~1M elements: enough work per parallel region to hide the wake-up, fine enough for a
  // progress bar that moves.
  const std::int64_t slab = std::max<std::int64_t>(pool.size(), ((std::int64_t{1} << 20) + ne0 - 1) / ne0);
  std::mutex err_mu;
  std::exception_ptr err;
  for (std::int64_t r0 = 0; r0 < n_rows; r0 += slab) {
    const std::int64_t r1 = std::min(n_rows, r0 + slab);
    pool.parallel_for(r1 - r0, [&](std::int64_t b, std::int64_t e) {
      try {
        std::vector<float> buf(static_cast<std::size_t>(ne0));  // [ne0] one row of f32
        for (std::int64_t r = r0 + b; r < r0 + e; ++r) {
          row(r, buf.data());
          quant::quantize_row(type, buf.data(), dst.data() + static_cast<std::uint64_t>(r) * *rb, ne0);
        }
      } catch (...) {
        std::lock_guard<std::mutex> lk(err_mu);
        if (!err) err = std::current_exception();
      }
    });
    if (err) std::rethrow_exception(err);
    if (progress) progress(r1);
  }
}

QuantizeReport quantize_model(const std::string& in_path, const std::string& out_path, const QuantizeOptions& opts) {
  Timer timer;
  auto in = gguf::File::open(in_path);
  const MixInfo info = MixInfo::from_gguf(*in);

  std::vector<TensorDesc> descs;
  descs.reserve(in->tensors().size());
  for (const auto& t : in->tensors()) descs.push_back({t.name, t.n_dims, t.ne, t.type});
  const std::vector<TensorChoice> choice = choose_tensor_types(descs, info, opts.ftype, opts.pure);
  const std::vector<std::size_t> order = llama_tensor_order(descs);

  gguf::Writer w(in->alignment());
  for (const auto& kv : in->kvs()) {
    if (kv.key == "split.no" || kv.key == "split.count" || kv.key == "split.tensors.count") continue;
    w.set(kv.key, kv.value);
  }
  // llama-quantize re-adds these two at the end of the metadata (gguf_set_val removes, then appends).
  w.remove("general.quantization_version");
  w.set("general.quantization_version", gguf::Value::u32(2));
  w.remove("general.file_type");
  w.set("general.file_type", gguf::Value::u32(static_cast<std::uint32_t>(opts.ftype)));

  QuantizeReport rep;
  std::unordered_map<std::string, std::size_t> by_name;
  for (std::size_t i : order) {
    const gguf::TensorInfo& t = in->tensors()[i];
    const GgmlType to = choice[i].type;
    if (to != t.type) {
      require_computable(t.type);  // UnsupportedError for IQ*/TQ* input that would need re-encoding
      if (!quant::can_quantize(to)) throw UnsupportedError(fmt::format("g2c cannot encode {}", type_name(to)));
    }
    w.add_tensor_streamed(t.name, to, std::span<const std::int64_t>(t.ne.data(), t.n_dims));
    QuantizedTensor q;
    q.name = t.name;
    q.ne = t.ne;
    q.from = t.type;
    q.to = to;
    q.fallback = choice[i].fallback;
    q.bytes_in = t.n_bytes;
    q.bytes_out = *row_bytes(to, static_cast<std::uint64_t>(t.ne[0])) * static_cast<std::uint64_t>(t.n_rows());
    rep.bytes_in += q.bytes_in;
    rep.bytes_out += q.bytes_out;
    rep.n_fallback += q.fallback;
    by_name[t.name] = i;
    rep.tensors.push_back(std::move(q));
  }

  ThreadPool pool(opts.threads);
  std::uint64_t done = 0;
  w.write(out_path, [&](const gguf::TensorInfo& out, std::span<std::uint8_t> dst) {
    const gguf::TensorInfo& src = in->tensors()[by_name.at(out.name)];
    if (out.type == src.type) {
      std::memcpy(dst.data(), src.data, dst.size());
    } else {
      const std::uint64_t src_rb = *row_bytes(src.type, static_cast<std::uint64_t>(src.ne[0]));
      const std::uint64_t row_in = src.n_rows() > 0 ? src.n_bytes / static_cast<std::uint64_t>(src.n_rows()) : 0;
      G2C_CHECK(row_in == src_rb);
      encode_rows(
          out.type, src.ne[0], src.n_rows(),
          [&](std::int64_t r, float* f) {
            quant::dequantize_row(src.type, src.data + static_cast<std::uint64_t>(r) * src_rb, f, src.ne[0]);
          },
          dst, pool,
          [&](std::int64_t rows) {
            if (opts.progress) opts.progress(done + static_cast<std::uint64_t>(rows) * src_rb, rep.bytes_in, out.name);
          });
    }
    done += src.n_bytes;
    if (opts.progress) opts.progress(done, rep.bytes_in, out.name);
  });
  rep.seconds = timer.elapsed_ms() / 1e3;
  return rep;
}

}  // namespace g2c::model
