// libFuzzer target: chat-template rendering (tokenizer/jinja.*, chat_template.*). Input: the Jinja
// template text up to the first NUL byte; after it, the conversation as JSON ({"messages": [...],
// "tools": [...], ...}; a fixed two-turn conversation when there is no NUL or the JSON does not parse).
// Both are fuzzed: the template through the interpreter's parser and renderer, the conversation through
// template_context (Hugging Face's variables, tool-call argument encoding) and whatever the template
// does with it.
//
// Property beyond "no crash": a template that does not parse, refuses (raise_exception) or fails at run
// time ends in a g2c::Error (TemplateError / TemplateRaised); no other exception escapes. Runaway
// templates (nested range() loops, string repetition) are what -timeout and -rss_limit_mb catch.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_common.hpp"
#include "g2c/core/error.hpp"
#include "g2c/tokenizer/chat_template.hpp"
#include "g2c/tokenizer/jinja.hpp"

namespace {

using nlohmann::ordered_json;

const ordered_json& default_conversation() {
  static const ordered_json c = ordered_json::parse(R"({"messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "f", "arguments": {"x": 1}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "2"}],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
      "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}]})");
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = in.find('\0');
  const std::string_view source = in.substr(0, nul);
  ordered_json conv = default_conversation();
  if (nul != std::string_view::npos) {
    auto j = ordered_json::parse(in.substr(nul + 1), nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && j.is_object()) conv = std::move(j);
  }
  std::shared_ptr<const g2c::tokenizer::jinja::Template> tmpl;
  try {
    tmpl = std::make_shared<const g2c::tokenizer::jinja::Template>(source);
  } catch (const g2c::Error&) {
    return 0;
  }
  // The template alone, with the JSON object as its variables.
  try {
    (void)tmpl->render(conv, 1700000000);
  } catch (const g2c::Error&) {
  }
  // Through the chat-template layer: the conversation as messages and tools.
  g2c::tokenizer::ChatTemplate ct;
  ct.family = g2c::tokenizer::ChatFamily::kOther;
  ct.source = std::string(source);
  ct.jinja = tmpl;
  ct.string_arguments = size % 2;
  g2c::tokenizer::ChatRequest req;
  if (auto it = conv.find("messages"); it != conv.end()) req.messages = *it;
  if (auto it = conv.find("tools"); it != conv.end()) req.tools = *it;
  req.bos_token = "<s>";
  req.eos_token = "</s>";
  req.now_unix = 1700000000;
  try {
    (void)g2c::tokenizer::render_prompt(ct, req);
  } catch (const g2c::Error&) {
  }
  return 0;
}
