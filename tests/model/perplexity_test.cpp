// model::perplexity against llama.cpp's own llama-perplexity output recorded in
// ../shared/arch-goldens/goldens.json ("llama-perplexity -m FILE -f ppl-text.txt -c 128 -b 128 -t 1
// -tb 1 -ctk f32 -ctv f32"): same chunking, BOS rule and scoring, so F32 models agree to 0.1%
// (the goldens' acceptance bounds), quantized ones (float activations here, Q8 activations in llama.cpp) to 0.5%.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "common/test_util.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/model/model.hpp"
#include "g2c/model/perplexity.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::model {
namespace {

const std::string kDir = test::shared_path("arch-goldens/");

TEST(Perplexity, MatchesLlamaPerplexityOnArchGoldens) {
  const auto g = test::load_json(kDir + "goldens.json");
  const std::string text = read_file(kDir + "ppl-text.txt");  // no trailing newline (README)
  for (const auto& m : g["models"]) {
    const std::string name = m["name"];
    SCOPED_TRACE(name);
    const std::string line = m["perplexity"]["final_estimate"];  // "Final estimate: PPL = X +/- Y"
    double want = 0, want_err = 0;
    ASSERT_EQ(std::sscanf(line.c_str(), "Final estimate: PPL = %lf +/- %lf", &want, &want_err), 2) << line;
    auto model = Model::load(kDir + m["file"].get<std::string>());
    auto tok = tokenizer::Tokenizer::from_gguf(*model->gguf());
    const auto ids = tok->encode(text, /*add_special=*/true, /*parse_special=*/false);
    EXPECT_EQ(ids.size(), model->hparams().arch == Arch::kLlama ? 1941u : 1791u);  // README
    Context ctx(*model, {.n_ctx = 128, .n_batch = 128, .threads = 2});
    const auto r = perplexity(ctx, ids, 128, tok->add_bos() ? tok->bos_id() : -1);
    EXPECT_EQ(r.n_chunks, model->hparams().arch == Arch::kLlama ? 15 : 13);
    EXPECT_EQ(r.n_scored, static_cast<std::int64_t>(r.n_chunks) * 63);
    const bool f32 = m["weight_type"] == "F32";
    EXPECT_NEAR(r.ppl, want, (f32 ? 1e-3 : 5e-3) * want);
    EXPECT_NEAR(r.ppl_err, want_err, (f32 ? 1e-3 : 2e-2) * want_err);
    std::printf("[ ppl      ] %-18s g2c PPL = %.4f +/- %.5f   llama.cpp PPL = %.4f +/- %.5f\n", name.c_str(), r.ppl,
                r.ppl_err, want, want_err);
  }
}

TEST(Perplexity, RefusesShortText) {
  auto model = Model::load(kDir + "qwen2-tiny-f32.gguf");
  Context ctx(*model, {.n_ctx = 128, .threads = 1});
  std::vector<std::int32_t> ids(255, 5);
  EXPECT_THROW(perplexity(ctx, ids, 128, -1), InvalidArgument);
}

}  // namespace
}  // namespace g2c::model
