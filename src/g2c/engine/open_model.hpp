#pragma once
// A model and its tokenizer from one file. A GGUF carries its vocabulary; a llama2.c .bin does not, so
// its tokenizer is the file given, else tokenizer.bin or tok<n_vocab>.bin beside the checkpoint
// (tok512.bin for stories260K.bin: the names llama2.c's repository uses).
//
//   engine::OpenedModel m = engine::open_model("stories260K.bin");  // finds tok512.bin beside it
//   model::Context ctx(*m.model);
//   auto ids = m.tokenizer->encode("Once upon", /*add_special=*/true, /*parse_special=*/true);
#include <memory>
#include <string>

#include "g2c/model/model.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::engine {

struct OpenedModel {
  std::shared_ptr<const model::Model> model;
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer;  // null only under TokenizerNeed::kOptional
  std::string tokenizer_path;                             // the llama2.c tokenizer read; "" for a GGUF
};

// Whether a llama2.c checkpoint without a tokenizer (none given, none beside it) is an error. Token ids
// alone run the model, so a caller that never encodes or decodes text can do without one.
enum class TokenizerNeed { kRequired, kOptional };

// `tokenizer_path` is used only for a llama2.c checkpoint ("": look beside it); a GGUF's own vocabulary
// always wins. Throws IoError naming the tokenizer given, or every file looked for, when none is found
// and one is required; model and tokenizer load errors name their file.
OpenedModel open_model(const std::string& model_path, const std::string& tokenizer_path = {},
                       TokenizerNeed need = TokenizerNeed::kRequired);

}  // namespace g2c::engine
