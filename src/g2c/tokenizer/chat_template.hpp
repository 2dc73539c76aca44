#pragma once
// Chat templates: a conversation -> the prompt string the model was tuned on. They sit with the
// tokenizer because both come from the same GGUF keys (tokenizer.chat_template) and the markers they
// write only mean something as that vocabulary's special tokens.
// We do not run Jinja. A GGUF's `tokenizer.chat_template` is recognised by marker strings (the way
// llama.cpp's llm_chat_detect_template does) and rendered by hand-written code for four families;
// anything else uses the plain fallback below. More families come with the server.
//
// The beginning-of-sequence token is NOT written: the tokenizer adds BOS (llama.cpp leaves it out of
// its rendered templates for the same reason). End-of-turn tokens inside the history are written as
// text and must be parsed as special tokens by the tokenizer.
//
// Families (with add_generation_prompt = true; "..." is the next assistant turn):
//   chatml   <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
//   llama3   <|start_header_id|>{role}<|end_header_id|>\n\n{trimmed content}<|eot_id|> ...
//            <|start_header_id|>assistant<|end_header_id|>\n\n
//   llama2   [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST]
//            (Meta's Llama-2-chat layout; the variants below are read off the template string)
//   zephyr   <|{role}|>\n{content}{eos}\n ... <|assistant|>\n   with eos "</s>", or "<|endoftext|>"
//            when the template names it (StableLM-Zephyr)
//   plain    the documented fallback for templates we do not know:
//              "System: {content}\n\n" "User: {content}\n\n" "Assistant: {content}\n\n"
//              "Tool ({tool_name}): {content}\n\n"   and, as generation prompt, "Assistant:"
#include <string>
#include <string_view>
#include <vector>

namespace g2c::tokenizer {

// What a template reads of one message. inference::ChatMessage carries more (tool calls, call ids);
// none of the families below has a place for those, so they are not passed in.
struct ChatTurn {
  std::string role;  // "system" | "user" | "assistant" | "tool"
  std::string content;
  // Tool results: the tool's name, shown by the plain fallback. The {} lets {role, content} leave it out
  // (-Wmissing-field-initializers).
  std::string tool_name{};
};

enum class ChatFamily { kPlain, kChatml, kLlama2, kLlama3, kZephyr };

// A recognised template: the family plus the llama2 / zephyr variant switches.
struct ChatTemplate {
  ChatFamily family = ChatFamily::kPlain;
  // llama2 variants (defaults = Meta's Llama-2-chat template):
  bool llama2_system = true;          // "<<SYS>>" block; without it the system text opens the first turn
  bool llama2_bos_in_history = true;  // "<s>" before every [INST] after the first
  bool llama2_strip = true;           // content.strip()
  bool llama2_space_around = true;    // " {assistant} </s>" instead of "{assistant}</s>"
  std::string zephyr_eos = "</s>";
};

// `name_or_template` is a family name ("chatml", "llama2", "llama3", "zephyr", "plain"; "" = plain)
// or a GGUF `tokenizer.chat_template` Jinja string, recognised by its markers.
ChatTemplate detect_chat_template(std::string_view name_or_template);

const char* family_name(ChatFamily f);

std::string render_chat(const ChatTemplate& tmpl, const std::vector<ChatTurn>& messages,
                        bool add_generation_prompt = true);
std::string render_chat(std::string_view name_or_template, const std::vector<ChatTurn>& messages,
                        bool add_generation_prompt = true);

}  // namespace g2c::tokenizer
