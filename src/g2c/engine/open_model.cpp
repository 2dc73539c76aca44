#include "g2c/engine/open_model.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <vector>

#include "g2c/core/error.hpp"

namespace g2c::engine {
namespace fs = std::filesystem;
namespace {

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// The tokenizer of a llama2.c checkpoint: the one given, else tokenizer.bin or tok<vocab>.bin beside it;
// "" when there is none and the caller can do without.
std::string find_llama2c_tokenizer(const std::string& model_path, std::int64_t n_vocab, const std::string& given,
                                   TokenizerNeed need) {
  if (!given.empty()) {
    if (!is_file(given)) throw IoError("tokenizer '" + given + "' not found");
    return given;
  }
  const fs::path dir = fs::path(model_path).parent_path();
  std::vector<std::string> tried;
  for (const std::string& file : {std::string("tokenizer.bin"), "tok" + std::to_string(n_vocab) + ".bin"}) {
    const fs::path p = dir / file;
    if (is_file(p)) return p.string();
    tried.push_back(p.string());
  }
  if (need == TokenizerNeed::kOptional) return {};
  throw IoError(fmt::format("llama2.c checkpoint {} needs its tokenizer: none at {} (pass the tokenizer path)",
                            model_path, fmt::join(tried, " or ")));
}

}  // namespace

OpenedModel open_model(const std::string& model_path, const std::string& tokenizer_path, TokenizerNeed need) {
  OpenedModel m;
  std::shared_ptr<const model::Model> model = model::Model::load(model_path);
  if (model->gguf() != nullptr) {
    m.tokenizer = tokenizer::Tokenizer::from_gguf(*model->gguf());
  } else {
    const std::int64_t n_vocab = model->hparams().n_vocab;
    m.tokenizer_path = find_llama2c_tokenizer(model_path, n_vocab, tokenizer_path, need);
    if (!m.tokenizer_path.empty())
      m.tokenizer = tokenizer::Tokenizer::from_llama2c(m.tokenizer_path, static_cast<int>(n_vocab));
  }
  m.model = std::move(model);
  return m;
}

}  // namespace g2c::engine
