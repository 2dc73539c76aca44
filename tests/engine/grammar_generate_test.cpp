// Constrained decoding on real models: a grammar that allows everything changes nothing under greedy
// decoding (generate() and the Scheduler); 5 JSON Schemas x 50 completions at temperature 1 from
// stories260K all parse and validate under Debian's python3-jsonschema (an independent validator, run by
// the test); max_tokens cuts an unfinished sentence (grammar_complete false); a vocabulary that cannot
// spell a needed character is an error before anything is generated.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/test_util.hpp"
#include "g2c/core/error.hpp"
#include "g2c/engine/generate.hpp"
#include "g2c/engine/scheduler.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/model/model.hpp"
#include "g2c/sampling/grammar.hpp"
#include "g2c/sampling/json_schema.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::engine {
namespace {

using nlohmann::json;

class Constrained : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = model::Model::load(test::shared_path("models/stories260K.gguf")).release();
    tok_ = tokenizer::Tokenizer::from_gguf(*model_->gguf()).release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete model_;
  }
  static std::unique_ptr<model::Context> context(std::int32_t n_ctx = 1024) {
    model::ContextOptions co;
    co.n_ctx = n_ctx;
    co.threads = 1;
    return std::make_unique<model::Context>(*model_, co);
  }
  static model::Model* model_;
  static tokenizer::Tokenizer* tok_;
};
model::Model* Constrained::model_ = nullptr;
tokenizer::Tokenizer* Constrained::tok_ = nullptr;

TEST_F(Constrained, AllowEverythingGrammarGreedyEqualsUnconstrained) {
  const auto any = sampling::Grammar::parse("root ::= .*\n");
  for (const std::string prompt : {"", "Once upon a time", "Lily and Tom"}) {
    const auto ids = tok_->encode(prompt, true, false);
    GenerateParams p;
    p.max_tokens = 200;
    p.sampling.temperature = 0.0f;
    auto ctx = context();
    const GenerateResult plain = generate(*ctx, *tok_, ids, p);
    p.grammar = any;
    const GenerateResult constrained = generate(*ctx, *tok_, ids, p);
    EXPECT_EQ(constrained.tokens, plain.tokens) << prompt;
    EXPECT_EQ(constrained.text, plain.text) << prompt;
    EXPECT_EQ(constrained.stop_reason, plain.stop_reason) << prompt;
    EXPECT_GT(plain.tokens.size(), 20u);
    EXPECT_TRUE(constrained.grammar_complete);
    EXPECT_FALSE(plain.grammar_complete);
  }
}

TEST_F(Constrained, SchedulerRunsGrammarsUnchanged) {
  // Requests with and without grammars share batches; each equals generate() alone.
  const auto obj = sampling::Grammar::parse(sampling::json_object_gbnf());
  std::vector<GenerateParams> ps(4);
  for (std::size_t i = 0; i < ps.size(); ++i) {
    ps[i].max_tokens = 60;
    ps[i].sampling.temperature = 1.0f;
    ps[i].sampling.seed = 100 + i;
    if (i % 2 == 0) ps[i].grammar = obj;
  }
  const auto ids = tok_->encode("Once upon a time", true, false);
  std::vector<GenerateResult> alone;
  for (const auto& p : ps) {
    auto ctx = context();
    alone.push_back(generate(*ctx, *tok_, ids, p));
  }
  SchedulerOptions o;
  o.n_parallel = 4;
  o.n_ctx = 512;
  Scheduler sched(*model_, *tok_, o);
  std::vector<RequestHandle> hs;
  for (const auto& p : ps) hs.push_back(sched.submit(ids, p, {}));
  // Batched logits equal generate()'s bit for bit only on the ref kernels (architecture.md); elsewhere
  // each constrained request must still follow its grammar.
  const bool ref = std::string(kernels::kernels().isa_name) == "ref";
  for (std::size_t i = 0; i < hs.size(); ++i) {
    const GenerateResult r = hs[i].wait();
    if (ref) {
      EXPECT_EQ(r.text, alone[i].text) << i;
      EXPECT_EQ(r.grammar_complete, alone[i].grammar_complete) << i;
    }
    if (ps[i].grammar) {
      sampling::GrammarMatcher m(ps[i].grammar);
      EXPECT_TRUE(m.accept(r.text)) << r.text;
      EXPECT_EQ(m.complete(), r.grammar_complete);
    }
  }
  EXPECT_EQ(alone[0].text.substr(0, 1), "{");
  EXPECT_NE(alone[1].text.substr(0, 1), "{");
}

TEST_F(Constrained, MaxTokensCutLeavesTheGrammarIncomplete) {
  GenerateParams p;
  p.max_tokens = 6;
  p.sampling.temperature = 1.0f;
  p.sampling.seed = 7;
  p.grammar = sampling::Grammar::parse(sampling::json_object_gbnf());
  auto ctx = context();
  const GenerateResult r = generate(*ctx, *tok_, tok_->encode("Once upon a time", true, false), p);
  EXPECT_EQ(r.stop_reason, StopReason::kMaxTokens);
  EXPECT_FALSE(r.grammar_complete);
  ASSERT_EQ(r.tokens.size(), 6u);
  EXPECT_EQ(r.text.substr(0, 1), "{");
  // The text is a prefix of the language: the matcher takes it and is not complete.
  sampling::GrammarMatcher m(p.grammar);
  EXPECT_TRUE(m.accept(r.text));
  EXPECT_FALSE(m.complete());
}

TEST_F(Constrained, BosAlonePromptDropsTheSpaceBeforeTheGrammarSeesIt) {
  // After BOS alone the first word's space is not text (generate.hpp); the grammar sees the text shown.
  GenerateParams p;
  p.max_tokens = 300;
  p.sampling.temperature = 0.0f;
  p.grammar = sampling::Grammar::parse("root ::= [A-Z] [a-z ]+ \".\"\n");
  auto ctx = context();
  const std::vector<std::int32_t> bos = {tok_->bos_id()};
  const GenerateResult r = generate(*ctx, *tok_, bos, p);
  ASSERT_FALSE(r.text.empty());
  EXPECT_TRUE(r.text[0] >= 'A' && r.text[0] <= 'Z') << r.text;
  EXPECT_TRUE(r.grammar_complete) << r.text;
  EXPECT_EQ(r.text.back(), '.');
}

TEST_F(Constrained, VocabularyWithoutTheCharacterIsAnErrorBeforeGenerating) {
  auto model = model::Model::load(test::shared_path("models/TinyStories-656K-Q8_0.gguf"));
  auto tok = tokenizer::Tokenizer::from_gguf(*model->gguf());
  model::ContextOptions co;
  co.n_ctx = 256;
  model::Context ctx(*model, co);
  GenerateParams p;
  p.grammar = sampling::Grammar::parse(sampling::json_object_gbnf());
  int events = 0;
  try {
    generate(ctx, *tok, tok->encode("x", true, false), p, [&](const TokenEvent&) { return ++events > 0; });
    FAIL() << "expected an error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("cannot produce \"{\""), std::string::npos) << e.what();
  }
  EXPECT_EQ(events, 0);
}

// Five schemas of the kinds the issue names; strings and arrays are bounded so that every completion
// ends well within max_tokens.
const char* kSchemas[] = {
    // flat object
    R"({"type":"object","properties":{"name":{"type":"string","maxLength":16},"age":{"type":"integer"},
        "height":{"type":"number"},"alive":{"type":"boolean"}},"required":["name","age","alive"],
        "additionalProperties":false})",
    // nested object with an array
    R"({"type":"object","properties":{"title":{"type":"string","maxLength":20},
        "author":{"type":"object","properties":{"first":{"type":"string","maxLength":10},
                  "last":{"type":["string","null"],"maxLength":10}},"required":["first","last"]},
        "tags":{"type":"array","items":{"type":"string","minLength":1,"maxLength":8},"minItems":1,"maxItems":4}},
        "required":["title","author","tags"]})",
    // enums and const
    R"({"type":"object","properties":{"color":{"enum":["red","green","blue"]},"size":{"enum":[1,2,3,null]},
        "mood":{"const":"happy"}},"required":["color","size","mood"]})",
    // anyOf with disjoint branches
    R"({"anyOf":[{"type":"object","properties":{"kind":{"const":"cat"},"lives":{"type":"integer"}},
        "required":["kind","lives"]},{"type":"array","items":{"type":"number"},"maxItems":3},
        {"type":"string","maxLength":12}]})",
    // $ref into $defs
    R"({"$defs":{"point":{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"}},
        "required":["x","y"],"additionalProperties":false}},"type":"object",
        "properties":{"start":{"$ref":"#/$defs/point"},"end":{"$ref":"#/$defs/point"},
        "label":{"type":"string","maxLength":10}},"required":["start","end"]})",
};

TEST_F(Constrained, FiftyCompletionsPerSchemaValidateUnderPythonJsonschema) {
  json cases = json::array();
  auto ctx = context(2048);
  const auto prompt = tok_->encode("Once upon a time", true, false);
  int incomplete = 0;
  for (const char* text : kSchemas) {
    const json schema = json::parse(text);
    const auto g = sampling::Grammar::parse(sampling::json_schema_to_gbnf(schema));
    json outputs = json::array();
    for (int seed = 1; seed <= 50; ++seed) {
      GenerateParams p;
      p.max_tokens = 1500;
      p.sampling.temperature = 1.0f;
      p.sampling.top_k = 0;
      p.sampling.top_p = 1.0f;
      p.sampling.min_p = 0.0f;
      p.sampling.seed = static_cast<std::uint64_t>(seed);
      p.grammar = g;
      const GenerateResult r = generate(*ctx, *tok_, prompt, p);
      if (!r.grammar_complete) ++incomplete;
      EXPECT_TRUE(r.grammar_complete) << "seed " << seed << ": " << r.text;
      outputs.push_back(r.text);
    }
    cases.push_back({{"schema", schema}, {"outputs", outputs}});
  }
  EXPECT_EQ(incomplete, 0);
  test::TempDir dir;
  const std::string file = dir.file("outputs.json");
  std::ofstream(file) << cases.dump();
  const std::string log = dir.file("validate.txt");
  const std::string cmd = std::string("/usr/bin/python3 ") + G2C_VALIDATE_JSON + " " + file + " > " + log + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(log);
  const std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << out << "\n(python3-jsonschema missing? scripts/setup.sh installs it)";
  EXPECT_NE(out.find("ok 250"), std::string::npos) << out;
}

}  // namespace
}  // namespace g2c::engine
