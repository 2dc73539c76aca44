// The naive option of LocalTransformerBackend (ContextOptions::naive, ArtifactOptions::naive, the
// `local-naive:` backend spec): requests run without the KV cache, the O(T^2) loop of
// `g2c run --no-kv-cache`, and still give the README's greedy golden. Before the fix the option was
// dropped on its way to engine::generate (GenerateParams::naive defaulted to false and generate()
// switched the context back to the cached path for the call).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "g2c/inference/artifact.hpp"
#include "g2c/inference/bench_backends.hpp"
#include "g2c/inference/local_backend.hpp"
#include "g2c/model/model.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::inference {
namespace {

const std::string kModels = std::string(G2C_SHARED_DIR) + "/models";
// ../shared/models/README.md "Reference outputs": stories260K greedy after BOS, 65 tokens.
const std::string kGreedyText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
    "she saw a big, red ball. She wanted to play with it, but it was too high.\nLily'";

GenerateOptions greedy(int n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.temperature = 0.0;
  return o;
}

std::unique_ptr<LocalTransformerBackend> make_local(bool naive) {
  std::shared_ptr<const model::Model> m = model::Model::load(kModels + "/stories260K.gguf");
  std::shared_ptr<const tokenizer::Tokenizer> t = tokenizer::Tokenizer::from_gguf(*m->gguf());
  model::ContextOptions co;
  co.threads = 1;
  co.naive = naive;
  return std::make_unique<LocalTransformerBackend>(m, t, "stories260K", std::nullopt, "local", nlohmann::json::object(),
                                                   co);
}

// metadata["naive"] is read from the engine's context while generate() runs, so it reports the path
// that actually ran, not the option that was asked for.
TEST(LocalNaive, NaiveContextRunsTheNaiveLoop) {
  auto b = make_local(/*naive=*/true);
  const InferenceResult r = b->complete("", greedy(65));
  EXPECT_TRUE(r.metadata.value("naive", false)) << r.metadata.dump();
  EXPECT_EQ(r.completion, kGreedyText);  // no cache, same greedy text
  // stream() takes the same path.
  std::string streamed;
  const InferenceResult s = b->stream("Once upon a time", greedy(16), [&](std::string_view piece) {
    streamed += piece;
    return true;
  });
  EXPECT_TRUE(s.metadata.value("naive", false)) << s.metadata.dump();
  EXPECT_EQ(streamed, s.completion);
}

TEST(LocalNaive, CachedContextRunsTheCachedLoop) {
  auto b = make_local(/*naive=*/false);
  const InferenceResult r = b->complete("", greedy(65));
  ASSERT_TRUE(r.metadata.contains("naive")) << r.metadata.dump();
  EXPECT_FALSE(r.metadata["naive"].get<bool>());
  EXPECT_EQ(r.completion, kGreedyText);
}

TEST(LocalNaive, ArtifactOptionAndSpecReachTheEngine) {
  ArtifactOptions ao;
  ao.threads = 1;
  ao.naive = true;
  auto a = open_artifact_backend(kModels + "/stories260K.gguf", ao);
  EXPECT_TRUE(a->naive());
  EXPECT_TRUE(a->info().extra["naive"].get<bool>());
  EXPECT_TRUE(a->complete("Once", greedy(8)).metadata["naive"].get<bool>());

  const BackendSpec spec = parse_backend_spec("local-naive:" + kModels + "/stories260K.gguf");
  EXPECT_EQ(spec.kind, "local-naive");
  BackendMakerOptions mo;
  mo.local.threads = 1;
  std::unique_ptr<Backend> fromspec = backend_maker(spec, mo)();
  EXPECT_EQ(fromspec->info().name, "local-naive");
  const InferenceResult r = fromspec->complete("", greedy(65));
  EXPECT_TRUE(r.metadata["naive"].get<bool>());
  EXPECT_EQ(r.completion, kGreedyText);
  // local: is the cached loop.
  std::unique_ptr<Backend> cached = backend_maker(parse_backend_spec("local:" + kModels + "/stories260K.gguf"), mo)();
  EXPECT_FALSE(cached->complete("Once", greedy(8)).metadata["naive"].get<bool>());
}

}  // namespace
}  // namespace g2c::inference
