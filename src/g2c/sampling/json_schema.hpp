#pragma once
// JSON Schema -> GBNF (grammar.hpp), so that constrained decoding yields JSON that parses and validates.
//
//   auto g = Grammar::parse(json_schema_to_gbnf(nlohmann::json::parse(R"({"type":"object",...})")));
//
// Supported: `type` (object, array, string, number, integer, boolean, null, or a list of them);
// objects: `properties`, `required`, `additionalProperties`; arrays: `items`, `minItems`, `maxItems`;
// strings: `minLength`, `maxLength`; `enum`, `const`, `anyOf`, `oneOf` (enforced as anyOf: a string
// matching two branches is not refused), local `$ref` (`#`, `#/$defs/...`, `#/definitions/...`, any JSON
// pointer into the document); `{}` / `true` is any JSON value. Annotations (title, description, default,
// examples, $schema, $id, $comment) are ignored. Any other keyword is an InvalidArgument listing every
// unsupported keyword with its location.
//
// The generated text: properties in key order (nlohmann::json keeps objects sorted), required ones always and optional
// ones possibly; only declared properties are generated (an object without `properties` is any object).
// What a runaway sampler could repeat is bounded as llama.cpp's converter bounds it: at most 20
// whitespace characters after a newline between tokens, integers of at most 16 digits, fractions and
// exponents of at most 16.
#include <string>

#include <nlohmann/json.hpp>

namespace g2c::sampling {

std::string json_schema_to_gbnf(const nlohmann::json& schema);

// Any JSON object (Ollama's format "json", OpenAI's response_format json_object): the grammar of
// json_schema_to_gbnf({"type": "object"}).
std::string json_object_gbnf();

}  // namespace g2c::sampling
