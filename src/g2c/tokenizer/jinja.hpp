#pragma once
// A Jinja subset interpreter for chat templates: the statements, expressions, filters, tests and
// methods that the chat templates of the common model families use, with the environment Hugging
// Face's apply_chat_template sets up (ImmutableSandboxedEnvironment(trim_blocks=True,
// lstrip_blocks=True) plus loopcontrols; `tojson` is json.dumps(ensure_ascii=False) keeping key
// order; `raise_exception(msg)` and `strftime_now(fmt)` are globals). The reference is Python's
// jinja2 3.1 (tests/tokenizer/chat_template_jinja_test.cpp renders every template with both and
// byte-compares).
//
// Supported: {{ }}, {% if/elif/else %}, {% for a[, b] in x [if c] %} with {% else %}, loop.* and
// {% break/continue %}, {% set x = e %}, {% set ns.attr = e %}, {% set x %}...{% endset %},
// {% macro %} with defaults, {% filter f %}, {# #}, whitespace control (-, +); literals (strings,
// numbers, lists, dicts, tuples, true/false/none), arithmetic, ~, comparisons, in / not in,
// and/or/not, x if c else y, attribute / item access, slicing, calls with keyword arguments.
// Values are Python-like: None, bool, int, float, str, list, dict (insertion-ordered), callables, and
// jinja2's Undefined (prints "", iterates empty, is falsy; attribute access on it is an error).
// Anything else (an unknown filter, test, method or statement) is an error naming the template's
// line:col when the template is parsed or, for a method on a value, when that line runs.
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "g2c/core/error.hpp"

namespace g2c::tokenizer::jinja {

// The template's own refusal: raise_exception(message). what() is the template's message.
class TemplateRaised : public Error {
 public:
  using Error::Error;
};

// Syntax g2c does not support or a template that does not parse ("line L:C: ...").
class TemplateError : public Error {
 public:
  using Error::Error;
};

struct Program;

class Template {
 public:
  // Parses `source` (throws TemplateError with line:col).
  explicit Template(std::string_view source);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Renders with the top-level variables of `context` (an object). `now_unix` is the time
  // strftime_now() formats (UTC). Throws TemplateRaised for raise_exception(), TemplateError for a
  // runtime type error (e.g. attribute of an undefined value).
  std::string render(const nlohmann::ordered_json& context, long long now_unix) const;

 private:
  std::unique_ptr<Program> prog_;
};

// json.dumps(v, ensure_ascii=False) with Python's separators and float repr; indent < 0 = one line.
std::string python_json_dumps(const nlohmann::ordered_json& v, int indent = -1);

}  // namespace g2c::tokenizer::jinja
