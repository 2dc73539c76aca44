// JSON Schema -> GBNF: documents valid under the schema are sentences of the grammar, invalid ones are
// not; unsupported keywords are listed in one error; the runaway bounds hold. (The sampled outputs are
// checked against python3-jsonschema in tests/engine/grammar_generate_test.cpp.)
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "g2c/core/error.hpp"
#include "g2c/sampling/grammar.hpp"
#include "g2c/sampling/json_schema.hpp"

namespace g2c::sampling {
namespace {

using nlohmann::json;

bool accepts(const std::string& schema, const std::string& doc) {
  GrammarMatcher m(Grammar::parse(json_schema_to_gbnf(json::parse(schema))));
  return m.accept(doc) && m.complete();
}

TEST(JsonSchema, ObjectsRequiredOptionalAndOrder) {
  const std::string s = R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},
      "c":{"type":"boolean"}},"required":["b"]})";
  EXPECT_TRUE(accepts(s, R"({"b": "x"})"));
  EXPECT_TRUE(accepts(s, R"({"a": 1, "b": "x", "c": true})"));
  EXPECT_TRUE(accepts(s, R"({"a":-12,"b":""})"));
  EXPECT_TRUE(accepts(s, R"({"b":"x","c":false})"));
  EXPECT_FALSE(accepts(s, R"({"a": 1})"));              // b is required
  EXPECT_FALSE(accepts(s, R"({"b": "x", "d": 1})"));    // only declared properties
  EXPECT_FALSE(accepts(s, R"({"a": 1.5, "b": "x"})"));  // integer
  EXPECT_FALSE(accepts(s, R"({"b": "x",})"));
  EXPECT_FALSE(accepts(s, R"({})"));
  EXPECT_TRUE(accepts(R"({"type":"object","properties":{"a":{}}})", R"({})"));
  EXPECT_TRUE(accepts(R"({"type":"object"})", R"({"any": [1, {"x": null}]})"));
}

TEST(JsonSchema, ArraysStringsEnumsConstAnyOfRefs) {
  const std::string arr = R"({"type":"array","items":{"type":"number"},"minItems":1,"maxItems":3})";
  EXPECT_FALSE(accepts(arr, "[]"));
  EXPECT_TRUE(accepts(arr, "[1]"));
  EXPECT_TRUE(accepts(arr, "[1, 2.5e-3, -0]"));
  EXPECT_FALSE(accepts(arr, "[1, 2, 3, 4]"));
  const std::string str = R"({"type":"string","minLength":2,"maxLength":3})";
  EXPECT_FALSE(accepts(str, R"("a")"));
  EXPECT_TRUE(accepts(str, R"("ab")"));
  EXPECT_TRUE(accepts(str, R"("a\n")"));
  EXPECT_FALSE(accepts(str, R"("abcd")"));
  EXPECT_TRUE(accepts(R"({"enum":["red",1,null]})", "null"));
  EXPECT_FALSE(accepts(R"({"enum":["red",1,null]})", R"("blue")"));
  EXPECT_TRUE(accepts(R"({"const":{"k":[1,2]}})", R"({"k":[1,2]})"));
  const std::string any_of = R"({"anyOf":[{"type":"integer"},{"type":"array","items":{"type":"null"}}]})";
  EXPECT_TRUE(accepts(any_of, "7"));
  EXPECT_TRUE(accepts(any_of, "[null, null]"));
  EXPECT_FALSE(accepts(any_of, R"("7")"));
  EXPECT_TRUE(accepts(R"({"type":["string","null"]})", "null"));
  const std::string tree = R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
      "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}},"$ref":"#/$defs/node"})";
  EXPECT_TRUE(accepts(tree, R"({"kids": [{"v": 2}, {"kids": [], "v": 3}], "v": 1})"));
  EXPECT_FALSE(accepts(tree, R"({"kids": [{"w": 2}], "v": 1})"));
  EXPECT_TRUE(accepts("{}", R"([1, "a", {"b": null}])"));
  EXPECT_TRUE(accepts("true", "false"));
}

TEST(JsonSchema, RunawayBounds) {
  EXPECT_TRUE(accepts(R"({"type":"integer"})", "1234567890123456"));
  EXPECT_FALSE(accepts(R"({"type":"integer"})", "12345678901234567"));  // at most 16 digits
  EXPECT_TRUE(accepts(R"({"type":"array"})", "[\n" + std::string(20, ' ') + "1]"));
  EXPECT_FALSE(accepts(R"({"type":"array"})", "[\n" + std::string(21, ' ') + "1]"));  // at most 20 after a newline
  EXPECT_FALSE(accepts(R"({"type":"array"})", "[  1]"));
}

TEST(JsonSchema, UnsupportedKeywordsAreListed) {
  try {
    json_schema_to_gbnf(json::parse(R"({"type":"object","properties":{"a":{"type":"string","pattern":"^x"},
        "b":{"type":"number","minimum":0}},"patternProperties":{}})"));
    FAIL() << "expected an error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()),
              "json schema: unsupported keyword(s): patternProperties (at #), pattern (at #/properties/a), minimum "
              "(at #/properties/b)");
  }
  EXPECT_THROW(json_schema_to_gbnf(json::parse(R"({"$ref":"http://x/y"})")), InvalidArgument);
  EXPECT_THROW(json_schema_to_gbnf(json::parse(R"({"$ref":"#/$defs/missing"})")), InvalidArgument);
  EXPECT_THROW(json_schema_to_gbnf(json::parse(R"({"type":"object","required":["x"],"properties":{}})")),
               InvalidArgument);
  EXPECT_THROW(json_schema_to_gbnf(json::parse(R"({"type":"strin"})")), InvalidArgument);
}

}  // namespace
}  // namespace g2c::sampling
