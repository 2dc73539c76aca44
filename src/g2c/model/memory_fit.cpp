#include "g2c/model/memory_fit.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "g2c/core/cpu.hpp"
#include "g2c/core/error.hpp"
#include "g2c/gguf/types.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/model/weights.hpp"

namespace g2c::model {
namespace {

std::uint64_t kv_elem_bytes(KvType t) { return t == KvType::kF16 ? 2 : 4; }

std::int32_t resolve_ctx(std::int32_t n_ctx, std::int64_t n_ctx_train) {
  if (n_ctx < 0) throw InvalidArgument(fmt::format("fit: n_ctx must be >= 0, got {}", n_ctx));
  return n_ctx > 0 ? n_ctx : static_cast<std::int32_t>(std::min<std::int64_t>(n_ctx_train, 4096));
}

// The Context's buffers besides the KV cache (context.cpp: Context::Context), in bytes.
std::uint64_t scratch_bytes(const HParams& hp, bool fused_qkv, std::int32_t n_ctx, const FitOptions& o) {
  const auto ub = static_cast<std::uint64_t>(o.n_batch);
  const auto embd = static_cast<std::uint64_t>(hp.n_embd), q = static_cast<std::uint64_t>(hp.n_embd_q()),
             kv = static_cast<std::uint64_t>(hp.n_embd_kv()), ff = static_cast<std::uint64_t>(hp.n_ff);
  std::uint64_t floats =
      ub * (4 * embd /* x, xn, proj, out_h */ + 2 * q /* q, att */ + 2 * kv /* kx, vx */ + 2 * ff /* ff_a, ff_b */ +
            static_cast<std::uint64_t>(std::max<std::int64_t>(hp.n_rot, 2)));
  if (fused_qkv) floats += ub * (q + 2 * kv);
  const auto n = static_cast<std::uint64_t>(std::max({hp.n_embd, hp.n_ff, hp.n_embd_q()}));
  const std::uint64_t act = ub * 3 * (n * 2 + 64);
  const std::int64_t group = hp.n_head / std::max<std::int64_t>(hp.n_head_kv, 1);
  const std::int64_t att_tok = std::max<std::int64_t>(1, 32 / group);
  const int threads = o.threads > 0 ? o.threads : std::max(1, cpu_features().physical_cores);
  const std::uint64_t scores = static_cast<std::uint64_t>(threads) *
                               kernels::kernels().attend_multi_scratch(att_tok * group, hp.head_dim, n_ctx);
  const std::uint64_t logits = static_cast<std::uint64_t>(o.n_seq) * static_cast<std::uint64_t>(hp.n_vocab);
  return (floats + scores + logits) * 4 + act;
}

void fill_kv(MemoryFit& f, const HParams& hp, const FitOptions& o, bool fused_qkv) {
  if (o.n_seq < 1) throw InvalidArgument(fmt::format("fit: parallel sequences must be >= 1, got {}", o.n_seq));
  if (o.n_batch < 1) throw InvalidArgument(fmt::format("fit: n_batch must be >= 1, got {}", o.n_batch));
  f.n_layer = hp.n_layer, f.n_head_kv = hp.n_head_kv, f.head_dim = hp.head_dim, f.n_ctx_train = hp.n_ctx_train;
  f.n_ctx = resolve_ctx(o.n_ctx, hp.n_ctx_train);
  f.n_seq = o.n_seq;
  f.kv_type = o.kv_type;
  f.kv_bytes = kv_cache_bytes(f.n_ctx, hp.n_layer, hp.n_head_kv, hp.head_dim, o.kv_type, o.n_seq);
  f.scratch_bytes = scratch_bytes(hp, fused_qkv, f.n_ctx, o);
}

}  // namespace

std::uint64_t kv_cache_bytes(std::int64_t n_ctx, std::int64_t n_layer, std::int64_t n_head_kv, std::int64_t head_dim,
                             KvType kv_type, std::int64_t n_seq) {
  return 2ull * static_cast<std::uint64_t>(n_ctx) * static_cast<std::uint64_t>(n_layer) *
         static_cast<std::uint64_t>(n_head_kv) * static_cast<std::uint64_t>(head_dim) * kv_elem_bytes(kv_type) *
         static_cast<std::uint64_t>(n_seq);
}

MemoryFit fit_model_file(const std::string& path, const FitOptions& opts) {
  const std::unique_ptr<Model> m = Model::load(path);
  const HParams& hp = m->hparams();
  MemoryFit f;
  f.model = path;
  f.weights_exact = true;
  f.weight_bytes = m->weight_bytes();
  // The most common matrix type, by elements; and the parameter count.
  std::map<GgmlType, std::uint64_t> count;
  if (const gguf::File* g = m->gguf()) {
    for (const gguf::TensorInfo& t : g->tensors()) {
      f.n_params += static_cast<std::uint64_t>(t.n_elements());
      if (t.n_dims >= 2) count[t.type] += static_cast<std::uint64_t>(t.n_elements());
    }
  } else {
    f.n_params = f.weight_bytes / 4;  // llama2.c checkpoints are float32 throughout
    count[GgmlType::F32] = f.n_params;
  }
  f.weight_type =
      count.empty() ? "F32" : type_name(std::max_element(count.begin(), count.end(), [](const auto& a, const auto& b) {
                                          return a.second < b.second;
                                        })->first);
  const bool fused = !m->weights().layers.empty() && m->weights().layers[0].wqkv;
  fill_kv(f, hp, opts, fused);
  return f;
}

MemoryFit fit_shape(const SynthShape& s, FileType ftype, const FitOptions& opts) {
  const std::vector<TensorDesc> tensors = synth_tensors(s);
  MixInfo info;
  info.arch = s.arch, info.n_layer = s.n_layer, info.n_head = s.n_head, info.n_head_kv = s.n_head_kv;
  const std::vector<TensorChoice> choice = choose_tensor_types(tensors, info, ftype, /*pure=*/false);
  MemoryFit f;
  f.model = s.like;
  f.weight_type = file_type_name(ftype);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const TensorDesc& t = tensors[i];
    const std::uint64_t rows = static_cast<std::uint64_t>(t.ne[1] * t.ne[2] * t.ne[3]);
    const std::optional<std::uint64_t> rb = row_bytes(choice[i].type, static_cast<std::uint64_t>(t.ne[0]));
    if (!rb)
      throw InvalidArgument(
          fmt::format("fit: {} row of {} does not fit {}", t.name, t.ne[0], type_name(choice[i].type)));
    f.weight_bytes += *rb * rows;
    f.n_params += static_cast<std::uint64_t>(t.ne[0]) * rows;
  }
  HParams hp;
  hp.n_vocab = s.n_vocab, hp.n_embd = s.n_embd, hp.n_layer = s.n_layer, hp.n_ff = s.n_ff;
  hp.n_head = s.n_head, hp.n_head_kv = s.n_head_kv, hp.head_dim = s.n_embd / s.n_head;
  hp.n_ctx_train = s.n_ctx_train, hp.n_rot = hp.head_dim;
  fill_kv(f, hp, opts, /*fused_qkv=*/false);
  return f;
}

std::optional<std::uint64_t> available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) == 0) {
      std::istringstream ss(line.substr(13));
      std::uint64_t kib = 0;
      if (ss >> kib) return kib * 1024;
    }
  }
  return std::nullopt;
}

std::uint64_t mac_usable_bytes(std::uint64_t ram_bytes) {
  const std::uint64_t gib = 1ull << 30;
  return ram_bytes <= 36 * gib ? ram_bytes / 3 * 2 : ram_bytes / 4 * 3;
}

}  // namespace g2c::model
