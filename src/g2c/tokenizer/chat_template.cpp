#include "g2c/tokenizer/chat_template.hpp"

#include <cctype>

namespace g2c::tokenizer {
namespace {

bool contains(std::string_view s, std::string_view needle) { return s.find(needle) != std::string_view::npos; }

// Python's str.strip() / Jinja's |trim on ASCII whitespace.
std::string trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string render_chatml(const std::vector<ChatTurn>& msgs, bool gen) {
  std::string out;
  for (const ChatTurn& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (gen) out += "<|im_start|>assistant\n";
  return out;
}

std::string render_llama3(const std::vector<ChatTurn>& msgs, bool gen) {
  std::string out;
  for (const ChatTurn& m : msgs) {
    // Llama 3.1+ names tool results "ipython"; 3.0 has no tool role, so "tool" is kept as given.
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
  }
  if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// Mirrors Meta's Llama-2-chat Jinja: a turn is "[INST] user [/INST] assistant </s>"; the system text
// sits in a <<SYS>> block inside the first [INST]. The generation prompt is implied by the open
// "[/INST]", so add_generation_prompt changes nothing here (as in the Jinja original).
std::string render_llama2(const ChatTemplate& t, const std::vector<ChatTurn>& msgs) {
  std::string out = "[INST] ";
  bool inside_turn = true;  // the first "[INST] " is already written (BOS is the tokenizer's job)
  for (const ChatTurn& m : msgs) {
    std::string content = t.llama2_strip ? trim(m.content) : m.content;
    if (!inside_turn) {
      inside_turn = true;
      out += t.llama2_bos_in_history ? "<s>[INST] " : "[INST] ";
    }
    if (m.role == "system") {
      out += t.llama2_system ? "<<SYS>>\n" + content + "\n<</SYS>>\n\n" : content + "\n";
    } else if (m.role == "assistant") {
      out += t.llama2_space_around ? " " + content + " </s>" : content + "</s>";
      inside_turn = false;
    } else {  // user, tool: the template has no tool role; a tool result is shown as a user turn
      out += content + " [/INST]";
    }
  }
  return out;
}

std::string render_zephyr(const ChatTemplate& t, const std::vector<ChatTurn>& msgs, bool gen) {
  std::string out;
  for (const ChatTurn& m : msgs) out += "<|" + m.role + "|>\n" + m.content + t.zephyr_eos + "\n";
  if (gen) out += "<|assistant|>\n";
  return out;
}

std::string render_plain(const std::vector<ChatTurn>& msgs, bool gen) {
  std::string out;
  for (const ChatTurn& m : msgs) {
    std::string label;
    if (m.role == "system")
      label = "System";
    else if (m.role == "user")
      label = "User";
    else if (m.role == "assistant")
      label = "Assistant";
    else if (m.role == "tool")
      label = m.tool_name.empty() ? "Tool" : "Tool (" + m.tool_name + ")";
    else
      label = m.role;
    out += label + ": " + m.content + "\n\n";
  }
  if (gen) out += "Assistant:";
  return out;
}

}  // namespace

const char* family_name(ChatFamily f) {
  switch (f) {
    case ChatFamily::kPlain: return "plain";
    case ChatFamily::kChatml: return "chatml";
    case ChatFamily::kLlama2: return "llama2";
    case ChatFamily::kLlama3: return "llama3";
    case ChatFamily::kZephyr: return "zephyr";
  }
  return "plain";
}

ChatTemplate detect_chat_template(std::string_view s) {
  ChatTemplate t;
  if (s.empty() || s == "plain") return t;
  if (s == "chatml") return t.family = ChatFamily::kChatml, t;
  if (s == "llama3") return t.family = ChatFamily::kLlama3, t;
  if (s == "llama2") return t.family = ChatFamily::kLlama2, t;
  if (s == "zephyr") return t.family = ChatFamily::kZephyr, t;
  // A Jinja string: order matters (a llama3 template may mention [INST] in a comment, never the
  // reverse), and Phi-3's "<|user|>...<|end|>" must not be taken for zephyr.
  if (contains(s, "<|im_start|>")) {
    t.family = ChatFamily::kChatml;
  } else if (contains(s, "<|start_header_id|>") && contains(s, "<|eot_id|>")) {
    t.family = ChatFamily::kLlama3;
  } else if (contains(s, "[INST]")) {
    t.family = ChatFamily::kLlama2;
    t.llama2_system = contains(s, "<<SYS>>");
    t.llama2_bos_in_history = contains(s, "bos_token + '[INST]");
    t.llama2_strip = contains(s, "content.strip()");
    t.llama2_space_around = contains(s, "' ' + eos_token");
  } else if (contains(s, "<|user|>") && contains(s, "<|assistant|>") && !contains(s, "<|end|>")) {
    t.family = ChatFamily::kZephyr;
    if (contains(s, "<|endoftext|>")) t.zephyr_eos = "<|endoftext|>";
  }
  return t;
}

std::string render_chat(const ChatTemplate& tmpl, const std::vector<ChatTurn>& messages, bool add_generation_prompt) {
  switch (tmpl.family) {
    case ChatFamily::kChatml: return render_chatml(messages, add_generation_prompt);
    case ChatFamily::kLlama3: return render_llama3(messages, add_generation_prompt);
    case ChatFamily::kLlama2: return render_llama2(tmpl, messages);
    case ChatFamily::kZephyr: return render_zephyr(tmpl, messages, add_generation_prompt);
    case ChatFamily::kPlain: return render_plain(messages, add_generation_prompt);
  }
  return render_plain(messages, add_generation_prompt);
}

std::string render_chat(std::string_view name_or_template, const std::vector<ChatTurn>& messages,
                        bool add_generation_prompt) {
  return render_chat(detect_chat_template(name_or_template), messages, add_generation_prompt);
}

}  // namespace g2c::tokenizer
