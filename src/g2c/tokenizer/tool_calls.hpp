#pragma once
// Tool calls out of generated text, in each template family's own format (the family comes from
// chat_template.hpp's marker detection):
//   hermes            <tool_call>\n{"name": N, "arguments": {...}}\n</tool_call> (repeatable)
//   llama3.1          {"name": N, "parameters": {...}} as the whole reply, or
//                     <|python_tag|>N.call(arg="value") for a built-in tool
//   mistral-nemo      [TOOL_CALLS][{"name": N, "arguments": {...}, "id": "123456789"}, ...]
//   firefunction      " functools[{"name": N, "arguments": {...}}, ...]"
//   command-r7b       <|START_THINKING|>..<|END_THINKING|> <|START_ACTION|>[{"tool_call_id", "tool_name",
//                     "parameters"}]<|END_ACTION|>, or <|START_RESPONSE|>text<|END_RESPONSE|>
//   command-r         Action: ```json [{"tool_name": N, "parameters": {...}}] ```
//   functionary-v3.1  <function=N>{...}</function> (repeatable); <|python_tag|>code for "python"
//   functionary-v3.2  "all\ntext" or "N\n{...}", further calls as ">>>N\n{...}"
//   deepseek-r1       [<think>]reasoning</think> then <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function
//                     <｜tool▁sep｜>N\n```json\n{...}\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
// The check: the parse cases of llama.cpp's tests/test-chat.cpp at c392e50, as vectors
// (tests/tokenizer/data/tool_call_cases.json).
//
// A call that starts (its marker is there) but does not parse never throws: the whole text comes
// back as content, with no calls, and tool_call_error says what was wrong.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "g2c/tokenizer/chat_template.hpp"

namespace g2c::tokenizer {

struct ParsedToolCall {
  std::string id;  // as the model wrote it (mistral-nemo, command-r7b), else ""
  std::string name;
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();
};

struct ParsedChat {
  std::string content;
  std::string reasoning_content;  // deepseek-r1 / command-r7b thinking, when extracted
  std::vector<ParsedToolCall> tool_calls;
  std::string tool_call_error;  // non-empty: a malformed call; content is then the whole text
};

// extract_reasoning: deepseek-r1's <think> and command-r7b's thinking go to reasoning_content (else
// they stay in content as written).
ParsedChat parse_tool_calls(ChatFamily family, std::string_view text, bool extract_reasoning = false);

// The whole reply read as ToolCallStream reads it (parse_tool_calls, and reasoning never closed after an
// opening marker, or after a prompt that opened it, is all reasoning): what a streamed reply adds up to.
ParsedChat parse_reply(ChatFamily family, std::string_view text, bool extract_reasoning, bool reasoning_open);

// Whether `prompt` ends (but for whitespace) with `family`'s opening thinking marker, so that the reply
// starts inside the reasoning (ToolCallStream's reasoning_open).
bool prompt_opens_reasoning(ChatFamily family, std::string_view prompt);

// Streaming: feed() the generated text piece by piece; it returns the text that is safe to show now
// (content before any tool call; nothing that could be the start of a call marker, a call or
// extracted reasoning). finish() parses the whole text; `rest` is the content not yet shown.
class ToolCallStream {
 public:
  // reasoning_open: the prompt ends with the opening thinking marker (DeepSeek R1 distills' templates end
  // with "<think>\n"), so the reply starts inside the reasoning without writing the marker.
  explicit ToolCallStream(ChatFamily family, bool extract_reasoning = false, bool reasoning_open = false);
  std::string feed(std::string_view piece);
  // With extract_reasoning, the reasoning is streamed too: when the text opens with the family's thinking
  // marker (deepseek-r1 <think>, command-r7b <|START_THINKING|>), take_reasoning() after each feed() returns
  // the reasoning text that is safe to show now (never a partial closing marker; deepseek-r1's leading and
  // trailing whitespace, which the parse trims, held back). Also when reasoning_open; otherwise reasoning
  // with no opening marker arrives whole at finish().
  std::string take_reasoning();
  struct Final {
    ParsedChat parsed;
    std::string rest;            // content not yet shown
    std::string reasoning_rest;  // reasoning not yet taken
  };
  // If reasoning was streamed and its closing marker never came, the whole text after the opening marker
  // is reasoning (content empty), so that what was shown as reasoning never comes back as content.
  Final finish();

 private:
  std::size_t safe_end() const;  // raw offset up to which content may be shown
  void stream_reasoning();
  std::optional<std::string> opened() const;
  ChatFamily family_;
  bool extract_reasoning_;
  bool reasoning_open_;
  std::string raw_;
  std::string shown_;            // content delivered so far
  std::string reasoning_shown_;  // reasoning delivered or pending
  std::string reasoning_pending_;
};

}  // namespace g2c::tokenizer
