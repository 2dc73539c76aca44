// llama (also Mistral-shaped files): RMSNorm, GQA, RoPE on adjacent pairs (GGUF q/k rows are in Meta
// order), rope.freq_base, linear rope scaling, Llama 3 rope scaling through rope_freqs.weight, SwiGLU
// FFN, optional q/k/v/o biases, output tied to token_embd when output.weight is absent.
#include "g2c/model/arch/arch.hpp"

namespace g2c::model {

void llama_load_hparams(const KeyReader& kr, HParams& hp) {
  read_common_hparams(kr, hp);
  hp.rope_type = RopeType::kNorm;
  hp.norm_type = NormType::kRms;
  hp.ffn_type = FfnType::kSwiglu;
}

void llama_bind(Binder& b, const HParams& hp, Weights& w) {
  const std::int64_t e = hp.n_embd;
  w.tok_embd = b.matrix("token_embd.weight", e, hp.n_vocab);
  w.output_norm = b.vector("output_norm.weight", e);
  w.output = b.matrix("output.weight", e, hp.n_vocab, /*required=*/false);
  if (!w.output) {
    w.output = w.tok_embd;
    w.tied_output = true;
  }
  w.rope_freqs = b.vector("rope_freqs.weight", hp.n_rot / 2, /*required=*/false);
  w.layers.resize(static_cast<std::size_t>(hp.n_layer));
  for (std::int64_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& l = w.layers[static_cast<std::size_t>(il)];
    l.attn_norm = b.vector(blk(il, "attn_norm.weight"), e);
    l.wq = b.matrix(blk(il, "attn_q.weight"), e, hp.n_embd_q());
    l.wk = b.matrix(blk(il, "attn_k.weight"), e, hp.n_embd_kv());
    l.wv = b.matrix(blk(il, "attn_v.weight"), e, hp.n_embd_kv());
    l.wo = b.matrix(blk(il, "attn_output.weight"), hp.n_embd_q(), e);
    l.bq = b.vector(blk(il, "attn_q.bias"), hp.n_embd_q(), false);
    l.bk = b.vector(blk(il, "attn_k.bias"), hp.n_embd_kv(), false);
    l.bv = b.vector(blk(il, "attn_v.bias"), hp.n_embd_kv(), false);
    l.bo = b.vector(blk(il, "attn_output.bias"), e, false);
    l.ffn_norm = b.vector(blk(il, "ffn_norm.weight"), e);
    l.ffn_gate = b.matrix(blk(il, "ffn_gate.weight"), e, hp.n_ff);
    l.ffn_up = b.matrix(blk(il, "ffn_up.weight"), e, hp.n_ff);
    l.ffn_down = b.matrix(blk(il, "ffn_down.weight"), hp.n_ff, e);
  }
}

}  // namespace g2c::model
