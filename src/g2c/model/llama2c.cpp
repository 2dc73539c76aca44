#include "g2c/model/llama2c.hpp"

#include <cstdlib>
#include <cstring>

#include <fmt/core.h>

#include "g2c/core/error.hpp"

namespace g2c::model {
namespace {

constexpr std::uint32_t kMagicV1 = 0x616b3432;  // "ak42"
constexpr std::size_t kHeaderV0 = 28;           // 7 x int32
constexpr std::size_t kHeaderV1 = 256;

// Walks the fp32 payload in file order, handing out [count][n_in] views.
class Cursor {
 public:
  Cursor(const std::uint8_t* base, std::size_t size, std::size_t off) : base_(base), size_(size), off_(off) {}
  // `n_mats` consecutive matrices of [n_out][n_in] floats.
  const std::uint8_t* take(std::int64_t n_mats, std::int64_t n_out, std::int64_t n_in) {
    const std::uint64_t bytes = static_cast<std::uint64_t>(n_mats) * n_out * n_in * 4;
    if (off_ + bytes > size_)
      throw FormatError(
          fmt::format("llama2.c checkpoint truncated: needs more than {} bytes, file has {}", off_ + bytes, size_));
    const std::uint8_t* p = base_ + off_;
    off_ += bytes;
    return p;
  }
  std::size_t offset() const { return off_; }

 private:
  const std::uint8_t* base_;
  std::size_t size_;
  std::size_t off_;
};

WeightTensor view(const std::uint8_t* p, std::int64_t n_in, std::int64_t n_out, std::string name) {
  WeightTensor w;
  w.data = p;
  w.type = GgmlType::F32;
  w.n_in = n_in;
  w.n_out = n_out;
  w.row_bytes = static_cast<std::size_t>(n_in) * 4;
  w.name = std::move(name);
  return w;
}

std::int32_t rd_i32(const std::uint8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

void load_llama2c(const MappedFile& map, const ModelOptions& opts, HParams& hp, Weights& w) {
  const std::uint8_t* base = map.data();
  const std::size_t size = map.size();
  if (size < kHeaderV0) throw FormatError(fmt::format("not a GGUF or llama2.c checkpoint ({} bytes)", size));
  std::uint32_t magic;
  std::memcpy(&magic, base, 4);
  int version = 0;
  std::size_t cfg_off = 0, data_off = kHeaderV0;
  bool shared = true;
  if (magic == kMagicV1) {
    if (size < kHeaderV1) throw FormatError("llama2.c v1 header truncated");
    version = rd_i32(base + 4);
    if (version == 2)
      throw UnsupportedError("llama2.c version 2 (int8) checkpoints are not supported; export version 0 or 1");
    if (version != 1) throw FormatError(fmt::format("llama2.c checkpoint version {} is unknown", version));
    cfg_off = 8;
    data_off = kHeaderV1;
    shared = base[8 + 28] != 0;
  }
  std::int32_t cfg[7];
  for (int i = 0; i < 7; ++i) cfg[i] = rd_i32(base + cfg_off + 4 * i);
  const std::int64_t dim = cfg[0], hidden = cfg[1], n_layers = cfg[2], n_heads = cfg[3], n_kv = cfg[4];
  std::int64_t vocab = cfg[5];
  const std::int64_t seq_len = cfg[6];
  if (version == 0) {
    shared = vocab > 0;
    vocab = std::llabs(vocab);
  }
  if (dim <= 0 || hidden <= 0 || n_layers <= 0 || n_layers > 4096 || n_heads <= 0 || n_kv <= 0 || vocab <= 0 ||
      seq_len <= 0 || dim % n_heads != 0 || n_heads % n_kv != 0)
    throw FormatError(
        fmt::format("llama2.c header not plausible: dim {} hidden {} layers {} heads {} kv_heads {} "
                    "vocab {} seq_len {}",
                    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len));
  const std::int64_t head = dim / n_heads;
  const std::int64_t kv_dim = n_kv * head;

  hp = HParams{};
  hp.arch = Arch::kLlama;
  hp.arch_name = "llama";
  hp.n_vocab = vocab;
  hp.n_embd = dim;
  hp.n_layer = n_layers;
  hp.n_head = n_heads;
  hp.n_head_kv = n_kv;
  hp.head_dim = head;
  hp.n_ff = hidden;
  hp.n_ctx_train = seq_len;
  hp.n_rot = head;
  hp.norm_rms_eps = 1e-5f;  // run.c
  hp.rope_freq_base = 10000.0f;
  hp.rope_type = RopeType::kNorm;  // Meta order: adjacent pairs
  hp.bos_id = opts.bin_bos_id < vocab ? opts.bin_bos_id : -1;
  hp.eos_id = opts.bin_eos_id < vocab ? opts.bin_eos_id : -1;

  Cursor c(base, size, data_off);
  const std::uint8_t *tok = nullptr, *rms_att = nullptr, *rms_ffn = nullptr, *rms_final = nullptr;
  if (version == 1) {
    rms_att = c.take(n_layers, 1, dim);
    rms_ffn = c.take(n_layers, 1, dim);
    rms_final = c.take(1, 1, dim);
    tok = c.take(1, vocab, dim);
  } else {
    tok = c.take(1, vocab, dim);
    rms_att = c.take(n_layers, 1, dim);
  }
  const std::uint8_t* wq = c.take(n_layers, dim, dim);
  const std::uint8_t* wk = c.take(n_layers, kv_dim, dim);
  const std::uint8_t* wv = c.take(n_layers, kv_dim, dim);
  const std::uint8_t* wo = c.take(n_layers, dim, dim);
  if (version == 0) rms_ffn = c.take(n_layers, 1, dim);
  const std::uint8_t* w1 = c.take(n_layers, hidden, dim);
  const std::uint8_t* w2 = c.take(n_layers, dim, hidden);
  const std::uint8_t* w3 = c.take(n_layers, hidden, dim);
  if (version == 0) {
    rms_final = c.take(1, 1, dim);
    c.take(2, seq_len, head / 2);  // freq_cis_real, freq_cis_imag: RoPE is computed instead
  }
  const std::uint8_t* wcls = shared ? tok : c.take(1, vocab, dim);
  if (c.offset() != size)
    throw FormatError(fmt::format("llama2.c v{} checkpoint: expected {} bytes for this header, file has {}", version,
                                  c.offset(), size));

  const auto stride = [](std::int64_t n_out, std::int64_t n_in) { return static_cast<std::size_t>(n_out * n_in * 4); };
  w = Weights{};
  w.tok_embd = view(tok, dim, vocab, "token_embedding_table");
  w.output_norm = view(rms_final, dim, 1, "rms_final_weight");
  w.output = view(wcls, dim, vocab, shared ? "token_embedding_table" : "wcls");
  w.tied_output = shared;
  w.layers.resize(static_cast<std::size_t>(n_layers));
  for (std::int64_t il = 0; il < n_layers; ++il) {
    LayerWeights& l = w.layers[static_cast<std::size_t>(il)];
    const std::string s = fmt::format("[{}]", il);
    l.attn_norm = view(rms_att + il * stride(1, dim), dim, 1, "rms_att_weight" + s);
    l.wq = view(wq + il * stride(dim, dim), dim, dim, "wq" + s);
    l.wk = view(wk + il * stride(kv_dim, dim), dim, kv_dim, "wk" + s);
    l.wv = view(wv + il * stride(kv_dim, dim), dim, kv_dim, "wv" + s);
    l.wo = view(wo + il * stride(dim, dim), dim, dim, "wo" + s);
    l.ffn_norm = view(rms_ffn + il * stride(1, dim), dim, 1, "rms_ffn_weight" + s);
    l.ffn_gate = view(w1 + il * stride(hidden, dim), dim, hidden, "w1" + s);
    l.ffn_down = view(w2 + il * stride(dim, hidden), hidden, dim, "w2" + s);
    l.ffn_up = view(w3 + il * stride(hidden, dim), dim, hidden, "w3" + s);
  }
}

}  // namespace g2c::model
