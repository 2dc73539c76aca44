#include "g2c/model/synth.hpp"

#include <fmt/format.h>

#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "g2c/core/error.hpp"
#include "g2c/core/thread_pool.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/model/arch/arch.hpp"

namespace g2c::model {

namespace {

constexpr std::uint64_t kPhi = 0x9E3779B97F4A7C15ull;

std::uint64_t mix(std::uint64_t z) {  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::uint64_t fnv1a64(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Norm weights are drawn around 1 (1 + 0.02 z), every other tensor (norm biases too) around 0 (0.02 z).
bool is_norm(const std::string& name) { return name.find("_norm.weight") != std::string::npos; }

// GPT-2's byte -> unicode code point table (printable Latin-1 bytes map to themselves, the other 68 to
// U+0100.. in byte order), UTF-8 encoded: the alphabet of byte-level BPE token strings.
std::vector<std::string> byte_level_alphabet() {
  std::vector<std::string> out(256);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const int cp = self ? b : next++;
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {  // all code points here are < 0x800: two bytes
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    out[b] = s;
  }
  return out;
}

}  // namespace

void synth_row(std::uint64_t seed, const std::string& name, std::int64_t row, std::int64_t n, bool norm, float* dst) {
  const std::uint64_t key = mix(seed ^ mix(fnv1a64(name)));
  const std::uint64_t pairs = static_cast<std::uint64_t>((n + 1) / 2);
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (std::int64_t i = 0; i < n; i += 2) {
    const std::uint64_t c = static_cast<std::uint64_t>(row) * pairs + static_cast<std::uint64_t>(i / 2);
    const double u1 = static_cast<double>((mix(key + (2 * c + 1) * kPhi) >> 11) + 1) * 0x1.0p-53;
    const double u2 = static_cast<double>(mix(key + (2 * c + 2) * kPhi) >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double z0 = r * std::cos(kTwoPi * u2);
    dst[i] = static_cast<float>(norm ? 1.0 + 0.02 * z0 : 0.02 * z0);
    if (i + 1 < n) {
      const double z1 = r * std::sin(kTwoPi * u2);
      dst[i + 1] = static_cast<float>(norm ? 1.0 + 0.02 * z1 : 0.02 * z1);
    }
  }
}

std::vector<SynthShape> synth_shapes(bool hidden) {
  std::vector<SynthShape> v;
  {
    SynthShape s;
    s.like = "tinyllama-1.1b";
    s.arch = "llama";
    s.n_embd = 2048, s.n_layer = 22, s.n_head = 32, s.n_head_kv = 4, s.n_ff = 5632, s.n_vocab = 32000;
    s.n_ctx_train = 2048;
    s.note = "TinyLlama-1.1B: 2048d, 22 layers, 32 heads / 4 kv, n_ff 5632, vocab 32000 (llama SPM, copied)";
    v.push_back(s);
  }
  {
    SynthShape s;
    s.like = "llama-110m";
    s.arch = "llama";
    s.n_embd = 768, s.n_layer = 12, s.n_head = 12, s.n_head_kv = 12, s.n_ff = 2048, s.n_vocab = 32000;
    s.n_ctx_train = 1024;
    s.tied_output = true;
    s.note = "llama2.c stories110M: 768d, 12 layers, 12 heads, n_ff 2048, vocab 32000 (llama SPM, copied), tied output";
    v.push_back(s);
  }
  {
    SynthShape s;
    s.like = "qwen2.5-0.5b";
    s.arch = "qwen2";
    s.n_embd = 896, s.n_layer = 24, s.n_head = 14, s.n_head_kv = 2, s.n_ff = 4864, s.n_vocab = 151936;
    s.n_ctx_train = 32768;
    s.rope_freq_base = 1000000.0f;
    s.norm_rms_eps = 1e-6f;
    s.tied_output = true;
    s.vocab = SynthVocab::kSyntheticBpe;
    s.bpe_pre = "qwen2";
    s.specials = {{151643, "<|endoftext|>"}, {151644, "<|im_start|>"}, {151645, "<|im_end|>"}};
    s.bos_id = 151643, s.eos_id = 151645;
    s.note =
        "Qwen2.5-0.5B: 896d, 24 layers, 14 heads / 2 kv, n_ff 4864, QKV bias, tied; SYNTHETIC 151936-token "
        "BPE vocabulary (the real one is not available)";
    v.push_back(s);
  }
  {
    SynthShape s;
    s.like = "smollm2-135m";
    s.arch = "llama";
    s.n_embd = 576, s.n_layer = 30, s.n_head = 9, s.n_head_kv = 3, s.n_ff = 1536, s.n_vocab = 49152;
    s.n_ctx_train = 8192;
    s.rope_freq_base = 100000.0f;
    s.tied_output = true;
    s.vocab = SynthVocab::kSyntheticBpe;
    s.bpe_pre = "smollm";
    s.specials = {{0, "<|endoftext|>"}, {1, "<|im_start|>"}, {2, "<|im_end|>"}};
    s.bos_id = 1, s.eos_id = 2;
    s.note =
        "SmolLM2-135M: 576d, 30 layers, 9 heads / 3 kv, n_ff 1536, tied; SYNTHETIC 49152-token BPE vocabulary "
        "(the real one is not available)";
    v.push_back(s);
  }
  // The course's production shapes (seed module 16's memory table), from each model's published
  // config.json. Rope scaling (llama3-type, YaRN) is not written: these are for memory and speed.
  {
    SynthShape s;
    s.like = "llama-2-7b";
    s.arch = "llama";
    s.n_embd = 4096, s.n_layer = 32, s.n_head = 32, s.n_head_kv = 32, s.n_ff = 11008, s.n_vocab = 32000;
    s.n_ctx_train = 4096;
    s.note = "Llama-2-7B: 4096d, 32 layers, 32 heads (no GQA), n_ff 11008, vocab 32000 (llama SPM, copied)";
    v.push_back(s);
  }
  const auto llama3 = [](SynthShape s) {
    s.arch = "llama";
    s.n_vocab = 128256;
    s.rope_freq_base = 500000.0f;
    s.vocab = SynthVocab::kSyntheticBpe;
    s.bpe_pre = "llama-bpe";
    s.specials = {{128000, "<|begin_of_text|>"}, {128001, "<|end_of_text|>"}, {128009, "<|eot_id|>"}};
    s.bos_id = 128000, s.eos_id = 128009;
    return s;
  };
  {
    SynthShape s;
    s.like = "llama-3-8b";
    s.n_embd = 4096, s.n_layer = 32, s.n_head = 32, s.n_head_kv = 8, s.n_ff = 14336;
    s.n_ctx_train = 8192;
    s.note = "Llama-3-8B: 4096d, 32 layers, 32 heads / 8 kv, n_ff 14336; SYNTHETIC 128256-token BPE vocabulary";
    v.push_back(llama3(s));
  }
  {
    SynthShape s;
    s.like = "llama-3.2-1b";
    s.n_embd = 2048, s.n_layer = 16, s.n_head = 32, s.n_head_kv = 8, s.n_ff = 8192;
    s.n_ctx_train = 131072;
    s.tied_output = true;
    s.note = "Llama-3.2-1B: 2048d, 16 layers, 32 heads / 8 kv, n_ff 8192, tied; SYNTHETIC 128256-token BPE vocabulary";
    v.push_back(llama3(s));
  }
  {
    SynthShape s;
    s.like = "llama-3.2-3b";
    s.n_embd = 3072, s.n_layer = 28, s.n_head = 24, s.n_head_kv = 8, s.n_ff = 8192;
    s.n_ctx_train = 131072;
    s.tied_output = true;
    s.note = "Llama-3.2-3B: 3072d, 28 layers, 24 heads / 8 kv, n_ff 8192, tied; SYNTHETIC 128256-token BPE vocabulary";
    v.push_back(llama3(s));
  }
  const auto qwen25 = [](SynthShape s) {
    s.arch = "qwen2";
    s.n_ctx_train = 32768;
    s.rope_freq_base = 1000000.0f;
    s.norm_rms_eps = 1e-6f;
    s.vocab = SynthVocab::kSyntheticBpe;
    s.bpe_pre = "qwen2";
    s.specials = {{151643, "<|endoftext|>"}, {151644, "<|im_start|>"}, {151645, "<|im_end|>"}};
    s.bos_id = 151643, s.eos_id = 151645;
    return s;
  };
  {
    SynthShape s;
    s.like = "qwen2.5-1.5b";
    s.n_embd = 1536, s.n_layer = 28, s.n_head = 12, s.n_head_kv = 2, s.n_ff = 8960, s.n_vocab = 151936;
    s.tied_output = true;
    s.note = "Qwen2.5-1.5B: 1536d, 28 layers, 12 heads / 2 kv, n_ff 8960, QKV bias, tied; SYNTHETIC BPE vocabulary";
    v.push_back(qwen25(s));
  }
  {
    SynthShape s;
    s.like = "qwen2.5-7b";
    s.n_embd = 3584, s.n_layer = 28, s.n_head = 28, s.n_head_kv = 4, s.n_ff = 18944, s.n_vocab = 152064;
    s.note =
        "Qwen2.5-7B: 3584d, 28 layers, 28 heads / 4 kv, n_ff 18944, QKV bias; SYNTHETIC 152064-token BPE vocabulary";
    v.push_back(qwen25(s));
  }
  if (hidden) {
    SynthShape s;
    s.like = "tiny-test";
    s.arch = "llama";
    s.n_embd = 256, s.n_layer = 16, s.n_head = 8, s.n_head_kv = 2, s.n_ff = 512, s.n_vocab = 512;
    s.n_ctx_train = 256;
    s.vocab = SynthVocab::kSyntheticBpe;
    s.specials = {{0, "<|endoftext|>"}};
    s.bos_id = 0, s.eos_id = 0;
    s.note = "test shape: llama 256d, 16 layers, 8 heads / 2 kv, n_ff 512, vocab 512 (synthetic)";
    v.push_back(s);
    SynthShape o;
    o.like = "tiny-test-odd";
    o.arch = "qwen2";
    o.n_embd = 160, o.n_layer = 8, o.n_head = 5, o.n_head_kv = 1, o.n_ff = 384, o.n_vocab = 512;
    o.n_ctx_train = 256;
    o.rope_freq_base = 1000000.0f;
    o.norm_rms_eps = 1e-6f;
    o.tied_output = true;
    o.vocab = SynthVocab::kSyntheticBpe;
    o.bpe_pre = "qwen2";
    o.specials = {{511, "<|endoftext|>"}};
    o.bos_id = 511, o.eos_id = 511;
    o.note = "test shape: qwen2 160d, 8 layers, 5 heads / 1 kv, n_ff 384 (K-quant fallbacks), vocab 512 (synthetic)";
    v.push_back(o);
  }
  return v;
}

std::optional<SynthShape> synth_shape(std::string_view like) {
  for (auto& s : synth_shapes(true))
    if (s.like == like) return s;
  return std::nullopt;
}

std::vector<TensorDesc> synth_tensors(const SynthShape& s) {
  const ArchSpec* spec = find_arch(s.arch);
  if (!spec) throw InvalidArgument(fmt::format("shape {}: architecture '{}' is not in the table", s.like, s.arch));
  HParams hp;
  hp.n_vocab = s.n_vocab, hp.n_embd = s.n_embd, hp.n_layer = s.n_layer, hp.n_ff = s.n_ff;
  hp.n_head = s.n_head, hp.n_head_kv = s.n_head_kv, hp.head_dim = s.n_embd / s.n_head;
  hp.n_ctx_train = s.n_ctx_train, hp.n_rot = hp.head_dim;
  // The architecture's required tensors; an optional output.weight only when the output is not tied.
  auto wanted = [&](const TensorSpec& ts) {
    return spec->has(ts.id) == Has::kRequired || (ts.id == Tensor::kOutput && !s.tied_output);
  };
  std::vector<TensorDesc> t;
  auto add = [&](const TensorSpec& ts, std::int64_t il) {
    TensorDesc d;
    d.name = tensor_name(ts.id, il);
    d.n_dims = ts.is_vector() ? 1 : 2;
    d.ne = {dim_size(ts.n_in, hp), dim_size(ts.n_out, hp), 1, 1};
    t.push_back(std::move(d));
  };
  // Converter order: the global tensors before the blocks, every block, the global tensors after.
  bool blocks_done = false;
  for (const TensorSpec& ts : tensor_specs()) {
    if (!wanted(ts)) continue;
    if (!ts.per_layer) {
      add(ts, -1);
    } else if (!blocks_done) {
      blocks_done = true;
      for (std::int64_t il = 0; il < s.n_layer; ++il)
        for (const TensorSpec& ls : tensor_specs())
          if (ls.per_layer && wanted(ls)) add(ls, il);
    }
  }
  return t;
}

SyntheticVocab synthetic_bpe_vocab(const SynthShape& s) {
  SyntheticVocab v;
  const auto n = static_cast<std::size_t>(s.n_vocab);
  v.tokens.resize(n);
  v.token_type.assign(n, 1);  // NORMAL
  std::vector<bool> special(n, false);
  for (const auto& [id, text] : s.specials) {
    if (id < 0 || static_cast<std::size_t>(id) >= n)
      throw InvalidArgument(fmt::format("special token id {} outside vocab {}", id, n));
    v.tokens[id] = text;
    v.token_type[id] = 3;  // CONTROL
    special[id] = true;
  }
  // Normal tokens in id order: the 256 byte tokens, then token 256+k = normal[k / 256] + byte(k % 256)
  // with the merge "normal[k/256] byte(k%256)". Unique by construction (a prefix token plus one
  // code point; merged tokens have at least two code points).
  const std::vector<std::string> bytes = byte_level_alphabet();
  if (n < 256 + s.specials.size()) throw InvalidArgument(fmt::format("vocab {} too small for a byte-level BPE", n));
  std::vector<std::string> normal;
  normal.reserve(n);
  for (std::size_t id = 0; id < n; ++id) {
    if (special[id]) continue;
    const std::size_t k = normal.size();
    std::string tok;
    if (k < 256) {
      tok = bytes[k];
    } else {
      const std::string& a = normal[(k - 256) / 256];
      const std::string& b = bytes[(k - 256) % 256];
      tok = a + b;
      v.merges.push_back(a + " " + b);
    }
    v.tokens[id] = tok;
    normal.push_back(std::move(tok));
  }
  return v;
}

SynthReport synth_model(const SynthOptions& o, const std::string& out_path) {
  Timer timer;
  const SynthShape& s = o.shape;
  if (s.n_embd % s.n_head != 0)
    throw InvalidArgument(fmt::format("n_embd {} is not a multiple of n_head {}", s.n_embd, s.n_head));
  std::vector<TensorDesc> tensors = synth_tensors(s);
  MixInfo info;
  info.arch = s.arch;
  info.n_layer = s.n_layer, info.n_head = s.n_head, info.n_head_kv = s.n_head_kv;
  const std::vector<TensorChoice> choice = choose_tensor_types(tensors, info, o.ftype, o.pure);

  gguf::Writer w;
  const std::string& a = s.arch;
  w.set("general.architecture", gguf::Value::str(a));
  w.set("general.name", gguf::Value::str("g2c synth " + s.like + " (random weights)"));
  const ArchSpec& spec = *find_arch(a);  // synth_tensors checked it
  auto set_u32 = [&](Key k, std::int64_t v) { w.set(key_name(a, k), gguf::Value::u32(static_cast<std::uint32_t>(v))); };
  set_u32(Key::kContextLength, s.n_ctx_train);
  set_u32(Key::kEmbeddingLength, s.n_embd);
  set_u32(Key::kBlockCount, s.n_layer);
  set_u32(Key::kFeedForwardLength, s.n_ff);
  set_u32(Key::kHeadCount, s.n_head);
  set_u32(Key::kHeadCountKv, s.n_head_kv);
  w.set(key_name(a, spec.norm == NormType::kRms ? Key::kLayerNormRmsEps : Key::kLayerNormEps),
        gguf::Value::f32(s.norm_rms_eps));
  if (spec.rope != RopeType::kNone) {
    w.set(key_name(a, Key::kRopeFreqBase), gguf::Value::f32(s.rope_freq_base));
    set_u32(Key::kRopeDimensionCount, s.n_embd / s.n_head);
  }
  set_u32(Key::kVocabSize, s.n_vocab);
  w.set("general.file_type", gguf::Value::u32(static_cast<std::uint32_t>(o.ftype)));
  w.set("general.quantization_version", gguf::Value::u32(2));
  w.set("g2c.synth.like", gguf::Value::str(s.like));
  w.set("g2c.synth.seed", gguf::Value::u64(o.seed));

  if (s.vocab == SynthVocab::kCopied) {
    if (o.vocab_path.empty()) throw InvalidArgument(fmt::format("shape {} needs a vocabulary GGUF (--vocab)", s.like));
    auto vf = gguf::File::open(o.vocab_path);
    const gguf::Value* toks = vf->find("tokenizer.ggml.tokens");
    if (!toks || !toks->is_array()) throw FormatError(fmt::format("{}: no tokenizer.ggml.tokens array", o.vocab_path));
    if (static_cast<std::int64_t>(toks->size()) != s.n_vocab)
      throw InvalidArgument(
          fmt::format("{}: {} tokens, shape {} needs {}", o.vocab_path, toks->size(), s.like, s.n_vocab));
    for (const auto& kv : vf->kvs())
      if (kv.key.rfind("tokenizer.", 0) == 0) w.set(kv.key, kv.value);
  } else {
    SyntheticVocab v = synthetic_bpe_vocab(s);
    w.set("tokenizer.ggml.model", gguf::Value::str("gpt2"));
    w.set("tokenizer.ggml.pre", gguf::Value::str(s.bpe_pre));
    w.set("tokenizer.ggml.tokens", gguf::Value::array_str(std::move(v.tokens)));
    w.set("tokenizer.ggml.token_type", gguf::Value::array_i32(v.token_type));
    w.set("tokenizer.ggml.merges", gguf::Value::array_str(std::move(v.merges)));
    if (s.bos_id >= 0) w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(static_cast<std::uint32_t>(s.bos_id)));
    if (s.eos_id >= 0) w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(static_cast<std::uint32_t>(s.eos_id)));
    w.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(false));
  }

  SynthReport rep;
  std::unordered_map<std::string, std::size_t> index;
  std::uint64_t total_elems = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    TensorDesc& t = tensors[i];
    t.type = choice[i].type;
    w.add_tensor_streamed(t.name, t.type, std::span<const std::int64_t>(t.ne.data(), t.n_dims));
    index[t.name] = i;
    const std::uint64_t n_el = static_cast<std::uint64_t>(t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]);
    total_elems += n_el;
    rep.bytes += *row_bytes(t.type, static_cast<std::uint64_t>(t.ne[0])) * (n_el / static_cast<std::uint64_t>(t.ne[0]));
  }
  rep.n_params = total_elems;

  ThreadPool pool(o.threads);
  std::uint64_t done = 0;
  w.write(out_path, [&](const gguf::TensorInfo& info, std::span<std::uint8_t> dst) {
    const TensorDesc& t = tensors[index.at(info.name)];
    const bool norm = is_norm(t.name);
    const std::int64_t ne0 = t.ne[0], rows = t.ne[1] * t.ne[2] * t.ne[3];
    encode_rows(
        t.type, ne0, rows, [&](std::int64_t r, float* f) { synth_row(o.seed, t.name, r, ne0, norm, f); }, dst, pool,
        [&](std::int64_t r) {
          if (o.progress) o.progress(done + static_cast<std::uint64_t>(r * ne0), total_elems, t.name);
        });
    done += static_cast<std::uint64_t>(ne0 * rows);
  });
  rep.tensors = std::move(tensors);
  rep.seconds = timer.elapsed_ms() / 1e3;
  return rep;
}

}  // namespace g2c::model
