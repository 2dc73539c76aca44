// The shared test helpers keep their promises: TempDir folders are private and removed, paths follow
// $G2C_SHARED_DIR, a missing golden names itself, and run_g2c passes arguments unchanged.
#include "common/test_util.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace g2c::test {
namespace {

namespace fs = std::filesystem;

TEST(TestUtil, TempDirsAreFreshPrivateAndRemoved) {
  fs::path kept;
  {
    TempDir a, b;
    EXPECT_NE(a.path(), b.path());
    EXPECT_TRUE(fs::is_directory(a.path()));
    EXPECT_TRUE(fs::is_empty(a.path()));
    EXPECT_NE(a.path().filename().string().find("TestUtil.TempDirsAreFreshPrivateAndRemoved"), std::string::npos)
        << a.path();
    std::ofstream(a.file("sub.txt")) << "x";
    fs::create_directories(a.path() / "d" / "e");
    kept = a.path();
  }
  EXPECT_FALSE(fs::exists(kept));
}

TEST(TestUtil, SharedPathFollowsTheEnvironment) {
  const char* saved = std::getenv("G2C_SHARED_DIR");
  const std::string restore = saved ? saved : "";
  ::setenv("G2C_SHARED_DIR", "/elsewhere", 1);
  EXPECT_EQ(shared_path("models/x.gguf"), "/elsewhere/models/x.gguf");
  if (saved)
    ::setenv("G2C_SHARED_DIR", restore.c_str(), 1);
  else
    ::unsetenv("G2C_SHARED_DIR");
  EXPECT_TRUE(fs::exists(shared_path("models/stories260K.gguf"))) << shared_path("models/stories260K.gguf");
}

TEST(TestUtil, LoadJsonNamesTheFileItCannotUse) {
  TempDir dir;
  std::ofstream(dir.file("bad.json")) << "{\"a\": ";
  for (const std::string name : {"missing.json", "bad.json"}) {
    try {
      load_json(dir.file(name));
      ADD_FAILURE() << name << ": no error";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(dir.file(name)), std::string::npos) << e.what();
    }
  }
  std::ofstream(dir.file("ok.json")) << "{\"a\": [1, 2]}";
  EXPECT_EQ(load_json(dir.file("ok.json"))["a"][1], 2);
}

TEST(TestUtil, RunG2cCapturesCodeAndBothStreams) {
  RunResult r = run_g2c({"--version"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("g2c ", 0), 0u) << r.out;
  // An argument with spaces and quotes reaches g2c as one argument, unchanged.
  r = run_g2c({"info", "/no such/it's \"here\".gguf"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("/no such/it's \"here\".gguf"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace g2c::test
