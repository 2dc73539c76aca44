// g2c quantize against llama.cpp's llama-quantize (c392e50, native build at /work/llama.cpp, not part
// of the repo):
//  (1) --pure on ../shared/quant-goldens/random-llama-f32.gguf reproduces llama-quantize's bytes for
//      every tensor of all 12 golden files (sha256_quantized in goldens.json), simple and K types;
//  (2) decoding input: quantizing each golden file back to F32 gives llama.cpp's dequantized bits;
//  (3) the mixture rules (no --pure) pick the same type for every tensor as llama-quantize did on the
//      same input, for 13 recipes on a 16-layer llama and 9 on a qwen2 shape whose rows are not
//      multiples of 256 (fallbacks). The expected table below was made by hand, once, with:
//
//        g2c synth --like tiny-test --type F32 -o tiny.gguf          # sha256 0353727263...766f17f
//        g2c synth --like tiny-test-odd --type F32 -o odd.gguf       # sha256 0778db096a...ca151a24
//        llama-quantize tiny.gguf l_tiny_<R>.gguf <R> 1              # R in the table
//        llama-quantize odd.gguf l_odd_<R>.gguf <R> 1
//
//      and reading each tensor's "converting to <type>" line (and the "using fallback quantization"
//      warning, marked *) of llama-quantize's log; docs/benchmarks.md (quantize section) has a full log. Only
//      tensors whose type differs from the recipe's base type are listed (norms and biases stay F32).
//      On the odd shape llama.cpp gives Q2_K/Q3_K tensors IQ4_NL, which g2c refuses to encode.
//  (4) end to end: the tiny-test Q4_K_M file is byte-identical to llama-quantize's
//      (sha256 2f5eb785e3...5782ac), which needs the synth generator to be bit-stable too.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "g2c/core/error.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/model/quantize.hpp"
#include "g2c/model/synth.hpp"
#include "quant/sha256.hpp"

namespace g2c::model {
namespace {

using nlohmann::json;
using test::sha256_hex;

const std::string kGoldenDir = std::string(G2C_SHARED_DIR) + "/quant-goldens/";

// The mixture table made with llama-quantize (see the top of this file). "@shape recipe n_tensors" starts
// a record; then name=TYPE for every tensor not of the base type, "*" when llama.cpp reported a fallback.
constexpr const char* kLlamaQuantizeTypes = R"(
@tiny Q4_K_M 147
output.weight=Q6_K blk.0.attn_v.weight=Q6_K blk.0.ffn_down.weight=Q6_K blk.1.attn_v.weight=Q6_K
blk.1.ffn_down.weight=Q6_K blk.4.attn_v.weight=Q6_K blk.4.ffn_down.weight=Q6_K blk.7.attn_v.weight=Q6_K
blk.7.ffn_down.weight=Q6_K blk.10.attn_v.weight=Q6_K blk.10.ffn_down.weight=Q6_K blk.13.attn_v.weight=Q6_K
blk.13.ffn_down.weight=Q6_K blk.14.attn_v.weight=Q6_K blk.14.ffn_down.weight=Q6_K blk.15.attn_v.weight=Q6_K
blk.15.ffn_down.weight=Q6_K
@tiny Q5_K_M 147
output.weight=Q6_K blk.0.attn_v.weight=Q6_K blk.0.ffn_down.weight=Q6_K blk.1.attn_v.weight=Q6_K
blk.1.ffn_down.weight=Q6_K blk.4.attn_v.weight=Q6_K blk.4.ffn_down.weight=Q6_K blk.7.attn_v.weight=Q6_K
blk.7.ffn_down.weight=Q6_K blk.10.attn_v.weight=Q6_K blk.10.ffn_down.weight=Q6_K blk.13.attn_v.weight=Q6_K
blk.13.ffn_down.weight=Q6_K blk.14.attn_v.weight=Q6_K blk.14.ffn_down.weight=Q6_K blk.15.attn_v.weight=Q6_K
blk.15.ffn_down.weight=Q6_K
@tiny Q3_K_M 147
output.weight=Q6_K blk.0.attn_output.weight=Q4_K blk.0.attn_v.weight=Q5_K blk.0.ffn_down.weight=Q5_K
blk.1.attn_output.weight=Q4_K blk.1.attn_v.weight=Q5_K blk.1.ffn_down.weight=Q4_K
blk.2.attn_output.weight=Q4_K blk.2.attn_v.weight=Q4_K blk.2.ffn_down.weight=Q4_K
blk.3.attn_output.weight=Q4_K blk.3.attn_v.weight=Q4_K blk.3.ffn_down.weight=Q4_K
blk.4.attn_output.weight=Q4_K blk.4.attn_v.weight=Q4_K blk.4.ffn_down.weight=Q4_K
blk.5.attn_output.weight=Q4_K blk.5.attn_v.weight=Q4_K blk.5.ffn_down.weight=Q4_K
blk.6.attn_output.weight=Q4_K blk.6.attn_v.weight=Q4_K blk.6.ffn_down.weight=Q4_K
blk.7.attn_output.weight=Q4_K blk.7.attn_v.weight=Q4_K blk.7.ffn_down.weight=Q4_K
blk.8.attn_output.weight=Q4_K blk.8.attn_v.weight=Q4_K blk.8.ffn_down.weight=Q4_K
blk.9.attn_output.weight=Q4_K blk.9.attn_v.weight=Q4_K blk.9.ffn_down.weight=Q4_K
blk.10.attn_output.weight=Q4_K blk.10.attn_v.weight=Q4_K blk.10.ffn_down.weight=Q4_K
blk.11.attn_output.weight=Q4_K blk.11.attn_v.weight=Q4_K blk.11.ffn_down.weight=Q4_K
blk.12.attn_output.weight=Q4_K blk.12.attn_v.weight=Q4_K blk.12.ffn_down.weight=Q4_K
blk.13.attn_output.weight=Q4_K blk.13.attn_v.weight=Q4_K blk.13.ffn_down.weight=Q4_K
blk.14.attn_output.weight=Q4_K blk.14.attn_v.weight=Q4_K blk.14.ffn_down.weight=Q4_K
blk.15.attn_output.weight=Q4_K blk.15.attn_v.weight=Q4_K blk.15.ffn_down.weight=Q4_K
@tiny Q4_K_S 147
output.weight=Q6_K blk.0.attn_v.weight=Q5_K blk.0.ffn_down.weight=Q5_K blk.1.attn_v.weight=Q5_K
blk.1.ffn_down.weight=Q5_K blk.2.attn_v.weight=Q5_K blk.3.attn_v.weight=Q5_K
@tiny Q5_K_S 147
output.weight=Q6_K
@tiny Q3_K_S 147
output.weight=Q6_K
@tiny Q3_K_L 147
output.weight=Q6_K blk.0.attn_output.weight=Q5_K blk.0.attn_v.weight=Q5_K blk.0.ffn_down.weight=Q5_K
blk.1.attn_output.weight=Q5_K blk.1.attn_v.weight=Q5_K blk.1.ffn_down.weight=Q5_K
blk.2.attn_output.weight=Q5_K blk.2.attn_v.weight=Q5_K blk.2.ffn_down.weight=Q5_K
blk.3.attn_output.weight=Q5_K blk.3.attn_v.weight=Q5_K blk.3.ffn_down.weight=Q5_K
blk.4.attn_output.weight=Q5_K blk.4.attn_v.weight=Q5_K blk.4.ffn_down.weight=Q5_K
blk.5.attn_output.weight=Q5_K blk.5.attn_v.weight=Q5_K blk.5.ffn_down.weight=Q5_K
blk.6.attn_output.weight=Q5_K blk.6.attn_v.weight=Q5_K blk.6.ffn_down.weight=Q5_K
blk.7.attn_output.weight=Q5_K blk.7.attn_v.weight=Q5_K blk.7.ffn_down.weight=Q5_K
blk.8.attn_output.weight=Q5_K blk.8.attn_v.weight=Q5_K blk.8.ffn_down.weight=Q5_K
blk.9.attn_output.weight=Q5_K blk.9.attn_v.weight=Q5_K blk.9.ffn_down.weight=Q5_K
blk.10.attn_output.weight=Q5_K blk.10.attn_v.weight=Q5_K blk.10.ffn_down.weight=Q5_K
blk.11.attn_output.weight=Q5_K blk.11.attn_v.weight=Q5_K blk.11.ffn_down.weight=Q5_K
blk.12.attn_output.weight=Q5_K blk.12.attn_v.weight=Q5_K blk.12.ffn_down.weight=Q5_K
blk.13.attn_output.weight=Q5_K blk.13.attn_v.weight=Q5_K blk.13.ffn_down.weight=Q5_K
blk.14.attn_output.weight=Q5_K blk.14.attn_v.weight=Q5_K blk.14.ffn_down.weight=Q5_K
blk.15.attn_output.weight=Q5_K blk.15.attn_v.weight=Q5_K blk.15.ffn_down.weight=Q5_K
@tiny Q2_K 147
output.weight=Q6_K blk.0.attn_output.weight=Q3_K blk.0.attn_v.weight=Q4_K blk.0.ffn_down.weight=Q3_K
blk.1.attn_output.weight=Q3_K blk.1.attn_v.weight=Q4_K blk.1.ffn_down.weight=Q3_K
blk.2.attn_output.weight=Q3_K blk.2.attn_v.weight=Q4_K blk.2.ffn_down.weight=Q3_K
blk.3.attn_output.weight=Q3_K blk.3.attn_v.weight=Q4_K blk.3.ffn_down.weight=Q3_K
blk.4.attn_output.weight=Q3_K blk.4.attn_v.weight=Q4_K blk.4.ffn_down.weight=Q3_K
blk.5.attn_output.weight=Q3_K blk.5.attn_v.weight=Q4_K blk.5.ffn_down.weight=Q3_K
blk.6.attn_output.weight=Q3_K blk.6.attn_v.weight=Q4_K blk.6.ffn_down.weight=Q3_K
blk.7.attn_output.weight=Q3_K blk.7.attn_v.weight=Q4_K blk.7.ffn_down.weight=Q3_K
blk.8.attn_output.weight=Q3_K blk.8.attn_v.weight=Q4_K blk.8.ffn_down.weight=Q3_K
blk.9.attn_output.weight=Q3_K blk.9.attn_v.weight=Q4_K blk.9.ffn_down.weight=Q3_K
blk.10.attn_output.weight=Q3_K blk.10.attn_v.weight=Q4_K blk.10.ffn_down.weight=Q3_K
blk.11.attn_output.weight=Q3_K blk.11.attn_v.weight=Q4_K blk.11.ffn_down.weight=Q3_K
blk.12.attn_output.weight=Q3_K blk.12.attn_v.weight=Q4_K blk.12.ffn_down.weight=Q3_K
blk.13.attn_output.weight=Q3_K blk.13.attn_v.weight=Q4_K blk.13.ffn_down.weight=Q3_K
blk.14.attn_output.weight=Q3_K blk.14.attn_v.weight=Q4_K blk.14.ffn_down.weight=Q3_K
blk.15.attn_output.weight=Q3_K blk.15.attn_v.weight=Q4_K blk.15.ffn_down.weight=Q3_K
@tiny Q6_K 147
@tiny Q4_0 147
output.weight=Q6_K
@tiny Q8_0 147
@tiny Q5_1 147
output.weight=Q6_K
@tiny F16 147
@odd Q4_K_M 98
token_embd.weight=Q8_0 blk.0.attn_k.weight=Q5_0* blk.0.attn_output.weight=Q5_0* blk.0.attn_q.weight=Q5_0*
blk.0.attn_v.weight=Q8_0* blk.0.ffn_down.weight=Q8_0* blk.0.ffn_gate.weight=Q5_0* blk.0.ffn_up.weight=Q5_0*
blk.1.attn_k.weight=Q5_0* blk.1.attn_output.weight=Q5_0* blk.1.attn_q.weight=Q5_0* blk.1.attn_v.weight=Q5_0*
blk.1.ffn_down.weight=Q5_0* blk.1.ffn_gate.weight=Q5_0* blk.1.ffn_up.weight=Q5_0* blk.2.attn_k.weight=Q5_0*
blk.2.attn_output.weight=Q5_0* blk.2.attn_q.weight=Q5_0* blk.2.attn_v.weight=Q5_0* blk.2.ffn_down.weight=Q5_0*
blk.2.ffn_gate.weight=Q5_0* blk.2.ffn_up.weight=Q5_0* blk.3.attn_k.weight=Q5_0* blk.3.attn_output.weight=Q5_0*
blk.3.attn_q.weight=Q5_0* blk.3.attn_v.weight=Q8_0* blk.3.ffn_down.weight=Q8_0* blk.3.ffn_gate.weight=Q5_0*
blk.3.ffn_up.weight=Q5_0* blk.4.attn_k.weight=Q5_0* blk.4.attn_output.weight=Q5_0* blk.4.attn_q.weight=Q5_0*
blk.4.attn_v.weight=Q5_0* blk.4.ffn_down.weight=Q5_0* blk.4.ffn_gate.weight=Q5_0* blk.4.ffn_up.weight=Q5_0*
blk.5.attn_k.weight=Q5_0* blk.5.attn_output.weight=Q5_0* blk.5.attn_q.weight=Q5_0* blk.5.attn_v.weight=Q5_0*
blk.5.ffn_down.weight=Q5_0* blk.5.ffn_gate.weight=Q5_0* blk.5.ffn_up.weight=Q5_0* blk.6.attn_k.weight=Q5_0*
blk.6.attn_output.weight=Q5_0* blk.6.attn_q.weight=Q5_0* blk.6.attn_v.weight=Q8_0* blk.6.ffn_down.weight=Q8_0*
blk.6.ffn_gate.weight=Q5_0* blk.6.ffn_up.weight=Q5_0* blk.7.attn_k.weight=Q5_0* blk.7.attn_output.weight=Q5_0*
blk.7.attn_q.weight=Q5_0* blk.7.attn_v.weight=Q8_0* blk.7.ffn_down.weight=Q8_0* blk.7.ffn_gate.weight=Q5_0*
blk.7.ffn_up.weight=Q5_0*
@odd Q5_K_M 98
token_embd.weight=Q8_0 blk.0.attn_k.weight=Q5_1* blk.0.attn_output.weight=Q5_1* blk.0.attn_q.weight=Q5_1*
blk.0.attn_v.weight=Q8_0* blk.0.ffn_down.weight=Q8_0* blk.0.ffn_gate.weight=Q5_1* blk.0.ffn_up.weight=Q5_1*
blk.1.attn_k.weight=Q5_1* blk.1.attn_output.weight=Q5_1* blk.1.attn_q.weight=Q5_1* blk.1.attn_v.weight=Q5_1*
blk.1.ffn_down.weight=Q5_1* blk.1.ffn_gate.weight=Q5_1* blk.1.ffn_up.weight=Q5_1* blk.2.attn_k.weight=Q5_1*
blk.2.attn_output.weight=Q5_1* blk.2.attn_q.weight=Q5_1* blk.2.attn_v.weight=Q5_1* blk.2.ffn_down.weight=Q5_1*
blk.2.ffn_gate.weight=Q5_1* blk.2.ffn_up.weight=Q5_1* blk.3.attn_k.weight=Q5_1* blk.3.attn_output.weight=Q5_1*
blk.3.attn_q.weight=Q5_1* blk.3.attn_v.weight=Q8_0* blk.3.ffn_down.weight=Q8_0* blk.3.ffn_gate.weight=Q5_1*
blk.3.ffn_up.weight=Q5_1* blk.4.attn_k.weight=Q5_1* blk.4.attn_output.weight=Q5_1* blk.4.attn_q.weight=Q5_1*
blk.4.attn_v.weight=Q5_1* blk.4.ffn_down.weight=Q5_1* blk.4.ffn_gate.weight=Q5_1* blk.4.ffn_up.weight=Q5_1*
blk.5.attn_k.weight=Q5_1* blk.5.attn_output.weight=Q5_1* blk.5.attn_q.weight=Q5_1* blk.5.attn_v.weight=Q5_1*
blk.5.ffn_down.weight=Q5_1* blk.5.ffn_gate.weight=Q5_1* blk.5.ffn_up.weight=Q5_1* blk.6.attn_k.weight=Q5_1*
blk.6.attn_output.weight=Q5_1* blk.6.attn_q.weight=Q5_1* blk.6.attn_v.weight=Q8_0* blk.6.ffn_down.weight=Q8_0*
blk.6.ffn_gate.weight=Q5_1* blk.6.ffn_up.weight=Q5_1* blk.7.attn_k.weight=Q5_1* blk.7.attn_output.weight=Q5_1*
blk.7.attn_q.weight=Q5_1* blk.7.attn_v.weight=Q8_0* blk.7.ffn_down.weight=Q8_0* blk.7.ffn_gate.weight=Q5_1*
blk.7.ffn_up.weight=Q5_1*
@odd Q4_K_S 98
token_embd.weight=Q8_0 blk.0.attn_k.weight=Q5_0* blk.0.attn_output.weight=Q5_0* blk.0.attn_q.weight=Q5_0*
blk.0.attn_v.weight=Q5_1* blk.0.ffn_down.weight=Q5_1* blk.0.ffn_gate.weight=Q5_0* blk.0.ffn_up.weight=Q5_0*
blk.1.attn_k.weight=Q5_0* blk.1.attn_output.weight=Q5_0* blk.1.attn_q.weight=Q5_0* blk.1.attn_v.weight=Q5_1*
blk.1.ffn_down.weight=Q5_0* blk.1.ffn_gate.weight=Q5_0* blk.1.ffn_up.weight=Q5_0* blk.2.attn_k.weight=Q5_0*
blk.2.attn_output.weight=Q5_0* blk.2.attn_q.weight=Q5_0* blk.2.attn_v.weight=Q5_1* blk.2.ffn_down.weight=Q5_0*
blk.2.ffn_gate.weight=Q5_0* blk.2.ffn_up.weight=Q5_0* blk.3.attn_k.weight=Q5_0* blk.3.attn_output.weight=Q5_0*
blk.3.attn_q.weight=Q5_0* blk.3.attn_v.weight=Q5_1* blk.3.ffn_down.weight=Q5_0* blk.3.ffn_gate.weight=Q5_0*
blk.3.ffn_up.weight=Q5_0* blk.4.attn_k.weight=Q5_0* blk.4.attn_output.weight=Q5_0* blk.4.attn_q.weight=Q5_0*
blk.4.attn_v.weight=Q5_0* blk.4.ffn_down.weight=Q5_0* blk.4.ffn_gate.weight=Q5_0* blk.4.ffn_up.weight=Q5_0*
blk.5.attn_k.weight=Q5_0* blk.5.attn_output.weight=Q5_0* blk.5.attn_q.weight=Q5_0* blk.5.attn_v.weight=Q5_0*
blk.5.ffn_down.weight=Q5_0* blk.5.ffn_gate.weight=Q5_0* blk.5.ffn_up.weight=Q5_0* blk.6.attn_k.weight=Q5_0*
blk.6.attn_output.weight=Q5_0* blk.6.attn_q.weight=Q5_0* blk.6.attn_v.weight=Q5_0* blk.6.ffn_down.weight=Q5_0*
blk.6.ffn_gate.weight=Q5_0* blk.6.ffn_up.weight=Q5_0* blk.7.attn_k.weight=Q5_0* blk.7.attn_output.weight=Q5_0*
blk.7.attn_q.weight=Q5_0* blk.7.attn_v.weight=Q5_0* blk.7.ffn_down.weight=Q5_0* blk.7.ffn_gate.weight=Q5_0*
blk.7.ffn_up.weight=Q5_0*
@odd Q5_K_S 98
token_embd.weight=Q8_0 blk.0.attn_k.weight=Q5_1* blk.0.attn_output.weight=Q5_1* blk.0.attn_q.weight=Q5_1*
blk.0.attn_v.weight=Q5_1* blk.0.ffn_down.weight=Q5_1* blk.0.ffn_gate.weight=Q5_1* blk.0.ffn_up.weight=Q5_1*
blk.1.attn_k.weight=Q5_1* blk.1.attn_output.weight=Q5_1* blk.1.attn_q.weight=Q5_1* blk.1.attn_v.weight=Q5_1*
blk.1.ffn_down.weight=Q5_1* blk.1.ffn_gate.weight=Q5_1* blk.1.ffn_up.weight=Q5_1* blk.2.attn_k.weight=Q5_1*
blk.2.attn_output.weight=Q5_1* blk.2.attn_q.weight=Q5_1* blk.2.attn_v.weight=Q5_1* blk.2.ffn_down.weight=Q5_1*
blk.2.ffn_gate.weight=Q5_1* blk.2.ffn_up.weight=Q5_1* blk.3.attn_k.weight=Q5_1* blk.3.attn_output.weight=Q5_1*
blk.3.attn_q.weight=Q5_1* blk.3.attn_v.weight=Q5_1* blk.3.ffn_down.weight=Q5_1* blk.3.ffn_gate.weight=Q5_1*
blk.3.ffn_up.weight=Q5_1* blk.4.attn_k.weight=Q5_1* blk.4.attn_output.weight=Q5_1* blk.4.attn_q.weight=Q5_1*
blk.4.attn_v.weight=Q5_1* blk.4.ffn_down.weight=Q5_1* blk.4.ffn_gate.weight=Q5_1* blk.4.ffn_up.weight=Q5_1*
blk.5.attn_k.weight=Q5_1* blk.5.attn_output.weight=Q5_1* blk.5.attn_q.weight=Q5_1* blk.5.attn_v.weight=Q5_1*
blk.5.ffn_down.weight=Q5_1* blk.5.ffn_gate.weight=Q5_1* blk.5.ffn_up.weight=Q5_1* blk.6.attn_k.weight=Q5_1*
blk.6.attn_output.weight=Q5_1* blk.6.attn_q.weight=Q5_1* blk.6.attn_v.weight=Q5_1* blk.6.ffn_down.weight=Q5_1*
blk.6.ffn_gate.weight=Q5_1* blk.6.ffn_up.weight=Q5_1* blk.7.attn_k.weight=Q5_1* blk.7.attn_output.weight=Q5_1*
blk.7.attn_q.weight=Q5_1* blk.7.attn_v.weight=Q5_1* blk.7.ffn_down.weight=Q5_1* blk.7.ffn_gate.weight=Q5_1*
blk.7.ffn_up.weight=Q5_1*
@odd Q6_K 98
token_embd.weight=Q8_0 blk.0.attn_k.weight=Q8_0* blk.0.attn_output.weight=Q8_0* blk.0.attn_q.weight=Q8_0*
blk.0.attn_v.weight=Q8_0* blk.0.ffn_down.weight=Q8_0* blk.0.ffn_gate.weight=Q8_0* blk.0.ffn_up.weight=Q8_0*
blk.1.attn_k.weight=Q8_0* blk.1.attn_output.weight=Q8_0* blk.1.attn_q.weight=Q8_0* blk.1.attn_v.weight=Q8_0*
blk.1.ffn_down.weight=Q8_0* blk.1.ffn_gate.weight=Q8_0* blk.1.ffn_up.weight=Q8_0* blk.2.attn_k.weight=Q8_0*
blk.2.attn_output.weight=Q8_0* blk.2.attn_q.weight=Q8_0* blk.2.attn_v.weight=Q8_0* blk.2.ffn_down.weight=Q8_0*
blk.2.ffn_gate.weight=Q8_0* blk.2.ffn_up.weight=Q8_0* blk.3.attn_k.weight=Q8_0* blk.3.attn_output.weight=Q8_0*
blk.3.attn_q.weight=Q8_0* blk.3.attn_v.weight=Q8_0* blk.3.ffn_down.weight=Q8_0* blk.3.ffn_gate.weight=Q8_0*
blk.3.ffn_up.weight=Q8_0* blk.4.attn_k.weight=Q8_0* blk.4.attn_output.weight=Q8_0* blk.4.attn_q.weight=Q8_0*
blk.4.attn_v.weight=Q8_0* blk.4.ffn_down.weight=Q8_0* blk.4.ffn_gate.weight=Q8_0* blk.4.ffn_up.weight=Q8_0*
blk.5.attn_k.weight=Q8_0* blk.5.attn_output.weight=Q8_0* blk.5.attn_q.weight=Q8_0* blk.5.attn_v.weight=Q8_0*
blk.5.ffn_down.weight=Q8_0* blk.5.ffn_gate.weight=Q8_0* blk.5.ffn_up.weight=Q8_0* blk.6.attn_k.weight=Q8_0*
blk.6.attn_output.weight=Q8_0* blk.6.attn_q.weight=Q8_0* blk.6.attn_v.weight=Q8_0* blk.6.ffn_down.weight=Q8_0*
blk.6.ffn_gate.weight=Q8_0* blk.6.ffn_up.weight=Q8_0* blk.7.attn_k.weight=Q8_0* blk.7.attn_output.weight=Q8_0*
blk.7.attn_q.weight=Q8_0* blk.7.attn_v.weight=Q8_0* blk.7.ffn_down.weight=Q8_0* blk.7.ffn_gate.weight=Q8_0*
blk.7.ffn_up.weight=Q8_0*
@odd Q4_0 98
token_embd.weight=Q8_0*
@odd Q8_0 98
@odd Q5_1 98
token_embd.weight=Q8_0*
@odd F16 98
)";

struct MixRecord {
  std::string shape, recipe;
  std::size_t n_tensors = 0;
  std::map<std::string, std::string> types;  // name -> TYPE or TYPE*
};

std::vector<MixRecord> mix_records() {
  std::vector<MixRecord> v;
  std::istringstream in(kLlamaQuantizeTypes);
  std::string tok;
  while (in >> tok) {
    if (tok[0] == '@') {
      v.emplace_back();
      v.back().shape = tok.substr(1);
      in >> v.back().recipe >> v.back().n_tensors;
    } else {
      const auto eq = tok.find('=');
      v.back().types[tok.substr(0, eq)] = tok.substr(eq + 1);
    }
  }
  return v;
}

std::string shape_name(const std::string& s) { return s == "tiny" ? "tiny-test" : "tiny-test-odd"; }

MixInfo mix_info(const SynthShape& s) {
  MixInfo m;
  m.arch = s.arch;
  m.n_layer = s.n_layer, m.n_head = s.n_head, m.n_head_kv = s.n_head_kv;
  return m;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("g2c_quantize_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

const json& goldens() {
  static const json j = [] {
    std::ifstream in(kGoldenDir + "goldens.json");
    if (!in) throw std::runtime_error("cannot open goldens.json");
    return json::parse(in);
  }();
  return j;
}

// "MOSTLY_Q4_K_M (15)" -> 15
std::int64_t ftype_number(const std::string& s) { return std::stoll(s.substr(s.find('(') + 1)); }

TEST(FileType, NamesAndLlamaFtypeNumbers) {
  // llama_ftype values (include/llama.h, formats.md 5.4), not ggml type ids.
  EXPECT_EQ(static_cast<int>(*file_type_from_name("Q4_K_M")), 15);
  EXPECT_EQ(static_cast<int>(*file_type_from_name("q8_0")), 7);
  EXPECT_EQ(static_cast<int>(*file_type_from_name("Q5_0")), 8);
  EXPECT_EQ(static_cast<int>(*file_type_from_name("BF16")), 32);
  EXPECT_EQ(*file_type_from_name("Q4_K"), FileType::MOSTLY_Q4_K_M);  // llama-quantize's alias
  EXPECT_EQ(file_type_base(FileType::MOSTLY_Q3_K_L), GgmlType::Q3_K);
  EXPECT_FALSE(file_type_from_name("IQ2_XXS").has_value());
  EXPECT_FALSE(file_type_from_name("Q4_K_X").has_value());
}

TEST(FileType, TableNamesEveryLlamaFtype) {
  // The goldens' labels are llama.cpp's own (gguf-dump of llama-quantize's output).
  for (const json& f : goldens().at("files")) {
    const std::string want = f.at("general.file_type");
    const FileTypeInfo* info = find_file_type(ftype_number(want));
    ASSERT_NE(info, nullptr) << want;
    EXPECT_EQ(std::string(info->label) + " (" + std::to_string(info->id) + ")", want);
  }
  // Types g2c cannot produce are still named, and never parsed as a recipe.
  const FileTypeInfo* iq = find_file_type(19);
  ASSERT_NE(iq, nullptr);
  EXPECT_STREQ(iq->label, "MOSTLY_IQ2_XXS");
  EXPECT_FALSE(iq->base.has_value());
  ASSERT_NE(find_file_type(1024), nullptr);
  EXPECT_STREQ(find_file_type(1024)->label, "GUESSED");
  EXPECT_EQ(find_file_type(4), nullptr);  // removed from llama.h
  EXPECT_EQ(find_file_type(-1), nullptr);
  EXPECT_FALSE(file_type_from_name("TQ1_0").has_value());
  // Ids are unique, and the producible rows are exactly the FileType values with their names.
  std::map<std::uint32_t, int> seen;
  std::vector<std::string> producible;
  for (const FileTypeInfo& e : file_type_table()) {
    EXPECT_EQ(++seen[e.id], 1) << e.label;
    if (!e.base) continue;
    producible.emplace_back(e.recipe);
    EXPECT_EQ(static_cast<std::uint32_t>(*file_type_from_name(e.recipe)), e.id);
    EXPECT_STREQ(file_type_name(static_cast<FileType>(e.id)), e.recipe);
    EXPECT_EQ(std::string(e.label), (e.id == 0 ? "ALL_" : "MOSTLY_") + std::string(e.recipe));
  }
  EXPECT_EQ(producible, file_type_names());
  EXPECT_EQ(producible.size(), 17u);
}

// (1) --pure reproduces every golden file's tensor bytes; metadata as llama-quantize writes it.
TEST(QuantizeModel, PureReproducesLlamaQuantizeGoldens) {
  TempDir dir;
  int checked = 0;
  for (const json& f : goldens().at("files")) {
    const std::string type_arg = f.at("type_arg");
    SCOPED_TRACE(type_arg);
    const auto ft = file_type_from_name(type_arg);
    ASSERT_TRUE(ft.has_value());
    QuantizeOptions o;
    o.ftype = *ft;
    o.pure = true;
    o.threads = 2;
    const std::string out = dir / (type_arg + ".gguf");
    quantize_model(kGoldenDir + "random-llama-f32.gguf", out, o);
    auto g = gguf::File::open(out);
    EXPECT_EQ(g->get_int("general.file_type"), ftype_number(f.at("general.file_type")));
    EXPECT_EQ(g->get_int("general.quantization_version"), 2);
    const auto& recs = f.at("tensors");
    ASSERT_EQ(g->tensors().size(), recs.size());
    for (const json& rec : recs) {
      const gguf::TensorInfo* t = g->find_tensor(rec.at("name").get<std::string>());
      ASSERT_NE(t, nullptr) << rec.at("name");
      EXPECT_EQ(static_cast<int>(t->type), rec.at("type_id").get<int>()) << t->name;
      EXPECT_EQ(sha256_hex(t->data, t->n_bytes), rec.at("sha256_quantized").get<std::string>()) << t->name;
      ++checked;
    }
    // The whole file too: llama-quantize's metadata order, tensor order and padding.
    const std::string bytes = read_file(out);
    EXPECT_EQ(sha256_hex(bytes.data(), bytes.size()), f.at("file_sha256").get<std::string>());
  }
  EXPECT_EQ(checked, 12 * 12);
}

// (2) Any decodable input: each golden file back to F32 gives llama.cpp's dequantized float bits.
TEST(QuantizeModel, RequantizeToF32MatchesLlamaDequantization) {
  TempDir dir;
  for (const json& f : goldens().at("files")) {
    const std::string file = f.at("file");
    SCOPED_TRACE(file);
    QuantizeOptions o;
    o.ftype = FileType::ALL_F32;
    o.threads = 2;
    quantize_model(kGoldenDir + file, dir / "f32.gguf", o);
    auto g = gguf::File::open(dir / "f32.gguf");
    EXPECT_EQ(g->get_int("general.file_type"), 0);
    for (const json& rec : f.at("tensors")) {
      const gguf::TensorInfo* t = g->find_tensor(rec.at("name").get<std::string>());
      ASSERT_NE(t, nullptr);
      ASSERT_EQ(t->type, GgmlType::F32);
      EXPECT_EQ(sha256_hex(t->data, t->n_bytes), rec.at("sha256_dequantized_f32").get<std::string>()) << t->name;
    }
  }
}

// (3) The mixture: every tensor's type as llama-quantize chose it.
TEST(QuantizeMixture, SameTypesAsLlamaQuantize) {
  const auto records = mix_records();
  ASSERT_EQ(records.size(), 22u);
  for (const MixRecord& r : records) {
    SCOPED_TRACE(r.shape + " " + r.recipe);
    const SynthShape s = *synth_shape(shape_name(r.shape));
    const auto tensors = synth_tensors(s);
    ASSERT_EQ(tensors.size(), r.n_tensors);
    const FileType ft = *file_type_from_name(r.recipe);
    const auto choice = choose_tensor_types(tensors, mix_info(s), ft, /*pure=*/false);
    std::size_t listed = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const TensorDesc& t = tensors[i];
      std::string want = is_quantizable(t) ? type_name(file_type_base(ft)) : "F32";
      if (auto it = r.types.find(t.name); it != r.types.end()) want = it->second, ++listed;
      const std::string got = std::string(type_name(choice[i].type)) + (choice[i].fallback ? "*" : "");
      EXPECT_EQ(got, want) << t.name;
    }
    EXPECT_EQ(listed, r.types.size()) << "table names a tensor the shape does not have";
  }
}

TEST(QuantizeMixture, RefusesIq4NlFallback) {
  const SynthShape s = *synth_shape("tiny-test-odd");
  for (const char* r : {"Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L"})
    EXPECT_THROW(choose_tensor_types(synth_tensors(s), mix_info(s), *file_type_from_name(r), false), UnsupportedError)
        << r;
  // --pure with a K type on rows of 160 cannot work at all.
  EXPECT_THROW(choose_tensor_types(synth_tensors(s), mix_info(s), FileType::MOSTLY_Q4_K_M, true), InvalidArgument);
}

TEST(QuantizeMixture, LlamaOrderAndEligibility) {
  std::vector<TensorDesc> t(5);
  t[0].name = "blk.10.attn_q.weight";
  t[1].name = "blk.2.ffn_up.weight";
  t[2].name = "token_embd.weight";
  t[3].name = "blk.2.attn_k.weight";
  t[4].name = "output.weight";
  for (auto& d : t) d.n_dims = 2, d.ne = {256, 4, 1, 1};
  const auto order = llama_tensor_order(t);
  EXPECT_EQ(order, (std::vector<std::size_t>{4, 2, 3, 1, 0}));  // non-layer first, then layer 2 < 10 numerically
  TensorDesc one{"blk.0.attn_q.weight", 2, {256, 1, 1, 1}, GgmlType::F32};
  EXPECT_FALSE(is_quantizable(one));  // ggml_n_dims ignores trailing 1s
  TensorDesc norm{"blk.0.attn_norm.weight", 2, {256, 4, 1, 1}, GgmlType::F32};
  EXPECT_FALSE(is_quantizable(norm));
  TensorDesc bias{"blk.0.attn_q.bias", 2, {256, 4, 1, 1}, GgmlType::F32};
  EXPECT_FALSE(is_quantizable(bias));
}

// (4) synth + quantize end to end, against llama-quantize's file for the same input.
TEST(QuantizeModel, TinyTestQ4KMIsByteIdenticalToLlamaQuantize) {
  TempDir dir;
  SynthOptions so;
  so.shape = *synth_shape("tiny-test");
  so.seed = 0;
  so.threads = 2;
  synth_model(so, dir / "tiny.gguf");
  const std::string src = read_file(dir / "tiny.gguf");
  EXPECT_EQ(sha256_hex(src.data(), src.size()), "035372726327dfe5dbf953ac18b89805d8652db2c6f6f1c47e00d2a07766f17f");
  QuantizeOptions o;
  o.ftype = FileType::MOSTLY_Q4_K_M;
  o.threads = 2;
  std::uint64_t last_done = 0, last_total = 1;
  o.progress = [&](std::uint64_t d, std::uint64_t t, const std::string&) {
    EXPECT_GE(d, last_done);
    last_done = d, last_total = t;
  };
  const QuantizeReport rep = quantize_model(dir / "tiny.gguf", dir / "q.gguf", o);
  EXPECT_EQ(last_done, last_total);
  EXPECT_EQ(rep.tensors.size(), 147u);
  const std::string out = read_file(dir / "q.gguf");
  EXPECT_EQ(sha256_hex(out.data(), out.size()), "2f5eb785e30cd87ae698af90185c27235e7f460d96fe99cace883defe15782ac");
  // No temporary file is left beside the outputs.
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path)) (void)e, ++n;
  EXPECT_EQ(n, 2);
}

TEST(QuantizeModel, RejectsBadInputWithoutLeavingAFile) {
  TempDir dir;
  QuantizeOptions o;
  o.ftype = FileType::MOSTLY_Q4_0;
  EXPECT_THROW(quantize_model(dir / "missing.gguf", dir / "out.gguf", o), IoError);
  EXPECT_FALSE(std::filesystem::exists(dir / "out.gguf"));
}

}  // namespace
}  // namespace g2c::model
