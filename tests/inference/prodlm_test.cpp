#include "g2c/inference/prodlm.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/test_util.hpp"
#include "fake_backend.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/mmap.hpp"
#include "loopback.hpp"

namespace g2c::inference {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(ProdLM, ManifestRoundTrip) {
  TempDir dir;
  ProdLMManifest m;
  m.backend = "openai";
  m.model_id = "qwen2.5:7b";
  m.base_url = "http://127.0.0.1:8000/v1";
  m.quantization = "Q4_K_M";
  m.context_length = 8192;
  m.api_key_env = "G2C_TEST_KEY";
  m.timeout_s = 30;
  m.notes = "vLLM on the lab box";
  std::string path = dir.file("sub/dir/prodlm.json");  // parent folders are created
  write_prodlm_manifest(path, m);
  EXPECT_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid())));  // the temporary is renamed away
  ProdLMManifest back = load_prodlm_manifest(path);
  EXPECT_EQ(back.to_json(), m.to_json());
  EXPECT_EQ(back.context_length, 8192);
  nlohmann::json on_disk = nlohmann::json::parse(read_file(path));
  EXPECT_EQ(on_disk["format"], "g2c.prodlm");
  EXPECT_EQ(on_disk["version"], 1);
}

TEST(ProdLM, ReadsAHandWrittenManifest) {
  TempDir dir;
  std::string path = dir.file("prodlm.json");
  write_text(path, R"({
    "backend": "ollama",
    "model_id": "llama3.2:3b",
    "base_url": "127.0.0.1:11434",
    "quantization": "Q4_K_M",
    "context_length": 4096,
    "notes": "written by ./prodlm.sh",
    "some_future_key": [1, 2, 3]
  })");
  std::unique_ptr<Backend> b = load_prodlm_backend(path);
  BackendInfo info = b->info();
  EXPECT_EQ(info.name, "prodlm");
  EXPECT_EQ(info.model_id, "llama3.2:3b");
  EXPECT_EQ(info.extra["base_url"], "http://127.0.0.1:11434");
  EXPECT_EQ(info.extra["quantization"], "Q4_K_M");
  EXPECT_EQ(info.extra["context_length"], 4096);
  EXPECT_EQ(info.extra["notes"], "written by ./prodlm.sh");
}

TEST(ProdLM, BadManifestsNameTheProblem) {
  TempDir dir;
  auto message = [&](const std::string& text) {
    std::string path = dir.file("m.json");
    write_text(path, text);
    try {
      load_prodlm_manifest(path);
    } catch (const FormatError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(message(R"({"model_id":"x"})").find("missing required key 'backend'"), std::string::npos);
  EXPECT_NE(message(R"({"backend":"mlx","model_id":"x"})").find("backend must be"), std::string::npos);
  EXPECT_NE(message(R"({"backend":"ollama","model_id":"x","context_length":"4k"})").find("context_length"),
            std::string::npos);
  EXPECT_NE(message(R"({"backend":"ollama","model_id":"x","version":2})").find("newer"), std::string::npos);
  EXPECT_THROW(load_prodlm_manifest(dir.file("absent.json")), IoError);
}

TEST(ProdLM, DefaultManifestPathFollowsTheEnvironment) {
  setenv("G2C_PRODLM_MANIFEST", "/x/y.json", 1);
  EXPECT_EQ(default_prodlm_manifest_path(), "/x/y.json");
  unsetenv("G2C_PRODLM_MANIFEST");
  setenv("XDG_CONFIG_HOME", "/cfg", 1);
  EXPECT_EQ(default_prodlm_manifest_path(), "/cfg/g2c/prodlm.json");
  unsetenv("XDG_CONFIG_HOME");
}

struct AutoFixture {
  TempDir dir;
  testing::LoopbackServer ollama;
  std::string manifest;
  int local_calls = 0;
  std::string local_asked;
  AutoFixture() {
    ollama.server().Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"version":"0.6.5"})", "application/json");
    });
    ollama.start();
    manifest = dir.file("prodlm.json");
  }
  void write_manifest(const std::string& url) {
    ProdLMManifest m;
    m.backend = "ollama";
    m.model_id = "llama3.2:3b";
    m.base_url = url;
    write_prodlm_manifest(manifest, m);
  }
  DefaultBackendOptions opts() {
    DefaultBackendOptions o;
    o.manifest_path = manifest;
    o.local_name_or_path = "stories260K";
    o.local_factory = [this](const std::string& name) -> std::unique_ptr<Backend> {
      ++local_calls;
      local_asked = name;
      return std::make_unique<testing::FakeBackend>("local");
    };
    o.probe_timeout_s = 2.0;
    return o;
  }
};

TEST(ProdLM, AutoPicksProdLMWhenItsServerAnswers) {
  AutoFixture f;
  f.write_manifest(f.ollama.url());
  std::unique_ptr<Backend> b = load_default_backend("auto", f.opts());
  BackendInfo info = b->info();
  EXPECT_EQ(info.name, "prodlm");
  EXPECT_EQ(info.extra["selected"]["kind"], "prodlm");
  EXPECT_NE(info.extra["selected"]["reason"].get<std::string>().find("Ollama 0.6.5"), std::string::npos);
  EXPECT_EQ(f.local_calls, 0);
}

TEST(ProdLM, AutoFallsBackToTheLocalArtifactAndSaysWhy) {
  AutoFixture f;
  f.write_manifest("http://127.0.0.1:" + std::to_string(testing::closed_port()));
  std::unique_ptr<Backend> b = load_default_backend("auto", f.opts());
  BackendInfo info = b->info();
  EXPECT_EQ(info.name, "local");
  EXPECT_EQ(f.local_asked, "stories260K");
  EXPECT_EQ(info.extra["selected"]["kind"], "local");
  std::string reason = info.extra["selected"]["reason"];
  EXPECT_NE(reason.find("ProdLM server did not answer"), std::string::npos) << reason;
  EXPECT_NE(reason.find("local artifact 'stories260K'"), std::string::npos) << reason;
  // The wrapper forwards calls and stamps results with the annotated info.
  InferenceResult r = b->complete("hi");
  EXPECT_EQ(r.backend.extra["selected"]["kind"], "local");

  // A broken manifest: "auto" still answers, and says why it skipped ProdLM.
  write_text(f.manifest, "{\"backend\": 42}");
  b = load_default_backend("auto", f.opts());
  EXPECT_NE(b->info().extra["selected"]["reason"].get<std::string>().find("unusable ProdLM manifest"),
            std::string::npos);

  // No manifest at all: the same fallback, another reason.
  fs::remove(f.manifest);
  b = load_default_backend("auto", f.opts());
  EXPECT_NE(b->info().extra["selected"]["reason"].get<std::string>().find("no ProdLM manifest"), std::string::npos);
}

TEST(ProdLM, NothingAvailableListsEveryReason) {
  AutoFixture f;
  DefaultBackendOptions o = f.opts();
  o.local_factory = nullptr;
  try {
    load_default_backend("auto", o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("no ProdLM manifest at " + f.manifest), std::string::npos) << msg;
    EXPECT_NE(msg.find("no local backend factory"), std::string::npos) << msg;
  }
  EXPECT_THROW(load_default_backend("gpu", o), InvalidArgument);
}

TEST(ProdLM, ExplicitKinds) {
  AutoFixture f;
  f.write_manifest("http://127.0.0.1:" + std::to_string(testing::closed_port()));
  // "prodlm" does not probe: the manifest's backend is returned even though nothing listens.
  EXPECT_EQ(load_default_backend("prodlm", f.opts())->info().extra["selected"]["kind"], "prodlm");
  EXPECT_EQ(load_default_backend("local", f.opts())->info().extra["selected"]["reason"],
            "asked for local; local artifact 'stories260K'");
}

}  // namespace
}  // namespace g2c::inference
