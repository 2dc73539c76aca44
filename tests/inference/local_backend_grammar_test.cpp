// GenerateOptions::grammar / json_schema through LocalTransformerBackend: the completion follows them,
// metadata["grammar_complete"] says whether it is whole, a cut one is done_reason "length", and bad
// options are errors.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/test_util.hpp"
#include "g2c/core/error.hpp"
#include "g2c/inference/local_backend.hpp"
#include "g2c/model/model.hpp"
#include "g2c/sampling/grammar.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::inference {
namespace {

std::unique_ptr<LocalTransformerBackend> make_local() {
  std::shared_ptr<const model::Model> m = model::Model::load(test::shared_path("models/stories260K.gguf"));
  std::shared_ptr<const tokenizer::Tokenizer> t = tokenizer::Tokenizer::from_gguf(*m->gguf());
  model::ContextOptions co;
  co.threads = 1;
  return std::make_unique<LocalTransformerBackend>(m, t, "stories260K", std::nullopt, "local", nlohmann::json::object(),
                                                   co);
}

TEST(LocalBackendGrammar, JsonSchemaAndGrammarConstrainTheCompletion) {
  auto b = make_local();
  GenerateOptions o;
  o.max_new_tokens = 300;
  o.seed = 9;
  o.json_schema = nlohmann::json::parse(
      R"({"type":"object","properties":{"hero":{"type":"string","maxLength":12},"age":{"type":"integer"}},
          "required":["hero","age"],"additionalProperties":false})");
  InferenceResult r = b->complete("Once upon a time", o);
  const auto doc = nlohmann::json::parse(r.completion);
  EXPECT_TRUE(doc["hero"].is_string());
  EXPECT_TRUE(doc["age"].is_number_integer());
  EXPECT_EQ(r.metadata["grammar_complete"], true);
  EXPECT_EQ(r.metadata["done_reason"], "stop");

  o.json_schema = nullptr;
  o.grammar = "root ::= (\"yes\" | \"no\") \".\"\n";
  r = b->complete("Once upon a time", o);
  EXPECT_TRUE(r.completion == "yes." || r.completion == "no.") << r.completion;
  EXPECT_EQ(r.metadata["grammar_complete"], true);

  o.grammar = "root ::= \"{\" [a-z ]* \"}\"\n";
  o.max_new_tokens = 3;
  r = b->complete("Once upon a time", o);
  EXPECT_EQ(r.metadata["done_reason"], "length");
  EXPECT_EQ(r.metadata["grammar_complete"], false);
  EXPECT_EQ(r.completion.substr(0, 1), "{");

  // Without a grammar there is no grammar_complete key.
  o.grammar.clear();
  EXPECT_FALSE(b->complete("Once upon a time", o).metadata.contains("grammar_complete"));
}

TEST(LocalBackendGrammar, BadOptionsAreErrors) {
  auto b = make_local();
  GenerateOptions o;
  o.grammar = "root ::= [a-\n";
  EXPECT_THROW(b->complete("x", o), sampling::GrammarError);
  o.json_schema = nlohmann::json{{"type", "integer"}};
  o.grammar = "root ::= \"a\"\n";
  EXPECT_THROW(b->complete("x", o), InvalidArgument);
  o.grammar.clear();
  o.json_schema = nlohmann::json{{"type", "integer"}, {"multipleOf", 2}};
  try {
    b->complete("x", o);
    FAIL() << "expected an error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()), "json schema: unsupported keyword(s): multipleOf (at #)");
  }
}

}  // namespace
}  // namespace g2c::inference
