#pragma once
// What many test files need, in one place: paths into the ../shared fixtures, JSON goldens, a private
// temporary folder, and the g2c command run as a user runs it. g2c_test() (tests/CMakeLists.txt) links
// every test binary with it; include it as "common/test_util.hpp".
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace g2c::test {

// A path under the shared fixtures (models, goldens, tokenizer vectors), e.g.
// shared_path("models/stories260K.gguf"): under $G2C_SHARED_DIR when it is set (CTest sets it), else under
// the folder chosen at configure time (../shared beside the repository).
std::string shared_path(std::string_view relative);

// Every .gguf file of the shared fixtures (models, tokenizer vectors, arch and quant goldens), sorted:
// files written by llama.cpp and gguf-py, which the reader and `g2c info` must all accept.
std::vector<std::string> shared_gguf_files();

// A JSON file parsed; throws std::runtime_error naming the file when it cannot be read or parsed (a
// missing golden then fails the test with its path, not with a parse error at offset 0).
nlohmann::json load_json(const std::filesystem::path& path);

// A whole file as bytes; throws std::runtime_error naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

// A new, empty folder, removed with its contents when the TempDir goes out of scope. Its name holds the
// running test's name and a random suffix (mkdtemp), so no two TempDirs ever share a folder: not two in
// one test, not two test processes (ctest -j), not two checkouts running their suites at once.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The path of `name` inside the folder (nothing is created).
  std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The exit code (128 + the signal number when it was killed, -1 when it could not be started) and
// everything the process wrote to stdout and to stderr.
struct RunResult {
  int code = -1;
  std::string out, err;
};

// The g2c command of this build tree (<build>/apps/g2c/g2c; a test that runs it depends on the g2c target).
std::string g2c_binary();

// Runs g2c with these arguments, one string per argument (no shell, so nothing needs quoting), stdin
// empty, and waits for it to exit.
RunResult run_g2c(const std::vector<std::string>& args);

}  // namespace g2c::test
