// ArtifactBackend: paths (GGUF and llama2.c .bin), names in artifact folders (DPO > SFT > plain), Ollama's
// local store laid out in a temporary folder, and the not-found error.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "g2c/core/error.hpp"
#include "g2c/inference/artifact.hpp"
#include "g2c/inference/bench_backends.hpp"
#include "g2c/inference/local_backend.hpp"
#include "g2c/inference/ollama_store.hpp"
#include "g2c/inference/prodlm.hpp"
#include "g2c/model/model.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::inference {
namespace {
namespace fs = std::filesystem;

const std::string kModels = std::string(G2C_SHARED_DIR) + "/models";
const std::string kGreedyText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
    "she saw a big, red ball. She wanted to play with it, but it was too high.\nLily'";
// sha256 of stories260K.gguf as ../shared/models/README.md records it: the blob's name in an Ollama store.
const std::string kGgufSha = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d";

GenerateOptions greedy(int n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.temperature = 0.0;
  return o;
}

// A fresh temporary folder per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    path_ = fs::path(::testing::TempDir()) /
            ("g2c_artifact_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path make_dir(const std::string& rel) const {
    fs::create_directories(path_ / rel);
    return path_ / rel;
  }

 private:
  fs::path path_;
};

void link(const std::string& target, const fs::path& at) {
  fs::create_directories(at.parent_path());
  fs::create_symlink(target, at);
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

ArtifactOptions in_dirs(std::vector<std::string> dirs, std::vector<std::string> roots = {}) {
  ArtifactOptions o;
  o.threads = 1;
  o.search_dirs = std::move(dirs);
  o.ollama_roots = std::move(roots);
  return o;
}

// Ollama's layout (formats.md §1): manifests/<host>/<ns>/<model>/<tag> and blobs/sha256-<hex>.
void make_ollama_store(const fs::path& root, bool with_blob = true) {
  const std::string manifest = R"({
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
               "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111", "size": 2},
    "layers": [
      {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:)" +
                               kGgufSha + R"(", "size": 1185376},
      {"mediaType": "application/vnd.ollama.image.params",
       "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222", "size": 17}
    ]})";
  write(root / "manifests/registry.ollama.ai/library/stories260K/latest", manifest);
  write(root / "blobs/sha256-2222222222222222222222222222222222222222222222222222222222222222",
        R"({"stop": ["</s>"]})");
  if (with_blob) link(kModels + "/stories260K.gguf", root / ("blobs/sha256-" + kGgufSha));
}

TEST(Artifact, GgufAndBinAndLocalGiveTheSameGreedyCompletion) {
  std::shared_ptr<const model::Model> m = model::Model::load(kModels + "/stories260K.gguf");
  std::shared_ptr<const tokenizer::Tokenizer> t = tokenizer::Tokenizer::from_gguf(*m->gguf());
  model::ContextOptions co;
  co.threads = 1;
  LocalTransformerBackend local(m, t, "stories260K", std::nullopt, "local", nlohmann::json::object(), co);
  auto gguf = load_artifact_backend(kModels + "/stories260K.gguf", 1);
  auto bin = load_artifact_backend(kModels + "/stories260K.bin", 1);  // tok512.bin found beside it
  ASSERT_TRUE(gguf && bin);
  EXPECT_EQ(bin->location().tokenizer_path, kModels + "/tok512.bin");
  EXPECT_EQ(bin->info().extra["source"], "path");
  EXPECT_EQ(gguf->info().model_id, "stories260K.gguf");
  EXPECT_EQ(bin->info().model_id, "stories260K.bin");

  EXPECT_EQ(local.complete("", greedy(65)).completion, kGreedyText);
  EXPECT_EQ(gguf->complete("", greedy(65)).completion, kGreedyText);
  EXPECT_EQ(bin->complete("", greedy(65)).completion, kGreedyText);
  for (const std::string prompt : {"Once upon a time", "The little dog was very happy because", "Tom had a toy car."}) {
    const InferenceResult a = local.complete(prompt, greedy(48));
    const InferenceResult b = gguf->complete(prompt, greedy(48));
    const InferenceResult c = bin->complete(prompt, greedy(48));
    EXPECT_FALSE(a.completion.empty());
    EXPECT_EQ(a.completion, b.completion) << prompt;
    EXPECT_EQ(a.completion, c.completion) << prompt;
    EXPECT_EQ(a.prompt_tokens, c.prompt_tokens) << prompt;
    EXPECT_EQ(a.completion_tokens, c.completion_tokens) << prompt;
  }
}

TEST(Artifact, BinTokenizerGivenOrMissing) {
  TempDir tmp;
  link(kModels + "/stories260K.bin", tmp.path() / "m.bin");
  ArtifactOptions o = in_dirs({});
  EXPECT_THROW(open_artifact_backend((tmp.path() / "m.bin").string(), o), IoError);  // no tokenizer beside it
  try {
    open_artifact_backend((tmp.path() / "m.bin").string(), o);
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((tmp.path() / "tokenizer.bin").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find((tmp.path() / "tok512.bin").string()), std::string::npos) << msg;
  }
  o.tokenizer_path = kModels + "/tok512.bin";
  EXPECT_EQ(open_artifact_backend((tmp.path() / "m.bin").string(), o)->complete("", greedy(65)).completion,
            kGreedyText);
  // tokenizer.bin beside it is found too.
  link(kModels + "/tok512.bin", tmp.path() / "tokenizer.bin");
  EXPECT_EQ(open_artifact_backend((tmp.path() / "m.bin").string(), in_dirs({}))->location().tokenizer_path,
            (tmp.path() / "tokenizer.bin").string());
}

TEST(Artifact, NamePrefersDpoThenSftThenPlain) {
  TempDir tmp;
  const fs::path a = tmp.make_dir("a"), b = tmp.make_dir("b");
  link(kModels + "/stories260K.gguf", a / "story.gguf");
  const ArtifactOptions o = in_dirs({a.string(), b.string()});
  EXPECT_EQ(resolve_artifact("story", o)->model_path, (a / "story.gguf").string());

  link(kModels + "/stories260K.gguf", b / "story-SFT.gguf");  // a later folder, but a later stage
  EXPECT_EQ(resolve_artifact("story", o)->model_path, (b / "story-SFT.gguf").string());
  EXPECT_EQ(resolve_artifact("story", o)->details["stage"], "SFT");

  link(kModels + "/stories260K.bin", b / "story-DPO.bin");
  link(kModels + "/tok512.bin", b / "tok512.bin");
  std::optional<ArtifactLocation> loc = resolve_artifact("story", o);
  ASSERT_TRUE(loc);
  EXPECT_EQ(loc->model_path, (b / "story-DPO.bin").string());
  EXPECT_EQ(loc->source, "artifacts_dir");
  EXPECT_EQ(loc->details["stage"], "DPO");

  // An extension in the name restricts the candidates to it.
  EXPECT_EQ(resolve_artifact("story.gguf", o)->model_path, (b / "story-SFT.gguf").string());

  auto backend = open_artifact_backend("story", o);
  EXPECT_EQ(backend->info().model_id, "story-DPO.bin");
  EXPECT_EQ(backend->info().name, "artifact");
  EXPECT_EQ(backend->complete("", greedy(65)).completion, kGreedyText);
}

TEST(Artifact, DefaultDirsFollowTheEnvironment) {
  const char* saved_a = std::getenv("G2C_ARTIFACTS_DIR");
  const char* saved_m = std::getenv("G2C_MODELS_DIR");
  const std::string keep_a = saved_a ? saved_a : "", keep_m = saved_m ? saved_m : "";
  setenv("G2C_ARTIFACTS_DIR", "/x/one::/x/two", 1);
  setenv("G2C_MODELS_DIR", "/x/models", 1);
  EXPECT_EQ(default_artifact_dirs(), (std::vector<std::string>{"/x/one", "/x/two"}));
  unsetenv("G2C_ARTIFACTS_DIR");
  EXPECT_EQ(default_artifact_dirs(), (std::vector<std::string>{"/x/models"}));
  unsetenv("G2C_MODELS_DIR");
  // No variable: ../shared/models beside the source tree, which is where the test models are.
  const std::vector<std::string> dirs = default_artifact_dirs();
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_TRUE(fs::equivalent(dirs[0], kModels));
  if (saved_a) setenv("G2C_ARTIFACTS_DIR", keep_a.c_str(), 1);
  if (saved_m) setenv("G2C_MODELS_DIR", keep_m.c_str(), 1);
}

TEST(Artifact, NotFoundListsEveryPlaceLooked) {
  TempDir tmp;
  const fs::path a = tmp.make_dir("a"), b = tmp.make_dir("b"), root = tmp.make_dir("ollama");
  const ArtifactOptions o = in_dirs({a.string(), b.string()}, {root.string(), "/nonexistent/ollama"});
  EXPECT_EQ(open_artifact_backend("nosuch", o, /*required=*/false), nullptr);
  try {
    open_artifact_backend("nosuch", o);
    FAIL() << "expected ArtifactNotFound";
  } catch (const ArtifactNotFound& e) {
    const std::string msg = e.what();
    for (const std::string& place :
         {std::string("nosuch (as a path)"), (a / "{nosuch-DPO,nosuch-SFT,nosuch}{.gguf,.bin,}").string(),
          (b / "{nosuch-DPO,nosuch-SFT,nosuch}{.gguf,.bin,}").string(),
          (root / "manifests/registry.ollama.ai/library/nosuch/latest").string(),
          std::string("/nonexistent/ollama/manifests/registry.ollama.ai/library/nosuch/latest")}) {
      EXPECT_NE(msg.find(place), std::string::npos) << place << "\n in: " << msg;
    }
    EXPECT_EQ(e.looked().size(), 5u);
  }
}

TEST(OllamaStore, NamesMapToManifestPaths) {
  // formats.md §1.3's table.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"llama3.2:3b", "registry.ollama.ai/library/llama3.2/3b"},
      {"llama3.2", "registry.ollama.ai/library/llama3.2/latest"},
      {"library/llama3.2:latest", "registry.ollama.ai/library/llama3.2/latest"},
      {"myuser/mymodel", "registry.ollama.ai/myuser/mymodel/latest"},
      {"hf.co/user/repo:Q4_K_M", "hf.co/user/repo/Q4_K_M"},
      {"hf.co/user/repo", "hf.co/user/repo/latest"},
      {"https://hf.co/user/repo:Q8_0", "hf.co/user/repo/Q8_0"},
      {"localhost:5000/ns/m:t", "localhost:5000/ns/m/t"},
  };
  for (const auto& [typed, rel] : cases) {
    std::optional<OllamaName> n = parse_ollama_name(typed);
    ASSERT_TRUE(n) << typed;
    EXPECT_EQ(n->manifest_relpath(), rel) << typed;
  }
  EXPECT_EQ(parse_ollama_name("llama3.2:3b")->display(), "llama3.2:3b");
  EXPECT_EQ(parse_ollama_name("hf.co/user/repo:Q4_K_M")->display(), "hf.co/user/repo:Q4_K_M");
  for (const std::string bad : {"", ":tag", "a/:x", "-x", "ns.dot/model", "a b", "/abs/path.gguf", "m:"}) {
    EXPECT_FALSE(parse_ollama_name(bad)) << bad;
  }
}

TEST(OllamaStore, ResolvesStories260KAndRunsIt) {
  TempDir tmp;
  const fs::path root = tmp.path() / "models";
  make_ollama_store(root);
  for (const std::string name : {"stories260K:latest", "stories260K", "library/stories260K", "STORIES260k:Latest"}) {
    std::optional<OllamaModelRef> ref = find_ollama_model(name, {(tmp.path() / "empty").string(), root.string()});
    ASSERT_TRUE(ref) << name;
    EXPECT_EQ(ref->blob_path, (root / ("blobs/sha256-" + kGgufSha)).string());
    EXPECT_EQ(ref->digest, "sha256:" + kGgufSha);
    EXPECT_EQ(ref->params["stop"][0], "</s>");
  }
  // Through the loader: no artifact folder has it, so the Ollama store answers.
  auto b = open_artifact_backend("stories260K:latest", in_dirs({}, {root.string()}));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->info().model_id, "stories260K:latest");
  EXPECT_EQ(b->info().extra["source"], "ollama");
  EXPECT_EQ(b->info().extra["digest"], "sha256:" + kGgufSha);
  EXPECT_EQ(b->complete("", greedy(65)).completion, kGreedyText);
  auto plain = open_artifact_backend("stories260K", in_dirs({}, {root.string()}));
  EXPECT_EQ(plain->info().extra["manifest"],
            (root / "manifests/registry.ollama.ai/library/stories260K/latest").string());
  // $OLLAMA_MODELS leads the default roots.
  const char* saved = std::getenv("OLLAMA_MODELS");
  const std::string keep = saved ? saved : "";
  setenv("OLLAMA_MODELS", root.c_str(), 1);
  EXPECT_EQ(default_ollama_roots().front(), root.string());
  EXPECT_EQ(default_ollama_roots().back(), "/usr/share/ollama/.ollama/models");
  if (saved)
    setenv("OLLAMA_MODELS", keep.c_str(), 1);
  else
    unsetenv("OLLAMA_MODELS");
}

TEST(OllamaStore, BrokenStoreIsAnErrorNotAMiss) {
  TempDir tmp;
  const fs::path root = tmp.path() / "models";
  make_ollama_store(root, /*with_blob=*/false);
  try {
    find_ollama_model("stories260K", {root.string()});
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("ollama pull stories260K:latest"), std::string::npos) << e.what();
  }
  write(root / "manifests/registry.ollama.ai/library/bad/latest", "{not json");
  EXPECT_THROW(find_ollama_model("bad", {root.string()}), FormatError);
  write(root / "manifests/registry.ollama.ai/library/nomodel/latest", R"({"layers": []})");
  EXPECT_THROW(find_ollama_model("nomodel", {root.string()}), FormatError);
  EXPECT_FALSE(find_ollama_model("absent", {root.string()}));
}

TEST(Artifact, LocalFactoryServesLoadDefaultBackend) {
  DefaultBackendOptions d;
  d.local_factory = local_backend_factory(in_dirs({kModels}));
  d.local_name_or_path = "";  // the default artifact: stories260K
  std::unique_ptr<Backend> b = load_default_backend("local", d);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->info().extra["selected"]["kind"], "local");
  EXPECT_EQ(b->complete("", greedy(65)).completion, kGreedyText);
}

TEST(BenchBackends, SpecsAndPrompts) {
  BackendSpec s = parse_backend_spec("local:/m/stories260K.gguf");
  EXPECT_EQ(s.kind, "local");
  EXPECT_EQ(s.model, "/m/stories260K.gguf");
  s = parse_backend_spec("ollama:hf.co/user/repo:Q4_K_M@http://127.0.0.1:11434");
  EXPECT_EQ(s.kind, "ollama");
  EXPECT_EQ(s.model, "hf.co/user/repo:Q4_K_M");
  EXPECT_EQ(s.url, "http://127.0.0.1:11434");
  s = parse_backend_spec("ollama:llama3.2:3b");
  EXPECT_EQ(s.model, "llama3.2:3b");
  EXPECT_EQ(s.url, "");
  s = parse_backend_spec("openai:qwen@http://h:8000/v1");
  EXPECT_EQ(s.kind, "openai");
  EXPECT_EQ(s.url, "http://h:8000/v1");
  EXPECT_THROW(parse_backend_spec("vllm:x"), InvalidArgument);
  EXPECT_THROW(parse_backend_spec("local:"), InvalidArgument);
  EXPECT_THROW(parse_backend_spec("nokind"), InvalidArgument);

  EXPECT_EQ(parse_prompts("# comment\nfirst\n\r\nsecond line\\nwith newline\r\n\n"),
            (std::vector<std::string>{"first", "second line\nwith newline"}));
  const std::vector<std::string> shipped = read_prompts_file(default_prompts_path());
  EXPECT_GE(shipped.size(), 8u);
  EXPECT_LE(shipped.size(), 16u);

  // A local spec builds an ArtifactBackend named "local".
  std::unique_ptr<Backend> b = backend_maker(parse_backend_spec("local:" + kModels + "/stories260K.bin"))();
  EXPECT_EQ(b->info().name, "local");
  EXPECT_EQ(b->info().model_id, "stories260K.bin");
}

}  // namespace
}  // namespace g2c::inference
