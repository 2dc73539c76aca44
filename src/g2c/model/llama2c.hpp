#pragma once
// llama2.c checkpoints (karpathy/llama2.c export.py): legacy v0 (no magic; a negative vocab_size means
// an unshared classifier) and v1 (magic "ak42", 256-byte header), both fp32. v2 (int8 groups) is
// refused. The weights are used in place from the mapping, as a llama GGUF would be.
#include "g2c/core/mmap.hpp"
#include "g2c/model/model.hpp"
#include "g2c/model/weights.hpp"

namespace g2c::model {

// Fills hp (arch llama, NORM rope, base 10000, rms eps 1e-5) and w with views into `map`.
void load_llama2c(const MappedFile& map, const ModelOptions& opts, HParams& hp, Weights& w);

}  // namespace g2c::model
