// The forward pass: straight-line code over buffers allocated once per Context (llama2.c run.c
// `forward`, gemma.cpp TransformerLayer). Every operation goes through the kernel table.
//
// A batch is cut into passes of at most n_batch tokens. A pass of one token is forward_token (every
// projection a matvec); a larger one, whichever sequences its tokens belong to, is forward_batch (every
// projection a matmul, each weight read once for all tokens). Both run the same steps (Pass::layer):
// norm, Q/K/V, RoPE, K/V rows into each token's own sequence cache, causal attention of every (token,
// head) over its sequence's rows 0..pos (runs of consecutive tokens share each K/V row read:
// attend_multi), output projection, FFN. Only tokens that asked for logits go through the output norm
// and the vocabulary projection.
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
  s.att_scratch = s.k->attend_multi_scratch(s.att_tok * group, hp.head_dim, opts_.n_ctx);
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

// ---- the forward pass ------------------------------------------------------------------------------

namespace {

// y [n][W->n_out] = x [n][W->n_in] . W^T. Up to three projections that read the same x (Q, K, V; gate,
// up) are computed in ONE parallel region: a region ends in a barrier, and one thread waiting there for
// the other cost 10% of llama-110m decode.
struct Proj {
  const WeightTensor* W;
  float* y;
};
using Projs = std::initializer_list<Proj>;

}  // namespace

// The steps of one pass over at most n_ub tokens (a slice of a batch), over the Context's buffers.
// Pass::run strings them together; forward_token and forward_batch (below) differ only in how a
// projection is computed.
struct Context::Pass {
  Pass(Context& c, std::span<const BatchToken> tokens, std::span<const std::int32_t> slots)
      : hp(c.model_.hparams()),
        w(c.model_.weights()),
        s(*c.st_),
        k(*s.k),
        n_ctx(c.opts_.n_ctx),
        embeddings(c.opts_.embeddings),
        tok(tokens.data()),
        slot(slots.data()),
        n(static_cast<std::int64_t>(tokens.size())) {}

  const HParams& hp;
  const Weights& w;
  State& s;
  const kernels::KernelTable& k;
  const std::int32_t n_ctx;
  const bool embeddings;
  const BatchToken* tok;     // [n]
  const std::int32_t* slot;  // [n] output slot of each token, -1: no logits
  const std::int64_t n;

  // Activations converted to each weight's act_type, once per distinct type; s.act holds three copies.
  // xin[i] and stride[i] are the input of projection i.
  void convert(Projs ps, const float* x, std::int64_t n_rows, const void* xin[3], std::size_t stride[3]) const {
    const std::int64_t n_in = ps.begin()->W->n_in;
    const std::size_t cap = s.act.size() / 3;
    int i = 0;
    for (const Proj& p : ps) {
      const kernels::TypeKernels& tk = k.types[static_cast<std::size_t>(p.W->type)];
      G2C_CHECK(p.W->n_in == n_in);
      xin[i] = x;
      stride[i] = static_cast<std::size_t>(n_in) * sizeof(float);
      if (tk.from_float) {
        stride[i] = static_cast<std::size_t>(*row_bytes(tk.act_type, static_cast<std::uint64_t>(n_in)));
        int same = -1;
        for (int j = 0; j < i; ++j)
          if (k.types[static_cast<std::size_t>(ps.begin()[j].W->type)].act_type == tk.act_type && xin[j] != x) same = j;
        if (same >= 0) {
          xin[i] = xin[same];
        } else {
          std::uint8_t* dst = s.act.data() + static_cast<std::size_t>(i) * cap;
          G2C_CHECK(stride[i] * static_cast<std::size_t>(n_rows) <= cap);
          for (std::int64_t it = 0; it < n_rows; ++it) tk.from_float(x + it * n_in, dst + it * stride[i], n_in);
          xin[i] = dst;
        }
      }
      ++i;
    }
  }

  // One activation row x [W.n_in]: the decode kernel (matvec) over row chunks handed out dynamically,
  // half a thread's share of a matrix each (never spanning two matrices): enough to even out the threads,
  // long runs for the prefetcher (1/8 shares measured 10% slower on llama-110m Q8_0). Rows are
  // independent, so which thread computes a chunk never changes the result.
  void project_rows(Projs ps, const float* x) const {
    const void* xin[3];
    std::size_t stride[3];
    convert(ps, x, 1, xin, stride);
    const Proj* p = ps.begin();
    const int np = static_cast<int>(ps.size());
    std::int64_t chunk[3], first[4] = {0, 0, 0, 0};
    for (int i = 0; i < np; ++i) {
      chunk[i] = std::max<std::int64_t>(16, p[i].W->n_out / (2 * s.pool.size()) / 16 * 16);
      first[i + 1] = first[i] + (p[i].W->n_out + chunk[i] - 1) / chunk[i];
    }
    s.pool.parallel_for_dynamic(first[np], 1, [&](std::int64_t c0, std::int64_t c1) {
      for (std::int64_t c = c0; c < c1; ++c) {
        int i = 0;
        while (c >= first[i + 1]) ++i;
        const WeightTensor& W = *p[i].W;
        const std::int64_t r0 = (c - first[i]) * chunk[i], r1 = std::min(W.n_out, r0 + chunk[i]);
        k.types[static_cast<std::size_t>(W.type)].matvec(W.n_in, W.data, W.row_bytes, xin[i], p[i].y, r0, r1);
      }
    });
  }

  // A few activation rows (a decode step of several sequences, up to kernels::kSmallBatch):
  // matmul_small, one weight row at a time dotted with every token, over row chunks handed out as
  // project_rows does, so the weights stream from memory once per step as in a single-token decode.
  void project_small(Projs ps, const float* x, std::int64_t n_rows) const {
    const void* xin[3];
    std::size_t stride[3];
    convert(ps, x, n_rows, xin, stride);
    const Proj* p = ps.begin();
    const int np = static_cast<int>(ps.size());
    std::int64_t chunk[3], first[4] = {0, 0, 0, 0};
    for (int i = 0; i < np; ++i) {
      chunk[i] = std::max<std::int64_t>(16, p[i].W->n_out / (2 * s.pool.size()) / 16 * 16);
      first[i + 1] = first[i] + (p[i].W->n_out + chunk[i] - 1) / chunk[i];
    }
    s.pool.parallel_for_dynamic(first[np], 1, [&](std::int64_t c0, std::int64_t c1) {
      for (std::int64_t c = c0; c < c1; ++c) {
        int i = 0;
        while (c >= first[i + 1]) ++i;
        const WeightTensor& W = *p[i].W;
        const std::int64_t r0 = (c - first[i]) * chunk[i], r1 = std::min(W.n_out, r0 + chunk[i]);
        k.types[static_cast<std::size_t>(W.type)].matmul_small(W.n_in, W.data, W.row_bytes, xin[i], stride[i], n_rows,
                                                               p[i].y, W.n_out, r0, r1);
      }
    });
  }

  // Several activation rows x [n_rows][W.n_in]: the prefill kernel (matmul), which reads each weight row
  // once for all of them; rows split between threads at fixed multiples of kMatmulGrain. Up to
  // kSmallBatch rows take project_small.
  void project_panels(Projs ps, const float* x, std::int64_t n_rows) const {
    if (n_rows <= kernels::kSmallBatch) {
      project_small(ps, x, n_rows);
      return;
    }
    const void* xin[3];
    std::size_t stride[3];
    convert(ps, x, n_rows, xin, stride);
    const Proj* p = ps.begin();
    const int np = static_cast<int>(ps.size());
    s.pool.run([&](int ith, int nth) {
      for (int i = 0; i < np; ++i) {
        const WeightTensor& W = *p[i].W;
        const auto [r0, r1] = ThreadPool::chunk(W.n_out, ith, nth, kMatmulGrain);
        if (r0 < r1)
          k.types[static_cast<std::size_t>(W.type)].matmul(W.n_in, W.data, W.row_bytes, xin[i], stride[i], n_rows,
                                                           p[i].y, W.n_out, r0, r1);
      }
    });
  }

  void add_bias(const WeightTensor& b, float* y) const {  // y [n][b.n_in] += b
    if (!b) return;
    for (std::int64_t it = 0; it < n; ++it) k.add(y + it * b.n_in, b.f32(), y + it * b.n_in, b.n_in);
  }
  void add_residual() const {  // x += proj, [n][n_embd]
    const std::int64_t E = hp.n_embd;
    for (std::int64_t it = 0; it < n; ++it) k.add(s.x.data() + it * E, s.proj.data() + it * E, s.x.data() + it * E, E);
  }
  void norm(const WeightTensor& g, const WeightTensor& b, const float* x, float* y, std::int64_t n_rows) const {
    const std::int64_t E = hp.n_embd;
    for (std::int64_t it = 0; it < n_rows; ++it) {
      if (hp.norm_type == NormType::kRms)
        k.rmsnorm(x + it * E, g.f32(), y + it * E, E, hp.norm_rms_eps);
      else
        k.layernorm(x + it * E, g.f32(), b ? b.f32() : nullptr, y + it * E, E, hp.norm_eps);
    }
  }
  std::uint8_t* cache_row(AlignedBuffer<std::uint8_t>& c, std::int32_t seq, std::int64_t il, std::int32_t pos) const {
    return c.data() + static_cast<std::size_t>(seq) * s.kv_seq +
           (static_cast<std::size_t>(il) * static_cast<std::size_t>(n_ctx) + static_cast<std::size_t>(pos)) * s.kv_row;
  }

  // x = token embedding (+ learned position), one row dequantized per token.
  void embed() const {
    const std::int64_t E = hp.n_embd;
    for (std::int64_t it = 0; it < n; ++it) {
      float* xr = s.x.data() + it * E;
      quant::dequantize_row(w.tok_embd.type, w.tok_embd.row(tok[it].token), xr, E);
      if (w.pos_embd) {
        float* tmp = s.xn.data() + it * E;
        quant::dequantize_row(w.pos_embd.type, w.pos_embd.row(tok[it].pos), tmp, E);
        k.add(xr, tmp, xr, E);
      }
    }
  }

  // Per pass, not per layer: RoPE (cos, sin) of each token's position, how many cache rows each token
  // attends over (pos + 1), and the attention work chunks: runs of consecutive positions of one
  // sequence, cut every s.att_tok tokens.
  void plan_positions() const {
    s.att_chunks.clear();
    for (std::int64_t it = 0; it < n;) {
      std::int64_t e = it + 1;
      while (e < n && e - it < s.att_tok && tok[e].seq == tok[it].seq && tok[e].pos == tok[e - 1].pos + 1) ++e;
      s.att_chunks.push_back({it, e - it});
      it = e;
    }
    for (std::int64_t it = 0; it < n; ++it) s.att_kv[static_cast<std::size_t>(it)] = tok[it].pos + 1;
    if (hp.rope_type == RopeType::kNone) return;
    for (std::int64_t it = 0; it < n; ++it)
      k.rope_cache(tok[it].pos, hp.n_rot, hp.rope_freq_base, hp.rope_freq_scale,
                   w.rope_freqs ? w.rope_freqs.f32() : nullptr, s.rope_cs.data() + it * hp.n_rot);
  }

  // Q, K, V of every token: s.q [n][n_embd_q], s.kx and s.vx [n][n_embd_kv], biased, before RoPE.
  template <class Project>
  void qkv(const LayerWeights& L, Project project) const {
    const std::int64_t Eq = hp.n_embd_q(), Ekv = hp.n_embd_kv();
    if (!L.wqkv) {
      project({{&L.wq, s.q.data()}, {&L.wk, s.kx.data()}, {&L.wv, s.vx.data()}}, s.xn.data());
      add_bias(L.bq, s.q.data());
      add_bias(L.bk, s.kx.data());
      add_bias(L.bv, s.vx.data());
      return;
    }
    // Fused QKV: rows Q, then K, then V of one matrix, split after the bias.
    project({{&L.wqkv, s.qkv.data()}}, s.xn.data());
    add_bias(L.bqkv, s.qkv.data());
    for (std::int64_t it = 0; it < n; ++it) {
      const float* r = s.qkv.data() + it * (Eq + 2 * Ekv);
      std::memcpy(s.q.data() + it * Eq, r, Eq * sizeof(float));
      std::memcpy(s.kx.data() + it * Ekv, r + Eq, Ekv * sizeof(float));
      std::memcpy(s.vx.data() + it * Ekv, r + Eq + Ekv, Ekv * sizeof(float));
    }
  }

  // RoPE on q and k, then k and v into each token's own sequence cache at its position.
  void rope_and_store(std::int64_t il) const {
    const std::int64_t Eq = hp.n_embd_q(), Ekv = hp.n_embd_kv();
    const int kvi = kernels::kv_index(s.kv_type);
    const auto mode = hp.rope_type == RopeType::kNeox ? kernels::RopeMode::kNeox : kernels::RopeMode::kNorm;
    for (std::int64_t it = 0; it < n; ++it) {
      if (hp.rope_type != RopeType::kNone) {
        const float* cs = s.rope_cs.data() + it * hp.n_rot;
        k.rope(s.q.data() + it * Eq, hp.n_head, hp.head_dim, hp.n_rot, cs, mode);
        k.rope(s.kx.data() + it * Ekv, hp.n_head_kv, hp.head_dim, hp.n_rot, cs, mode);
      }
      k.kv_store[kvi](s.kx.data() + it * Ekv, cache_row(s.k_cache, tok[it].seq, il, tok[it].pos), Ekv);
      k.kv_store[kvi](s.vx.data() + it * Ekv, cache_row(s.v_cache, tok[it].seq, il, tok[it].pos), Ekv);
    }
  }

  // s.att [n][n_embd_q]: every (token, head) attends over its own sequence's rows 0..pos. A work item is
  // (chunk, KV head): the chunk's tokens times the group's query heads share each K/V row
  // (attend_multi). Items are independent and each writes only its own outputs, so taking them from a
  // shared counter (longest histories first) gives the same result for any thread count.
  void attend(std::int64_t il) const {
    const std::int64_t Eq = hp.n_embd_q(), hd = hp.head_dim, group = hp.n_head / hp.n_head_kv;
    const int kvi = kernels::kv_index(s.kv_type);
    const std::size_t kv_elem = s.kv_type == GgmlType::F16 ? 2 : 4;
    const float kq_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const std::int64_t n_items = static_cast<std::int64_t>(s.att_chunks.size()) * hp.n_head_kv;
    std::atomic<std::int64_t> next_item{0};
    s.pool.run([&](int ith, int) {
      float* scratch = s.scores.data() + static_cast<std::size_t>(ith) * s.att_scratch;
      for (std::int64_t i = next_item.fetch_add(1, std::memory_order_relaxed); i < n_items;
           i = next_item.fetch_add(1, std::memory_order_relaxed)) {
        const std::int64_t item = n_items - 1 - i;
        const auto [t0, n_tok] = s.att_chunks[static_cast<std::size_t>(item / hp.n_head_kv)];
        const std::int64_t kvh = item % hp.n_head_kv;
        const std::size_t head_off = static_cast<std::size_t>(kvh * hd) * kv_elem;
        const std::int64_t q_off = t0 * Eq + kvh * group * hd;
        k.attend_multi[kvi](s.q.data() + q_off, Eq, cache_row(s.k_cache, tok[t0].seq, il, 0) + head_off,
                            cache_row(s.v_cache, tok[t0].seq, il, 0) + head_off, s.kv_row, s.att_kv.data() + t0, n_tok,
                            group, hd, kq_scale, scratch, s.att.data() + q_off, Eq);
      }
    });
  }

  // One transformer block over the pass's tokens; `project(projs, x)` is project_rows or project_panels.
  template <class Project>
  void layer(std::int64_t il, Project project) const {
    const LayerWeights& L = w.layers[static_cast<std::size_t>(il)];
    // attention
    norm(L.attn_norm, L.attn_norm_b, s.x.data(), s.xn.data(), n);
    qkv(L, project);
    rope_and_store(il);
    attend(il);
    project({{&L.wo, s.proj.data()}}, s.att.data());
    add_bias(L.bo, s.proj.data());
    add_residual();
    // feed-forward: SwiGLU (gate, up) or GELU (up, bias)
    norm(L.ffn_norm, L.ffn_norm_b, s.x.data(), s.xn.data(), n);
    if (hp.ffn_type == FfnType::kSwiglu) {
      project({{&L.ffn_gate, s.ff_a.data()}, {&L.ffn_up, s.ff_b.data()}}, s.xn.data());
      for (std::int64_t it = 0; it < n; ++it)
        k.swiglu(s.ff_a.data() + it * hp.n_ff, s.ff_b.data() + it * hp.n_ff, s.ff_a.data() + it * hp.n_ff, hp.n_ff);
    } else {
      project({{&L.ffn_up, s.ff_a.data()}}, s.xn.data());
      add_bias(L.ffn_up_b, s.ff_a.data());
      k.gelu(s.ff_a.data(), s.ff_a.data(), n * hp.n_ff);
    }
    project({{&L.ffn_down, s.proj.data()}}, s.ff_a.data());
    add_bias(L.ffn_down_b, s.proj.data());
    add_residual();
  }

  // The whole pass, with `project(projs, x)` = project_rows or project_panels.
  template <class Project>
  void run(Project project) const {
    embed();
    plan_positions();
    for (std::int64_t il = 0; il < hp.n_layer; ++il) layer(il, project);
    remember();
    outputs();
  }

  // The cache now holds these tokens (history feeds the naive recompute).
  void remember() const {
    for (std::int64_t it = 0; it < n; ++it) {
      auto& hist = s.history[static_cast<std::size_t>(tok[it].seq)];
      hist.resize(static_cast<std::size_t>(tok[it].pos));
      hist.push_back(tok[it].token);
      s.seq_len[static_cast<std::size_t>(tok[it].seq)] = tok[it].pos + 1;
    }
  }

  // Final norm and vocabulary projection of the tokens that asked for logits, written at their output
  // slots: s.logits [n_outputs][n_vocab], s.hidden [n_outputs][n_embd]. Their rows are gathered into
  // s.out_h first; consecutive slots (every prompt token, or the last one) take one projection, other
  // layouts one matvec per token.
  void outputs() const {
    const std::int64_t E = hp.n_embd, n_vocab = hp.n_vocab;
    std::int64_t n_out = 0;
    bool consecutive = true;
    for (std::int64_t it = 0; it < n; ++it) {
      if (slot[it] < 0) continue;
      if (n_out > 0 && slot[it] != slot[it - 1] + 1) consecutive = false;
      std::memcpy(s.out_h.data() + n_out * E, s.x.data() + it * E, E * sizeof(float));
      ++n_out;
    }
    if (n_out == 0) return;
    norm(w.output_norm, w.output_norm_b, s.out_h.data(), s.out_h.data(), n_out);
    std::int64_t j = 0;
    for (std::int64_t it = 0; it < n; ++it) {
      if (slot[it] < 0) continue;
      float* h = s.out_h.data() + j++ * E;
      if (embeddings) std::memcpy(s.hidden.data() + static_cast<std::size_t>(slot[it]) * E, h, E * sizeof(float));
      if (!consecutive || n_out == 1) project_rows({{&w.output, s.logits.data() + slot[it] * n_vocab}}, h);
    }
    if (consecutive && n_out > 1) {
      const std::int32_t first = *std::find_if(slot, slot + n, [](std::int32_t v) { return v >= 0; });
      project_panels({{&w.output, s.logits.data() + static_cast<std::size_t>(first) * n_vocab}}, s.out_h.data(), n_out);
    }
  }
};

// A single-token step (decode of one sequence): every projection is a matrix x vector product.
void Context::forward_token(const BatchToken& t, std::int32_t slot) {
  const Pass p(*this, {&t, 1}, {&slot, 1});
  p.run([&p](Projs ps, const float* x) { p.project_rows(ps, x); });
}

// A multi-token batch (a prompt, several sequences' decode steps, or both): every projection is a
// matrix x matrix product that reads each weight row once for all the tokens.
void Context::forward_batch(std::span<const BatchToken> tokens, std::span<const std::int32_t> slots) {
  const Pass p(*this, tokens, slots);
  p.run([&p](Projs ps, const float* x) { p.project_panels(ps, x, p.n); });
}

// Passes of at most n_ub tokens, each on the path its size calls for.
void Context::run(std::span<const BatchToken> batch, std::span<const std::int32_t> out_slot) {
  const auto n_ub = static_cast<std::size_t>(st_->n_ub);
  for (std::size_t b0 = 0; b0 < batch.size(); b0 += n_ub) {
    const std::size_t n = std::min(batch.size() - b0, n_ub);
    if (n == 1)
      forward_token(batch[b0], out_slot[b0]);
    else
      forward_batch(batch.subspan(b0, n), out_slot.subspan(b0, n));
  }
}

}  // namespace g2c::model
