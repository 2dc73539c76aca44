#pragma once
// Chat templates: a conversation -> the prompt string the model was tuned on. They sit with the
// tokenizer because both come from the same GGUF keys (tokenizer.chat_template) and the markers they
// write only mean something as that vocabulary's special tokens.
//
// A GGUF's `tokenizer.chat_template` is Jinja. g2c runs it with its own Jinja-subset interpreter
// (jinja.hpp), set up as Hugging Face's apply_chat_template sets up jinja2, so the prompt is the one
// the model's authors wrote: messages (system / user / assistant with tool_calls / tool), the tool
// definitions, add_generation_prompt, bos_token / eos_token, strftime_now. The check is
// tests/tokenizer/chat_template_jinja_test.cpp: every template of llama.cpp's models/templates and
// every case of its test-chat-template.cpp, byte-compared with Python's jinja2.
//
// The family is recognised separately, by marker strings in the template source (documented at
// detect_chat_template), for two things: naming it (`g2c info`, BackendInfo) and choosing the
// tool-call format the model writes (tool_calls.hpp). A template whose Jinja g2c cannot parse falls
// back to a hand-written renderer for its family (chatml, llama3, llama2, zephyr; anything else
// the plain layout below) with a one-line warning naming the template and the unsupported syntax.
//
// Hand-written families (also selectable by name; with add_generation_prompt = true):
//   chatml   <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
//   llama3   <|start_header_id|>{role}<|end_header_id|>\n\n{trimmed content}<|eot_id|> ...
//            <|start_header_id|>assistant<|end_header_id|>\n\n
//   llama2   [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST]
//   zephyr   <|{role}|>\n{content}{eos}\n ... <|assistant|>\n
//   plain    the documented fallback when there is no template (or an unparseable unknown one):
//              "System: {content}\n\n" "User: {content}\n\n" "Assistant: {content}\n\n"
//              "Tool ({tool_name}): {content}\n\n"   and, as generation prompt, "Assistant:"
//
// BOS: a Jinja template usually writes bos_token as text. render_chat() returns what the template
// writes (what `g2c template` prints and jinja2 produces); render_prompt() removes a leading
// bos_token, because the tokenizer adds the BOS token itself (llama.cpp does the same).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace g2c::gguf {
class File;
}

namespace g2c::tokenizer {

namespace jinja {
class Template;
}

// What a hand-written template reads of one message.
struct ChatTurn {
  std::string role;  // "system" | "user" | "assistant" | "tool"
  std::string content;
  // Tool results: the tool's name, shown by the plain fallback. The {} lets {role, content} leave it out
  // (-Wmissing-field-initializers).
  std::string tool_name{};
};

// Families recognised by markers. kOther: a Jinja template none of the markers below match (rendered
// by its Jinja all the same; no tool-call format).
enum class ChatFamily {
  kPlain,
  kChatml,
  kLlama2,
  kLlama3,
  kZephyr,
  kOther,
  kHermes,          // chatml + <tool_call>{json}</tool_call> (Hermes 2 Pro / 3, Qwen 2.5)
  kLlama31,         // Llama 3.1 / 3.2 / 3.3 with tools: JSON {"name","parameters"}, <|python_tag|> built-ins
  kMistralNemo,     // [TOOL_CALLS][{...}]
  kCommandR,        // Command-R+ tool_use: Action: ```json [...]```
  kCommandR7b,      // Command-R7B: <|START_ACTION|>[...]<|END_ACTION|>, <|START_THINKING|>
  kFireFunction,    // " functools[...]"
  kFunctionaryV31,  // <function=name>{json}</function>, <|python_tag|>
  kFunctionaryV32,  // >>>name\n{json}
  kDeepSeekR1,      // <｜tool▁calls▁begin｜> ... and <think>reasoning</think>
  kGemma,           // <start_of_turn>; no tools
  kPhi3,            // <|user|> ... <|end|>; no tools
};

struct ChatTemplate {
  ChatFamily family = ChatFamily::kPlain;
  // The Jinja source; empty for a family given by name. `jinja` is its parse; null when the source
  // is empty or did not parse (then `fallback_reason` says why and the family's renderer is used).
  std::string source;
  std::shared_ptr<const jinja::Template> jinja;
  std::string fallback_reason;
  // The template concatenates tool-call arguments as a string (DeepSeek R1, Functionary): it is given
  // them JSON-encoded. Found when the template is loaded by rendering a probe tool call with object
  // arguments (the way llama.cpp's minja probes a template's capabilities).
  bool string_arguments = false;
  // llama2 variants (defaults = Meta's Llama-2-chat template):
  bool llama2_system = true;          // "<<SYS>>" block; without it the system text opens the first turn
  bool llama2_bos_in_history = true;  // "<s>" before every [INST] after the first
  bool llama2_strip = true;           // content.strip()
  bool llama2_space_around = true;    // " {assistant} </s>" instead of "{assistant}</s>"
  std::string zephyr_eos = "</s>";
};

// Whether the family has a tool-call format g2c parses (and the template renders tool definitions).
bool supports_tools(const ChatTemplate& t);

// `name_or_template` is a family name ("chatml", "llama2", "llama3", "zephyr", "plain"; "" = plain)
// or a GGUF `tokenizer.chat_template` Jinja string, parsed and recognised by its markers (first
// match wins):
//   "<｜tool▁calls▁begin｜>" or "<｜Assistant｜>"          deepseek-r1
//   "<|START_ACTION|>"                                   command-r7b
//   "<|START_OF_TURN_TOKEN|>"                            command-r
//   " functools["                                        firefunction
//   ">>>all"                                             functionary-v3.2
//   "<function=" with "<|start_header_id|>"              functionary-v3.1
//   "[TOOL_CALLS]"                                       mistral-nemo
//   "<tool_call>"                                        hermes (Hermes 2 Pro / 3, Qwen 2.5)
//   "<|start_header_id|>ipython" or "<|python_tag|>"     llama3.1 (tools)
//   "<|im_start|>"                                       chatml
//   "<|start_header_id|>" and "<|eot_id|>"               llama3
//   "<start_of_turn>"                                    gemma
//   "<|user|>" and "<|end|>"                             phi3
//   "[INST]"                                             llama2 (variants read off the source)
//   "<|user|>" and "<|assistant|>"                       zephyr
//   anything else                                        other (Jinja), or plain when it does not parse
// When the Jinja does not parse, one line is written to stderr naming the family used instead.
ChatTemplate detect_chat_template(std::string_view name_or_template);

const char* family_name(ChatFamily f);

// Everything a template reads, in Hugging Face's shapes: messages [{role, content, tool_calls:
// [{id, type: "function", function: {name, arguments: {object}}}], tool_call_id, name}], tools
// [{type: "function", function: {name, description, parameters}}] (null or empty = none).
struct ChatRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools;  // null = no tools
  bool add_generation_prompt = true;
  std::string bos_token;
  std::string eos_token;
  std::optional<long long> now_unix;  // strftime_now's time (UTC); default: the current time
};

// The variables a Jinja template sees (Hugging Face's apply_chat_template passes the same): messages,
// tools (null when none), documents (null), add_generation_prompt, bos_token, eos_token. Three
// adjustments, as llama.cpp makes them: tool-call arguments JSON-encoded (json.dumps) for a template
// with string_arguments; Llama 3.1's `builtin_tools` (the tools named wolfram_alpha, web_search,
// brave_search, python or code_interpreter, which the model then calls as <|python_tag|>N.call(..));
// and FireFunction v2's `functions` (the tools as indented JSON, "" without tools) and `datetime`
// ("%b %d %Y %H:%M:%S GMT" of now_unix), which its template requires.
nlohmann::ordered_json template_context(const ChatTemplate& tmpl, const ChatRequest& req);

// The template's rendering. Throws jinja::TemplateRaised with the template's own message when the
// template refuses the conversation (e.g. Gemma and a system message), jinja::TemplateError when it
// fails to render.
std::string render_chat(const ChatTemplate& tmpl, const ChatRequest& req);
// render_chat() without a leading bos_token (the tokenizer adds BOS).
std::string render_prompt(const ChatTemplate& tmpl, const ChatRequest& req);

// What a GGUF holds for chat: tokenizer.chat_template, tokenizer.chat_template.tool_use (a variant
// for requests with tools, as Hermes and Command-R ship; "" when absent) and the text of the BOS /
// EOS tokens (tokenizer.ggml.tokens[bos_token_id / eos_token_id]; "" when absent).
struct GgufChat {
  std::string chat_template;
  std::string tool_use_template;
  std::string bos_token;
  std::string eos_token;
};
GgufChat read_gguf_chat(const gguf::File& f);

// The older entry points (no tools): messages as ChatTurns.
std::string render_chat(const ChatTemplate& tmpl, const std::vector<ChatTurn>& messages,
                        bool add_generation_prompt = true);
std::string render_chat(std::string_view name_or_template, const std::vector<ChatTurn>& messages,
                        bool add_generation_prompt = true);

}  // namespace g2c::tokenizer
