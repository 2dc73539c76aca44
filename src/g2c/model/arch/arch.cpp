// The rows of the architecture table: key names, tensor names and shapes, and what each architecture has.
#include "g2c/model/arch/arch.hpp"

#include <fmt/format.h>

#include <initializer_list>
#include <utility>

#include "g2c/core/error.hpp"

namespace g2c::model {

namespace {

constexpr const char* kKeySuffix[] = {
    "context_length",
    "embedding_length",
    "block_count",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "attention.layer_norm_epsilon",
    "attention.layer_norm_rms_epsilon",
    "rope.dimension_count",
    "rope.freq_base",
    "rope.scaling.type",
    "rope.scaling.factor",
    "rope.scale_linear",
    "vocab_size",
    "expert_count",
};
static_assert(std::size(kKeySuffix) == static_cast<std::size_t>(Key::kCount));

using T = Tensor;
using W = Weights;
using L = LayerWeights;

// Shapes follow weights.hpp: ne = [n_in, n_out].
constexpr TensorSpec kTensors[] = {
    {T::kTokEmbd, "token_embd.weight", false, Dim::kEmbd, Dim::kVocab, &W::tok_embd, nullptr},
    {T::kPosEmbd, "position_embd.weight", false, Dim::kEmbd, Dim::kCtxTrain, &W::pos_embd, nullptr},
    {T::kRopeFreqs, "rope_freqs.weight", false, Dim::kRotHalf, Dim::kOne, &W::rope_freqs, nullptr},
    {T::kAttnNorm, "attn_norm.weight", true, Dim::kEmbd, Dim::kOne, nullptr, &L::attn_norm},
    {T::kAttnNormB, "attn_norm.bias", true, Dim::kEmbd, Dim::kOne, nullptr, &L::attn_norm_b},
    {T::kAttnQ, "attn_q.weight", true, Dim::kEmbd, Dim::kEmbdQ, nullptr, &L::wq},
    {T::kAttnQB, "attn_q.bias", true, Dim::kEmbdQ, Dim::kOne, nullptr, &L::bq},
    {T::kAttnK, "attn_k.weight", true, Dim::kEmbd, Dim::kEmbdKv, nullptr, &L::wk},
    {T::kAttnKB, "attn_k.bias", true, Dim::kEmbdKv, Dim::kOne, nullptr, &L::bk},
    {T::kAttnV, "attn_v.weight", true, Dim::kEmbd, Dim::kEmbdKv, nullptr, &L::wv},
    {T::kAttnVB, "attn_v.bias", true, Dim::kEmbdKv, Dim::kOne, nullptr, &L::bv},
    {T::kAttnQkv, "attn_qkv.weight", true, Dim::kEmbd, Dim::kEmbdQkv, nullptr, &L::wqkv},
    {T::kAttnQkvB, "attn_qkv.bias", true, Dim::kEmbdQkv, Dim::kOne, nullptr, &L::bqkv},
    {T::kAttnOut, "attn_output.weight", true, Dim::kEmbdQ, Dim::kEmbd, nullptr, &L::wo},
    {T::kAttnOutB, "attn_output.bias", true, Dim::kEmbd, Dim::kOne, nullptr, &L::bo},
    {T::kFfnNorm, "ffn_norm.weight", true, Dim::kEmbd, Dim::kOne, nullptr, &L::ffn_norm},
    {T::kFfnNormB, "ffn_norm.bias", true, Dim::kEmbd, Dim::kOne, nullptr, &L::ffn_norm_b},
    {T::kFfnGate, "ffn_gate.weight", true, Dim::kEmbd, Dim::kFf, nullptr, &L::ffn_gate},
    {T::kFfnUp, "ffn_up.weight", true, Dim::kEmbd, Dim::kFf, nullptr, &L::ffn_up},
    {T::kFfnUpB, "ffn_up.bias", true, Dim::kFf, Dim::kOne, nullptr, &L::ffn_up_b},
    {T::kFfnDown, "ffn_down.weight", true, Dim::kFf, Dim::kEmbd, nullptr, &L::ffn_down},
    {T::kFfnDownB, "ffn_down.bias", true, Dim::kEmbd, Dim::kOne, nullptr, &L::ffn_down_b},
    {T::kOutputNorm, "output_norm.weight", false, Dim::kEmbd, Dim::kOne, &W::output_norm, nullptr},
    {T::kOutputNormB, "output_norm.bias", false, Dim::kEmbd, Dim::kOne, &W::output_norm_b, nullptr},
    {T::kOutput, "output.weight", false, Dim::kEmbd, Dim::kVocab, &W::output, nullptr},
};
static_assert(std::size(kTensors) == kTensorCount);
constexpr bool rows_in_tensor_order() {
  for (std::size_t i = 0; i < kTensorCount; ++i)
    if (kTensors[i].id != static_cast<Tensor>(i) || (kTensors[i].global == nullptr) != kTensors[i].per_layer)
      return false;
  return true;
}
static_assert(rows_in_tensor_order(), "kTensors[i] describes Tensor(i); per-layer rows bind into LayerWeights");

constexpr Has R = Has::kRequired;
constexpr Has O = Has::kOptional;

constexpr std::array<Has, kTensorCount> tensors(std::initializer_list<std::pair<Tensor, Has>> list) {
  std::array<Has, kTensorCount> a{};
  for (const auto& [t, h] : list) a[static_cast<std::size_t>(t)] = h;
  return a;
}

constexpr ArchSpec kArchs[] = {
    // llama (also Mistral-shaped files): RMSNorm, GQA, RoPE on adjacent pairs (GGUF q/k rows are in Meta
    // order), linear rope scaling, Llama 3 rope scaling through rope_freqs.weight (angles divided by it),
    // SwiGLU FFN, optional q/k/v/o biases, tied output.
    {Arch::kLlama, "llama", NormType::kRms, RopeType::kNorm, FfnType::kSwiglu,
     tensors({{T::kTokEmbd, R},
              {T::kRopeFreqs, O},
              {T::kAttnNorm, R},
              {T::kAttnQ, R},
              {T::kAttnQB, O},
              {T::kAttnK, R},
              {T::kAttnKB, O},
              {T::kAttnV, R},
              {T::kAttnVB, O},
              {T::kAttnOut, R},
              {T::kAttnOutB, O},
              {T::kFfnNorm, R},
              {T::kFfnGate, R},
              {T::kFfnUp, R},
              {T::kFfnDown, R},
              {T::kOutputNorm, R},
              {T::kOutput, O}})},
    // qwen2: llama's block with q/k/v biases (added before RoPE) and NEOX RoPE (pairs i, i + n_rot/2: the
    // converter does not permute qwen2's q/k rows), tied output.
    {Arch::kQwen2, "qwen2", NormType::kRms, RopeType::kNeox, FfnType::kSwiglu,
     tensors({{T::kTokEmbd, R},
              {T::kAttnNorm, R},
              {T::kAttnQ, R},
              {T::kAttnQB, R},
              {T::kAttnK, R},
              {T::kAttnKB, R},
              {T::kAttnV, R},
              {T::kAttnVB, R},
              {T::kAttnOut, R},
              {T::kFfnNorm, R},
              {T::kFfnGate, R},
              {T::kFfnUp, R},
              {T::kFfnDown, R},
              {T::kOutputNorm, R},
              {T::kOutput, O}})},
    // gpt2: learned absolute positions (position_embd row = pos), LayerNorm with bias, fused QKV (rows Q,
    // then K, then V) with bias, biases on attn_output / ffn_up / ffn_down, GELU FFN, no RoPE.
    // output.weight is required, as llama.cpp at c392e50 requires it for gpt2.
    {Arch::kGpt2, "gpt2", NormType::kLayer, RopeType::kNone, FfnType::kGelu,
     tensors({{T::kTokEmbd, R},
              {T::kPosEmbd, R},
              {T::kAttnNorm, R},
              {T::kAttnNormB, R},
              {T::kAttnQkv, R},
              {T::kAttnQkvB, R},
              {T::kAttnOut, R},
              {T::kAttnOutB, R},
              {T::kFfnNorm, R},
              {T::kFfnNormB, R},
              {T::kFfnUp, R},
              {T::kFfnUpB, R},
              {T::kFfnDown, R},
              {T::kFfnDownB, R},
              {T::kOutputNorm, R},
              {T::kOutputNormB, R},
              {T::kOutput, R}})},
};

}  // namespace

const char* key_suffix(Key k) { return kKeySuffix[static_cast<std::size_t>(k)]; }

std::string key_name(std::string_view arch, Key k) { return fmt::format("{}.{}", arch, key_suffix(k)); }

std::int64_t dim_size(Dim d, const HParams& hp) {
  switch (d) {
    case Dim::kOne: return 1;
    case Dim::kVocab: return hp.n_vocab;
    case Dim::kEmbd: return hp.n_embd;
    case Dim::kEmbdQ: return hp.n_embd_q();
    case Dim::kEmbdKv: return hp.n_embd_kv();
    case Dim::kEmbdQkv: return hp.n_embd_q() + 2 * hp.n_embd_kv();
    case Dim::kFf: return hp.n_ff;
    case Dim::kCtxTrain: return hp.n_ctx_train;
    case Dim::kRotHalf: return hp.n_rot / 2;
  }
  G2C_CHECK(false);
  return 0;
}

WeightTensor& TensorSpec::in(Weights& w, std::int64_t il) const {
  return per_layer ? w.layers[static_cast<std::size_t>(il)].*layer : w.*global;
}
const WeightTensor& TensorSpec::in(const Weights& w, std::int64_t il) const {
  return per_layer ? w.layers[static_cast<std::size_t>(il)].*layer : w.*global;
}

std::span<const TensorSpec> tensor_specs() { return kTensors; }

const TensorSpec& tensor_spec(Tensor t) { return kTensors[static_cast<std::size_t>(t)]; }

std::string tensor_name(Tensor t, std::int64_t il) {
  const TensorSpec& s = tensor_spec(t);
  G2C_CHECK(s.per_layer == (il >= 0));
  return s.per_layer ? fmt::format("blk.{}.{}", il, s.name) : std::string(s.name);
}

std::span<const ArchSpec> arch_specs() { return kArchs; }

const ArchSpec& arch_spec(Arch a) {
  for (const ArchSpec& s : kArchs)
    if (s.arch == a) return s;
  G2C_CHECK(false);
  return kArchs[0];
}

const ArchSpec* find_arch(std::string_view name) {
  for (const ArchSpec& s : kArchs)
    if (name == s.name) return &s;
  return nullptr;
}

std::string supported_arch_names() {
  std::string out;
  for (const ArchSpec& s : kArchs) out += (out.empty() ? "" : ", ") + std::string(s.name);
  return out;
}

const char* arch_name(Arch a) { return arch_spec(a).name; }

}  // namespace g2c::model
