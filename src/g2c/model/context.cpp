// The forward pass: straight-line code over buffers allocated once per Context (llama2.c run.c
// `forward`, gemma.cpp TransformerLayer). Every operation goes through the kernel table.
//
// A batch is cut into passes of at most n_batch tokens. In each pass, for every layer: norm, Q/K/V
// projections for all tokens (one weight read per pass: matmul; a single token uses matvec), RoPE,
// K/V rows stored into each token's own sequence cache, then causal attention of every (token, head)
// over its sequence's cache rows 0..pos (runs of consecutive tokens share each K/V row read:
// attend_multi), output projection, FFN. Only tokens that asked for logits go through the output
// norm and the vocabulary projection.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>

#include <fmt/core.h>

#include "g2c/core/aligned.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/log.hpp"
#include "g2c/core/thread_pool.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/model/model.hpp"
#include "g2c/model/weights.hpp"
#include "g2c/quant/quant.hpp"

namespace g2c::model {

struct Context::State {
  explicit State(int threads) : pool(threads) {}
  const kernels::KernelTable* k = nullptr;
  ThreadPool pool;
  std::int64_t n_ub = 0;  // tokens per pass
  GgmlType kv_type = GgmlType::F32;
  std::size_t kv_row = 0;  // bytes of one cache row: n_embd_kv elements of kv_type
  std::size_t kv_seq = 0;  // bytes of one sequence's cache: n_layer * n_ctx * kv_row

  AlignedBuffer<std::uint8_t> k_cache;             // [n_seq][n_layer][n_ctx][n_embd_kv] of kv_type
  AlignedBuffer<std::uint8_t> v_cache;             // [n_seq][n_layer][n_ctx][n_embd_kv] of kv_type
  std::vector<std::int32_t> seq_len;               // [n_seq] cached positions
  std::vector<std::vector<std::int32_t>> history;  // [n_seq][seq_len] tokens, for naive recompute

  AlignedBuffer<float> x;           // [n_ub][n_embd]        residual stream
  AlignedBuffer<float> xn;          // [n_ub][n_embd]        normed input of a block
  AlignedBuffer<float> q;           // [n_ub][n_embd_q]
  AlignedBuffer<float> kx;          // [n_ub][n_embd_kv]
  AlignedBuffer<float> vx;          // [n_ub][n_embd_kv]
  AlignedBuffer<float> qkv;         // [n_ub][n_embd_q + 2 n_embd_kv]  fused-QKV archs only
  AlignedBuffer<float> att;         // [n_ub][n_embd_q]      attention output, before attn_output
  AlignedBuffer<float> ff_a;        // [n_ub][n_ff]
  AlignedBuffer<float> ff_b;        // [n_ub][n_ff]
  AlignedBuffer<float> proj;        // [n_ub][n_embd]        block output before the residual add
  AlignedBuffer<float> out_h;       // [n_ub][n_embd]        normed final hidden of output tokens
  AlignedBuffer<std::uint8_t> act;  // [n_ub][act row]    activations converted to a kernel's act_type
  AlignedBuffer<float> rope_cs;     // [n_ub][n_rot]         (cos, sin) per rotated pair per token
  AlignedBuffer<float> scores;      // [n_threads][att_scratch] attend_multi scratch of one work item
  std::size_t att_scratch = 0;  // floats of scratch per thread: attend_multi_scratch(att_tok * group, head_dim, n_ctx)
  std::int64_t att_tok = 0;     // tokens per attention work item (chunk of a run)
  std::vector<std::int32_t> att_kv;                     // [n_ub] rows each token attends over: pos + 1
  std::vector<std::array<std::int64_t, 2>> att_chunks;  // [<= n_ub] (first token, n_tok) of each work chunk

  std::vector<float> logits;  // [n_outputs][n_vocab]  grown to the largest request
  std::vector<float> hidden;  // [n_outputs][n_embd]   when ContextOptions::embeddings
};

namespace {

// Batched products split rows between threads on multiples of 16: the ISA tables' prefill GEMM works
// on 16-row panels, and a fixed boundary keeps each row on the same kernel whatever the thread count.
constexpr std::int64_t kMatmulGrain = 16;

// Queries per attention work item: a chunk of consecutive tokens of one sequence times the query heads
// of one KV head (GQA group). Each K/V row is read and converted once per item instead of once per
// query; 32 queries fill two 16-lane vectors of the AVX-512 kernel and still leave 16 items per head
// for the threads on a 512-token prefill.
constexpr std::int64_t kAttnQueries = 32;

std::size_t act_row_capacity(const HParams& hp) {
  // Room for three converted copies of a row (project_all converts once per activation type): the
  // integer activation types take at most 292/256 bytes per element (Q8_K), F32 is never converted.
  const std::int64_t n = std::max({hp.n_embd, hp.n_ff, hp.n_embd_q()});
  return 3 * (static_cast<std::size_t>(n) * 2 + 64);
}

}  // namespace

Context::Context(const Model& model, const ContextOptions& opts) : model_(model), opts_(opts) {
  const HParams& hp = model.hparams();
  if (opts_.n_ctx < 0 || opts_.n_seq <= 0 || opts_.n_batch <= 0)
    throw InvalidArgument(
        fmt::format("context options: n_ctx {} n_seq {} n_batch {} (need n_ctx >= 0, n_seq > 0, "
                    "n_batch > 0)",
                    opts_.n_ctx, opts_.n_seq, opts_.n_batch));
  if (opts_.n_ctx == 0) opts_.n_ctx = static_cast<std::int32_t>(std::min<std::int64_t>(hp.n_ctx_train, 4096));
  if (model.weights().pos_embd && opts_.n_ctx > hp.n_ctx_train)  // learned positions end there
    throw InvalidArgument(
        fmt::format("n_ctx {} exceeds the {} learned positions of this gpt2 model", opts_.n_ctx, hp.n_ctx_train));
  if (opts_.n_ctx > hp.n_ctx_train)
    log_warn("n_ctx {} is larger than the model's training context {}", opts_.n_ctx, hp.n_ctx_train);

  st_ = std::make_unique<State>(opts_.threads);
  State& s = *st_;
  s.k = &kernels::kernels();
  s.n_ub = opts_.n_batch;
  s.kv_type = opts_.kv_type == KvType::kF16 ? GgmlType::F16 : GgmlType::F32;
  s.kv_row = static_cast<std::size_t>(hp.n_embd_kv()) * (s.kv_type == GgmlType::F16 ? 2 : 4);
  s.kv_seq = static_cast<std::size_t>(hp.n_layer) * static_cast<std::size_t>(opts_.n_ctx) * s.kv_row;
  s.k_cache.reset(s.kv_seq * static_cast<std::size_t>(opts_.n_seq));
  s.v_cache.reset(s.kv_seq * static_cast<std::size_t>(opts_.n_seq));
  s.seq_len.assign(static_cast<std::size_t>(opts_.n_seq), 0);
  s.history.assign(static_cast<std::size_t>(opts_.n_seq), {});

  const auto n_ub = static_cast<std::size_t>(s.n_ub);
  s.x.reset(n_ub * hp.n_embd);
  s.xn.reset(n_ub * hp.n_embd);
  s.q.reset(n_ub * hp.n_embd_q());
  s.kx.reset(n_ub * hp.n_embd_kv());
  s.vx.reset(n_ub * hp.n_embd_kv());
  if (!model.weights().layers.empty() && model.weights().layers[0].wqkv)
    s.qkv.reset(n_ub * (hp.n_embd_q() + 2 * hp.n_embd_kv()));
  s.att.reset(n_ub * hp.n_embd_q());
  s.ff_a.reset(n_ub * hp.n_ff);
  s.ff_b.reset(n_ub * hp.n_ff);
  s.proj.reset(n_ub * hp.n_embd);
  s.out_h.reset(n_ub * hp.n_embd);
  s.act.reset(n_ub * act_row_capacity(hp));
  s.rope_cs.reset(n_ub * std::max<std::int64_t>(hp.n_rot, 2));
  const std::int64_t group = hp.n_head / hp.n_head_kv;
  s.att_tok = std::max<std::int64_t>(1, kAttnQueries / group);
  s.att_scratch = kernels::attend_multi_scratch(s.att_tok * group, hp.head_dim, opts_.n_ctx);
  s.scores.reset(static_cast<std::size_t>(s.pool.size()) * s.att_scratch);
  s.att_kv.resize(n_ub);
  s.att_chunks.reserve(n_ub);
  s.logits.reserve(static_cast<std::size_t>(opts_.n_seq * hp.n_vocab));

  log_info(
      "context: n_ctx {} x {} sequence(s), KV cache {} = {:.2f} MiB (2*n_ctx*n_layer*n_head_kv*head_dim*bytes), "
      "{} threads, kernels {}",
      opts_.n_ctx, opts_.n_seq, s.kv_type == GgmlType::F16 ? "F16" : "F32",
      static_cast<double>(kv_bytes()) / (1024.0 * 1024.0), s.pool.size(), s.k->isa_name);
}

Context::~Context() = default;

int Context::threads() const { return st_->pool.size(); }

std::uint64_t Context::kv_bytes() const { return 2ull * st_->kv_seq * static_cast<std::uint64_t>(opts_.n_seq); }

std::int32_t Context::seq_len(std::int32_t seq) const {
  if (seq < 0 || seq >= opts_.n_seq)
    throw InvalidArgument(fmt::format("sequence {} out of range [0, {})", seq, opts_.n_seq));
  return st_->seq_len[static_cast<std::size_t>(seq)];
}

void Context::clear(std::int32_t seq) { truncate(seq, 0); }

void Context::truncate(std::int32_t seq, std::int32_t n) {
  const std::int32_t len = seq_len(seq);
  if (n < 0 || n > len)
    throw InvalidArgument(fmt::format("truncate sequence {} to {}: it has {} positions", seq, n, len));
  st_->seq_len[static_cast<std::size_t>(seq)] = n;
  st_->history[static_cast<std::size_t>(seq)].resize(static_cast<std::size_t>(n));
}

std::span<const float> Context::logits(std::int32_t i) const {
  if (i < 0 || i >= n_outputs_) throw InvalidArgument(fmt::format("output {} out of range [0, {})", i, n_outputs_));
  const auto nv = static_cast<std::size_t>(model_.hparams().n_vocab);
  return {st_->logits.data() + static_cast<std::size_t>(i) * nv, nv};
}

std::span<const float> Context::hidden(std::int32_t i) const {
  if (!opts_.embeddings) throw InvalidArgument("hidden states need ContextOptions::embeddings");
  if (i < 0 || i >= n_outputs_) throw InvalidArgument(fmt::format("output {} out of range [0, {})", i, n_outputs_));
  const auto ne = static_cast<std::size_t>(model_.hparams().n_embd);
  return {st_->hidden.data() + static_cast<std::size_t>(i) * ne, ne};
}

void Context::validate(std::span<const BatchToken> batch) const {
  const HParams& hp = model_.hparams();
  std::vector<std::int32_t> next(st_->seq_len);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const BatchToken& t = batch[i];
    if (t.seq < 0 || t.seq >= opts_.n_seq)
      throw InvalidArgument(fmt::format("batch token {}: sequence {} out of range [0, {})", i, t.seq, opts_.n_seq));
    if (t.token < 0 || t.token >= hp.n_vocab)
      throw InvalidArgument(fmt::format("batch token {}: token id {} out of range [0, {})", i, t.token, hp.n_vocab));
    const std::int32_t want = next[static_cast<std::size_t>(t.seq)];
    if (t.pos != want)
      throw InvalidArgument(
          fmt::format("batch token {}: sequence {} continues at position {}, got {} (clear or "
                      "truncate the sequence to rewind)",
                      i, t.seq, want, t.pos));
    if (t.pos >= opts_.n_ctx)
      throw ContextOverflow(
          fmt::format("sequence {}: position {} does not fit the context of {} tokens", t.seq, t.pos, opts_.n_ctx));
    next[static_cast<std::size_t>(t.seq)] = want + 1;
  }
}

void Context::decode(std::span<const BatchToken> batch) {
  validate(batch);
  const HParams& hp = model_.hparams();
  State& s = *st_;
  std::int32_t n_out = 0;
  std::vector<std::int32_t> slot(batch.size(), -1);
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (batch[i].logits) slot[i] = n_out++;
  n_outputs_ = n_out;
  s.logits.resize(static_cast<std::size_t>(n_out) * static_cast<std::size_t>(hp.n_vocab));
  if (opts_.embeddings) s.hidden.resize(static_cast<std::size_t>(n_out) * static_cast<std::size_t>(hp.n_embd));
  if (batch.empty()) return;
  if (!opts_.naive) {
    run(batch, slot);
    return;
  }
  // Naive: every sequence in the batch is recomputed from position 0 (history + new tokens).
  std::vector<BatchToken> ex;
  std::vector<std::int32_t> ex_slot;
  std::vector<bool> done(static_cast<std::size_t>(opts_.n_seq), false);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const std::int32_t seq = batch[i].seq;
    if (done[static_cast<std::size_t>(seq)]) continue;
    done[static_cast<std::size_t>(seq)] = true;
    const auto& hist = s.history[static_cast<std::size_t>(seq)];
    for (std::int32_t p = 0; p < s.seq_len[static_cast<std::size_t>(seq)]; ++p) {
      ex.push_back({hist[static_cast<std::size_t>(p)], seq, p, false});
      ex_slot.push_back(-1);
    }
    for (std::size_t j = i; j < batch.size(); ++j) {
      if (batch[j].seq != seq) continue;
      ex.push_back(batch[j]);
      ex_slot.push_back(slot[j]);
    }
  }
  for (std::size_t q = 0; q < done.size(); ++q)
    if (done[q]) s.seq_len[q] = 0;
  run(ex, ex_slot);
}

void Context::run(std::span<const BatchToken> batch, std::span<const std::int32_t> out_slot) {
  const HParams& hp = model_.hparams();
  const Weights& w = model_.weights();
  State& s = *st_;
  const kernels::KernelTable& k = *s.k;
  ThreadPool& pool = s.pool;
  const std::int64_t E = hp.n_embd, Eq = hp.n_embd_q(), Ekv = hp.n_embd_kv(), hd = hp.head_dim;
  const std::int64_t n_vocab = hp.n_vocab;
  const int kvi = kernels::kv_index(s.kv_type);
  const std::size_t kv_elem = s.kv_type == GgmlType::F16 ? 2 : 4;
  const float kq_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const std::int64_t group = hp.n_head / hp.n_head_kv;
  const kernels::RopeMode rope_mode =
      hp.rope_type == RopeType::kNeox ? kernels::RopeMode::kNeox : kernels::RopeMode::kNorm;

  // y_i [n][W_i.n_out] = x [n][n_in] . W_i^T for up to 3 weights that read the same input (Q, K, V;
  // gate, up), rows split across the pool in ONE parallel region: decode passes through a barrier per
  // region, and one thread waiting there for the other cost 10% of llama-110m decode.
  // One token: the decode kernel (matvec) over row chunks taken dynamically (rows are independent, so
  // the result does not depend on which thread computes a chunk); several: the prefill kernel (matmul)
  // over a fixed split on multiples of kMatmulGrain rows.
  struct Proj {
    const WeightTensor* W;
    float* y;
  };
  auto project_all = [&](std::initializer_list<Proj> list, const float* x, std::int64_t n) {
    const Proj* ps = list.begin();
    const int np = static_cast<int>(list.size());
    const std::int64_t n_in = ps[0].W->n_in;
    const void* xin[3] = {x, x, x};
    std::size_t x_stride[3];
    // Activations converted once per distinct activation type (s.act holds up to three conversions).
    const std::size_t act_cap = s.act.size() / 3;
    for (int i = 0; i < np; ++i) {
      const kernels::TypeKernels& tk = k.types[static_cast<std::size_t>(ps[i].W->type)];
      G2C_CHECK(ps[i].W->n_in == n_in);
      x_stride[i] = static_cast<std::size_t>(n_in) * sizeof(float);
      if (!tk.from_float) continue;
      x_stride[i] = static_cast<std::size_t>(*row_bytes(tk.act_type, static_cast<std::uint64_t>(n_in)));
      int same = -1;
      for (int j = 0; j < i; ++j)
        if (k.types[static_cast<std::size_t>(ps[j].W->type)].act_type == tk.act_type && xin[j] != x) same = j;
      if (same >= 0) {
        xin[i] = xin[same];
        continue;
      }
      std::uint8_t* dst = s.act.data() + static_cast<std::size_t>(i) * act_cap;
      G2C_CHECK(x_stride[i] * static_cast<std::size_t>(n) <= act_cap);
      for (std::int64_t it = 0; it < n; ++it) tk.from_float(x + it * n_in, dst + it * x_stride[i], n_in);
      xin[i] = dst;
    }
    if (n == 1) {
      // Chunks of half a thread's share of each matrix (a chunk never spans two matrices): enough to
      // even out the threads, and long sequential runs for the prefetcher (1/8 shares measured 10%
      // slower on llama-110m Q8_0).
      std::int64_t chunk[3], first[4] = {0, 0, 0, 0};
      for (int i = 0; i < np; ++i) {
        chunk[i] = std::max<std::int64_t>(16, ps[i].W->n_out / (2 * pool.size()) / 16 * 16);
        first[i + 1] = first[i] + (ps[i].W->n_out + chunk[i] - 1) / chunk[i];
      }
      pool.parallel_for_dynamic(first[np], 1, [&](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t c = c0; c < c1; ++c) {
          int i = 0;
          while (c >= first[i + 1]) ++i;
          const WeightTensor& W = *ps[i].W;
          const std::int64_t r0 = (c - first[i]) * chunk[i], r1 = std::min(W.n_out, r0 + chunk[i]);
          k.types[static_cast<std::size_t>(W.type)].matvec(n_in, W.data, W.row_bytes, xin[i], ps[i].y, r0, r1);
        }
      });
    } else {
      pool.run([&](int ith, int nth) {
        for (int i = 0; i < np; ++i) {
          const WeightTensor& W = *ps[i].W;
          const auto [r0, r1] = ThreadPool::chunk(W.n_out, ith, nth, kMatmulGrain);
          if (r0 < r1)
            k.types[static_cast<std::size_t>(W.type)].matmul(n_in, W.data, W.row_bytes, xin[i], x_stride[i], n, ps[i].y,
                                                             W.n_out, r0, r1);
        }
      });
    }
  };
  auto project = [&](const WeightTensor& W, const float* x, std::int64_t n, float* y) { project_all({{&W, y}}, x, n); };
  auto add_bias = [&](const WeightTensor& b, float* y, std::int64_t n) {
    if (!b) return;
    for (std::int64_t it = 0; it < n; ++it) k.add(y + it * b.n_in, b.f32(), y + it * b.n_in, b.n_in);
  };
  auto norm = [&](const WeightTensor& g, const WeightTensor& b, const float* x, float* y, std::int64_t n) {
    for (std::int64_t it = 0; it < n; ++it) {
      if (hp.norm_type == NormType::kRms)
        k.rmsnorm(x + it * E, g.f32(), y + it * E, E, hp.norm_rms_eps);
      else
        k.layernorm(x + it * E, g.f32(), b ? b.f32() : nullptr, y + it * E, E, hp.norm_eps);
    }
  };
  auto cache_row = [&](AlignedBuffer<std::uint8_t>& c, std::int32_t seq, std::int64_t il, std::int32_t pos) {
    return c.data() + static_cast<std::size_t>(seq) * s.kv_seq +
           (static_cast<std::size_t>(il) * static_cast<std::size_t>(opts_.n_ctx) + static_cast<std::size_t>(pos)) *
               s.kv_row;
  };

  for (std::size_t b0 = 0; b0 < batch.size(); b0 += static_cast<std::size_t>(s.n_ub)) {
    const std::int64_t n = static_cast<std::int64_t>(std::min(batch.size() - b0, static_cast<std::size_t>(s.n_ub)));
    const BatchToken* tok = batch.data() + b0;
    const std::int32_t* slot = out_slot.data() + b0;

    // Embeddings (+ learned positions), one row dequantized per token.
    for (std::int64_t it = 0; it < n; ++it) {
      float* xr = s.x.data() + it * E;
      quant::dequantize_row(w.tok_embd.type, w.tok_embd.row(tok[it].token), xr, E);
      if (w.pos_embd) {
        float* tmp = s.xn.data() + it * E;
        quant::dequantize_row(w.pos_embd.type, w.pos_embd.row(tok[it].pos), tmp, E);
        k.add(xr, tmp, xr, E);
      }
    }
    // Attention chunks: runs of consecutive positions of one sequence, cut every s.att_tok tokens.
    s.att_chunks.clear();
    for (std::int64_t it = 0; it < n;) {
      std::int64_t e = it + 1;
      while (e < n && e - it < s.att_tok && tok[e].seq == tok[it].seq && tok[e].pos == tok[e - 1].pos + 1) ++e;
      s.att_chunks.push_back({it, e - it});
      it = e;
    }
    for (std::int64_t it = 0; it < n; ++it) s.att_kv[static_cast<std::size_t>(it)] = tok[it].pos + 1;
    if (hp.rope_type != RopeType::kNone)
      for (std::int64_t it = 0; it < n; ++it)
        k.rope_cache(tok[it].pos, hp.n_rot, hp.rope_freq_base, hp.rope_freq_scale,
                     w.rope_freqs ? w.rope_freqs.f32() : nullptr, s.rope_cs.data() + it * hp.n_rot);

    for (std::int64_t il = 0; il < hp.n_layer; ++il) {
      const LayerWeights& L = w.layers[static_cast<std::size_t>(il)];

      // ---- attention ----
      norm(L.attn_norm, L.attn_norm_b, s.x.data(), s.xn.data(), n);
      if (L.wqkv) {
        const std::int64_t nq = Eq + 2 * Ekv;
        project(L.wqkv, s.xn.data(), n, s.qkv.data());
        add_bias(L.bqkv, s.qkv.data(), n);
        for (std::int64_t it = 0; it < n; ++it) {
          const float* r = s.qkv.data() + it * nq;
          std::memcpy(s.q.data() + it * Eq, r, Eq * sizeof(float));
          std::memcpy(s.kx.data() + it * Ekv, r + Eq, Ekv * sizeof(float));
          std::memcpy(s.vx.data() + it * Ekv, r + Eq + Ekv, Ekv * sizeof(float));
        }
      } else {
        project_all({{&L.wq, s.q.data()}, {&L.wk, s.kx.data()}, {&L.wv, s.vx.data()}}, s.xn.data(), n);
        add_bias(L.bq, s.q.data(), n);
        add_bias(L.bk, s.kx.data(), n);
        add_bias(L.bv, s.vx.data(), n);
      }
      for (std::int64_t it = 0; it < n; ++it) {
        if (hp.rope_type != RopeType::kNone) {
          const float* cs = s.rope_cs.data() + it * hp.n_rot;
          k.rope(s.q.data() + it * Eq, hp.n_head, hd, hp.n_rot, cs, rope_mode);
          k.rope(s.kx.data() + it * Ekv, hp.n_head_kv, hd, hp.n_rot, cs, rope_mode);
        }
        k.kv_store[kvi](s.kx.data() + it * Ekv, cache_row(s.k_cache, tok[it].seq, il, tok[it].pos), Ekv);
        k.kv_store[kvi](s.vx.data() + it * Ekv, cache_row(s.v_cache, tok[it].seq, il, tok[it].pos), Ekv);
      }
      // Every (token, head) attends over its own sequence's rows 0..pos. A work item is (chunk, KV
      // head): the chunk's tokens times the group's query heads share each K/V row (attend_multi).
      // Items are independent and each writes only its own outputs, so taking them from a shared
      // counter (longest histories first) gives the same result for any thread count.
      const std::int64_t n_items = static_cast<std::int64_t>(s.att_chunks.size()) * hp.n_head_kv;
      std::atomic<std::int64_t> next_item{0};
      pool.run([&](int ith, int) {
        float* scratch = s.scores.data() + static_cast<std::size_t>(ith) * s.att_scratch;
        for (std::int64_t i = next_item.fetch_add(1, std::memory_order_relaxed); i < n_items;
             i = next_item.fetch_add(1, std::memory_order_relaxed)) {
          const std::int64_t item = n_items - 1 - i;
          const auto [t0, n_tok] = s.att_chunks[static_cast<std::size_t>(item / hp.n_head_kv)];
          const std::int64_t kvh = item % hp.n_head_kv;
          const std::size_t head_off = static_cast<std::size_t>(kvh * hd) * kv_elem;
          const std::int64_t q_off = t0 * Eq + kvh * group * hd;
          k.attend_multi[kvi](s.q.data() + q_off, Eq, cache_row(s.k_cache, tok[t0].seq, il, 0) + head_off,
                              cache_row(s.v_cache, tok[t0].seq, il, 0) + head_off, s.kv_row, s.att_kv.data() + t0,
                              n_tok, group, hd, kq_scale, scratch, s.att.data() + q_off, Eq);
        }
      });
      project(L.wo, s.att.data(), n, s.proj.data());
      add_bias(L.bo, s.proj.data(), n);
      for (std::int64_t it = 0; it < n; ++it)
        k.add(s.x.data() + it * E, s.proj.data() + it * E, s.x.data() + it * E, E);

      // ---- feed-forward ----
      norm(L.ffn_norm, L.ffn_norm_b, s.x.data(), s.xn.data(), n);
      if (hp.ffn_type == FfnType::kSwiglu) {
        project_all({{&L.ffn_gate, s.ff_a.data()}, {&L.ffn_up, s.ff_b.data()}}, s.xn.data(), n);
        for (std::int64_t it = 0; it < n; ++it)
          k.swiglu(s.ff_a.data() + it * hp.n_ff, s.ff_b.data() + it * hp.n_ff, s.ff_a.data() + it * hp.n_ff, hp.n_ff);
      } else {
        project(L.ffn_up, s.xn.data(), n, s.ff_a.data());
        add_bias(L.ffn_up_b, s.ff_a.data(), n);
        k.gelu(s.ff_a.data(), s.ff_a.data(), n * hp.n_ff);
      }
      project(L.ffn_down, s.ff_a.data(), n, s.proj.data());
      add_bias(L.ffn_down_b, s.proj.data(), n);
      for (std::int64_t it = 0; it < n; ++it)
        k.add(s.x.data() + it * E, s.proj.data() + it * E, s.x.data() + it * E, E);
    }

    // The cache now holds these tokens.
    for (std::int64_t it = 0; it < n; ++it) {
      const auto seq = static_cast<std::size_t>(tok[it].seq);
      auto& hist = s.history[seq];
      hist.resize(static_cast<std::size_t>(tok[it].pos));
      hist.push_back(tok[it].token);
      s.seq_len[seq] = tok[it].pos + 1;
    }

    // ---- outputs: final norm and vocabulary projection of the tokens that asked ----
    std::int64_t n_out = 0;
    bool contiguous = true;
    for (std::int64_t it = 0; it < n; ++it) {
      if (slot[it] < 0) continue;
      if (n_out > 0 && slot[it] != slot[it - 1] + 1) contiguous = false;
      std::memcpy(s.out_h.data() + n_out * E, s.x.data() + it * E, E * sizeof(float));
      ++n_out;
    }
    if (n_out == 0) continue;
    norm(w.output_norm, w.output_norm_b, s.out_h.data(), s.out_h.data(), n_out);
    std::int64_t j = 0;
    std::int32_t first = -1;
    for (std::int64_t it = 0; it < n; ++it) {
      if (slot[it] < 0) continue;
      if (first < 0) first = slot[it];
      if (opts_.embeddings)
        std::memcpy(s.hidden.data() + static_cast<std::size_t>(slot[it]) * E, s.out_h.data() + j * E,
                    E * sizeof(float));
      if (!contiguous) project(w.output, s.out_h.data() + j * E, 1, s.logits.data() + slot[it] * n_vocab);
      ++j;
    }
    if (contiguous)
      project(w.output, s.out_h.data(), n_out, s.logits.data() + static_cast<std::size_t>(first) * n_vocab);
  }
}

double token_logprob(std::span<const float> logits, std::int32_t id) {
  G2C_CHECK(id >= 0 && static_cast<std::size_t>(id) < logits.size());
  double mx = -INFINITY;
  for (float v : logits) mx = std::max(mx, static_cast<double>(v));
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
  return static_cast<double>(logits[static_cast<std::size_t>(id)]) - mx - std::log(sum);
}

}  // namespace g2c::model
