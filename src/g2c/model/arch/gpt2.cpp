// gpt2: learned absolute positions (position_embd row = pos, from 0), LayerNorm with bias, fused QKV
// (rows Q, then K, then V) with bias, biases on attn_output / ffn_up / ffn_down, GELU FFN, no RoPE.
// output.weight is required, as llama.cpp at c392e50 requires it for gpt2.
#include "g2c/model/arch/arch.hpp"

namespace g2c::model {

void gpt2_load_hparams(const KeyReader& kr, HParams& hp) {
  hp.n_ctx_train = kr.req_int("context_length");
  hp.n_embd = kr.req_int("embedding_length");
  hp.n_layer = kr.req_int("block_count");
  hp.n_ff = kr.req_int("feed_forward_length");
  hp.n_head = kr.req_int("attention.head_count");
  hp.n_head_kv = kr.opt_int("attention.head_count_kv").value_or(hp.n_head);
  hp.head_dim = hp.n_head > 0 ? hp.n_embd / hp.n_head : 0;
  hp.head_dim = kr.opt_int("attention.key_length").value_or(hp.head_dim);
  hp.n_rot = 0;
  hp.norm_eps = kr.req_float("attention.layer_norm_epsilon");
  hp.rope_type = RopeType::kNone;
  hp.norm_type = NormType::kLayer;
  hp.ffn_type = FfnType::kGelu;
}

void gpt2_bind(Binder& b, const HParams& hp, Weights& w) {
  const std::int64_t e = hp.n_embd;
  const std::int64_t n_qkv = hp.n_embd_q() + 2 * hp.n_embd_kv();
  w.tok_embd = b.matrix("token_embd.weight", e, hp.n_vocab);
  w.pos_embd = b.matrix("position_embd.weight", e, hp.n_ctx_train);
  w.output_norm = b.vector("output_norm.weight", e);
  w.output_norm_b = b.vector("output_norm.bias", e);
  w.output = b.matrix("output.weight", e, hp.n_vocab);
  w.layers.resize(static_cast<std::size_t>(hp.n_layer));
  for (std::int64_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& l = w.layers[static_cast<std::size_t>(il)];
    l.attn_norm = b.vector(blk(il, "attn_norm.weight"), e);
    l.attn_norm_b = b.vector(blk(il, "attn_norm.bias"), e);
    l.wqkv = b.matrix(blk(il, "attn_qkv.weight"), e, n_qkv);
    l.bqkv = b.vector(blk(il, "attn_qkv.bias"), n_qkv);
    l.wo = b.matrix(blk(il, "attn_output.weight"), hp.n_embd_q(), e);
    l.bo = b.vector(blk(il, "attn_output.bias"), e);
    l.ffn_norm = b.vector(blk(il, "ffn_norm.weight"), e);
    l.ffn_norm_b = b.vector(blk(il, "ffn_norm.bias"), e);
    l.ffn_up = b.matrix(blk(il, "ffn_up.weight"), e, hp.n_ff);
    l.ffn_up_b = b.vector(blk(il, "ffn_up.bias"), hp.n_ff);
    l.ffn_down = b.matrix(blk(il, "ffn_down.weight"), hp.n_ff, e);
    l.ffn_down_b = b.vector(blk(il, "ffn_down.bias"), e);
  }
}

}  // namespace g2c::model
