// `g2c tokenize --model F [--ids|--pieces|--json] [--no-bos] [--no-parse-special] TEXT|--file F`.
// Defaults follow llama-tokenize: BOS (and EOS where the model asks) added, special pieces parsed.
// Unlike llama-tokenize, TEXT is taken literally (no "\n" escape processing), like its --no-escape.
#include <fmt/core.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/tokenizer/tokenizer.hpp"
#include "g2c/tokenizer/unicode.hpp"

namespace g2c::app {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string file;
  bool ids = false;
  bool pieces = false;
  bool json = false;
  bool no_bos = false;
  bool no_parse_special = false;
};

// A GGUF by its magic; anything else is taken as a llama2.c tokenizer.bin (token count read to EOF).
std::unique_ptr<tokenizer::Tokenizer> load_tokenizer(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw IoError("cannot open '" + path + "'");
  char magic[4] = {};
  const std::size_t got = std::fread(magic, 1, 4, f);
  std::fclose(f);
  if (got == 4 && std::string(magic, 4) == "GGUF") {
    auto file = gguf::File::open(path);
    return tokenizer::Tokenizer::from_gguf(*file);
  }
  return tokenizer::Tokenizer::from_llama2c(path, 0);
}

void run_tokenize(const TokenizeOptions& o) {
  if ((o.ids ? 1 : 0) + (o.pieces ? 1 : 0) + (o.json ? 1 : 0) > 1)
    throw InvalidArgument("--ids, --pieces and --json are mutually exclusive");
  const auto tok = load_tokenizer(resolve_model_path(o.model));
  const std::string text = o.file.empty() ? o.text : read_file(o.file);
  const auto ids = tok->encode(text, /*add_special=*/!o.no_bos, /*parse_special=*/!o.no_parse_special);

  if (o.ids) {
    std::string line = "[";
    for (std::size_t i = 0; i < ids.size(); ++i) line += (i ? ", " : "") + std::to_string(ids[i]);
    std::fputs((line + "]\n").c_str(), stdout);
    return;
  }
  if (o.pieces || o.json) {
    nlohmann::json pieces = nlohmann::json::array();
    for (auto id : ids) pieces.push_back(tok->token_text(id));
    const auto replace = nlohmann::json::error_handler_t::replace;
    if (o.pieces) {
      std::fputs((pieces.dump(-1, ' ', false, replace) + "\n").c_str(), stdout);
    } else {
      nlohmann::json j;
      j["model"] = o.model;
      j["ids"] = ids;
      j["pieces"] = pieces;
      j["n_tokens"] = ids.size();
      j["text"] = tok->decode(ids, /*render_special=*/true);
      std::fputs((j.dump(-1, ' ', false, replace) + "\n").c_str(), stdout);
    }
    return;
  }
  // llama-tokenize's default listing: "%6d -> '%s'" with the token's bytes (made valid UTF-8).
  for (auto id : ids) {
    const std::string bytes = tok->piece(id);
    const std::string shown = tokenizer::sanitize_utf8(bytes);
    std::fputs(fmt::format("{:6} -> '{}'{}\n", id, shown, shown == bytes ? "" : " (utf-8 decode failure)").c_str(),
               stdout);
  }
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto opts = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text, as llama-tokenize does");
  cmd->add_option("-m,--model", opts->model,
                  "GGUF file or llama2.c tokenizer.bin (a path, or a name in $G2C_MODELS_DIR)")
      ->required();
  auto* text = cmd->add_option("text", opts->text, "The text (taken literally; may be empty)");
  auto* file = cmd->add_option("-f,--file", opts->file, "Read the text from a file (bytes as they are)");
  text->excludes(file);
  cmd->add_flag("--ids", opts->ids, "Print only the ids, as [1, 2, 3]");
  cmd->add_flag("--pieces", opts->pieces, "Print the vocabulary pieces as a JSON array");
  cmd->add_flag("--json", opts->json, "Print ids, pieces and the decoded text as JSON");
  cmd->add_flag("--no-bos", opts->no_bos, "Do not add BOS/EOS even if the model asks for them");
  cmd->add_flag("--no-parse-special", opts->no_parse_special, "Treat special-token text as plain text");
  cmd->callback([opts] { run_tokenize(*opts); });
}

}  // namespace g2c::app
