#pragma once
// Reads the llama.cpp tokenizer vector triples (README in ../shared/tokenizer-vectors*): .inp split on
// "\n__ggml_vocab_test__\n" without trimming, .out one line of " id id ..." per case.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "g2c/core/mmap.hpp"

namespace g2c::tokenizer::test {

inline std::vector<std::string> read_inputs(const std::filesystem::path& p) {
  const std::string data = read_file(p.string());
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> cases;
  std::size_t pos = 0;
  for (std::size_t hit; (hit = data.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
    cases.push_back(data.substr(pos, hit - pos));
  return cases;  // the piece after the last separator is empty and dropped
}

inline std::vector<std::vector<int>> read_outputs(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<std::vector<int>> out;
  for (std::string line; std::getline(f, line);) {
    std::istringstream ls(line);
    std::vector<int> ids;
    for (int id; ls >> id;) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  return out;
}

struct VocabFile {
  std::string name;  // "gpt-2", "synth-qwen2", ...
  std::filesystem::path gguf;
};

// Every .gguf with an .inp/.out pair in both vector folders, real ones first, sorted by name.
inline std::vector<VocabFile> all_vocab_files() {
  std::vector<VocabFile> files;
  for (const char* dir : {"tokenizer-vectors", "tokenizer-vectors-synthetic"}) {
    std::vector<VocabFile> part;
    for (const auto& e : std::filesystem::directory_iterator(g2c::test::shared_path(dir))) {
      const auto& p = e.path();
      if (p.extension() != ".gguf") continue;
      std::string stem = p.stem().string();
      const std::string prefix = "ggml-vocab-";
      if (stem.rfind(prefix, 0) == 0) stem = stem.substr(prefix.size());
      part.push_back({stem, p});
    }
    std::sort(part.begin(), part.end(), [](const VocabFile& a, const VocabFile& b) { return a.name < b.name; });
    files.insert(files.end(), part.begin(), part.end());
  }
  return files;
}

}  // namespace g2c::tokenizer::test
