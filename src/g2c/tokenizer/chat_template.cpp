#include "g2c/tokenizer/chat_template.hpp"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "g2c/gguf/gguf.hpp"
#include "g2c/tokenizer/jinja.hpp"

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

std::vector<ChatTurn> turns_of(const nlohmann::ordered_json& messages) {
  std::vector<ChatTurn> out;
  for (const auto& m : messages) {
    ChatTurn t;
    t.role = m.value("role", "");
    if (m.contains("content") && m["content"].is_string()) t.content = m["content"].get<std::string>();
    if (m.contains("name") && m["name"].is_string()) t.tool_name = m["name"].get<std::string>();
    out.push_back(std::move(t));
  }
  return out;
}

nlohmann::ordered_json messages_of(const std::vector<ChatTurn>& turns) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const ChatTurn& t : turns) {
    nlohmann::ordered_json m = {{"role", t.role}, {"content", t.content}};
    if (!t.tool_name.empty()) m["name"] = t.tool_name;
    out.push_back(std::move(m));
  }
  return out;
}

ChatFamily family_from_markers(std::string_view s, ChatTemplate& t) {
  if (contains(s, "<｜tool▁calls▁begin｜>") || contains(s, "<｜Assistant｜>")) return ChatFamily::kDeepSeekR1;
  if (contains(s, "<|START_ACTION|>")) return ChatFamily::kCommandR7b;
  if (contains(s, "<|START_OF_TURN_TOKEN|>")) return ChatFamily::kCommandR;
  if (contains(s, " functools[")) return ChatFamily::kFireFunction;
  if (contains(s, ">>>all")) return ChatFamily::kFunctionaryV32;
  if (contains(s, "<function=") && contains(s, "<|start_header_id|>")) return ChatFamily::kFunctionaryV31;
  if (contains(s, "[TOOL_CALLS]")) return ChatFamily::kMistralNemo;
  if (contains(s, "<tool_call>")) return ChatFamily::kHermes;
  if (contains(s, "<|start_header_id|>ipython") || contains(s, "<|python_tag|>")) return ChatFamily::kLlama31;
  if (contains(s, "<|im_start|>")) return ChatFamily::kChatml;
  if (contains(s, "<|start_header_id|>") && contains(s, "<|eot_id|>")) return ChatFamily::kLlama3;
  if (contains(s, "<start_of_turn>")) return ChatFamily::kGemma;
  if (contains(s, "<|user|>") && contains(s, "<|end|>")) return ChatFamily::kPhi3;
  if (contains(s, "[INST]")) {
    t.llama2_system = contains(s, "<<SYS>>");
    t.llama2_bos_in_history = contains(s, "bos_token + '[INST]");
    t.llama2_strip = contains(s, "content.strip()");
    t.llama2_space_around = contains(s, "' ' + eos_token");
    return ChatFamily::kLlama2;
  }
  if (contains(s, "<|user|>") && contains(s, "<|assistant|>")) {
    if (contains(s, "<|endoftext|>")) t.zephyr_eos = "<|endoftext|>";
    return ChatFamily::kZephyr;
  }
  return ChatFamily::kOther;
}

// The hand-written renderer a family falls back to when its Jinja does not parse.
ChatFamily fallback_family(ChatFamily f) {
  switch (f) {
    case ChatFamily::kChatml:
    case ChatFamily::kHermes: return ChatFamily::kChatml;
    case ChatFamily::kLlama3:
    case ChatFamily::kLlama31: return ChatFamily::kLlama3;
    case ChatFamily::kLlama2: return ChatFamily::kLlama2;
    case ChatFamily::kZephyr: return ChatFamily::kZephyr;
    default: return ChatFamily::kPlain;
  }
}

}  // namespace

const char* family_name(ChatFamily f) {
  switch (f) {
    case ChatFamily::kPlain: return "plain";
    case ChatFamily::kChatml: return "chatml";
    case ChatFamily::kLlama2: return "llama2";
    case ChatFamily::kLlama3: return "llama3";
    case ChatFamily::kZephyr: return "zephyr";
    case ChatFamily::kOther: return "other";
    case ChatFamily::kHermes: return "hermes";
    case ChatFamily::kLlama31: return "llama3.1";
    case ChatFamily::kMistralNemo: return "mistral-nemo";
    case ChatFamily::kCommandR: return "command-r";
    case ChatFamily::kCommandR7b: return "command-r7b";
    case ChatFamily::kFireFunction: return "firefunction";
    case ChatFamily::kFunctionaryV31: return "functionary-v3.1";
    case ChatFamily::kFunctionaryV32: return "functionary-v3.2";
    case ChatFamily::kDeepSeekR1: return "deepseek-r1";
    case ChatFamily::kGemma: return "gemma";
    case ChatFamily::kPhi3: return "phi3";
  }
  return "plain";
}

bool supports_tools(const ChatTemplate& t) {
  if (!t.jinja) return false;
  switch (t.family) {
    case ChatFamily::kHermes:
    case ChatFamily::kLlama31:
    case ChatFamily::kMistralNemo:
    case ChatFamily::kCommandR:
    case ChatFamily::kCommandR7b:
    case ChatFamily::kFireFunction:
    case ChatFamily::kFunctionaryV31:
    case ChatFamily::kFunctionaryV32:
    case ChatFamily::kDeepSeekR1: return true;
    default: return false;
  }
}

ChatTemplate detect_chat_template(std::string_view s) {
  ChatTemplate t;
  if (s.empty() || s == "plain") return t;
  if (s == "chatml") return t.family = ChatFamily::kChatml, t;
  if (s == "llama3") return t.family = ChatFamily::kLlama3, t;
  if (s == "llama2") return t.family = ChatFamily::kLlama2, t;
  if (s == "zephyr") return t.family = ChatFamily::kZephyr, t;
  t.source = std::string(s);
  t.family = family_from_markers(s, t);
  try {
    t.jinja = std::make_shared<const jinja::Template>(s);
  } catch (const jinja::TemplateError& e) {
    t.fallback_reason = e.what();
    const ChatFamily fb = fallback_family(t.family);
    std::fprintf(stderr, "warning: chat template (%s family) not supported: %s; using the %s fallback\n",
                 family_name(t.family), e.what(), family_name(fb));
    t.family = fb;
    return t;
  }
  if (supports_tools(t)) {
    // Probe: does the template take object arguments? (It may refuse or mangle them; then give strings.)
    ChatRequest probe;
    probe.messages = nlohmann::ordered_json::parse(
        R"([{"role":"user","content":"Hi"},{"role":"assistant","content":"","tool_calls":[{"id":"abcDEF123",)"
        R"("type":"function","function":{"name":"probe_tool","arguments":{"probe_arg":"probe_value"}}}]}])");
    probe.tools = nlohmann::ordered_json::parse(
        R"([{"type":"function","function":{"name":"probe_tool","description":"A probe","parameters":{"type":"object",)"
        R"("properties":{"probe_arg":{"type":"string","description":"A probe"}},"required":["probe_arg"]}}}])");
    probe.add_generation_prompt = false;
    probe.now_unix = 0;
    std::string out;
    try {
      out = render_chat(t, probe);
    } catch (const std::exception&) {
    }
    if (out.find("probe_value") == std::string::npos) {
      t.string_arguments = true;
      try {
        if (render_chat(t, probe).find("probe_value") == std::string::npos) t.string_arguments = false;
      } catch (const std::exception&) {
        t.string_arguments = false;
      }
    }
  }
  return t;
}

long long now_or_clock(const ChatRequest& req) {
  return req.now_unix
             ? *req.now_unix
             : std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                   .count();
}

nlohmann::ordered_json template_context(const ChatTemplate& tmpl, const ChatRequest& req) {
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  ctx["messages"] = req.messages;
  if (tmpl.string_arguments) {
    for (auto& m : ctx["messages"]) {
      if (!m.is_object() || !m.contains("tool_calls") || !m["tool_calls"].is_array()) continue;
      for (auto& tc : m["tool_calls"]) {
        if (!tc.is_object()) continue;
        auto& fn = tc.contains("function") && tc["function"].is_object() ? tc["function"] : tc;
        if (fn.contains("arguments") && !fn["arguments"].is_string())
          fn["arguments"] = jinja::python_json_dumps(fn["arguments"]);
      }
    }
  }
  ctx["tools"] = req.tools.is_array() && !req.tools.empty() ? req.tools : nlohmann::ordered_json();
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = req.add_generation_prompt;
  ctx["bos_token"] = req.bos_token;
  ctx["eos_token"] = req.eos_token;
  if (tmpl.family == ChatFamily::kLlama31 && contains(tmpl.source, "<|python_tag|>") && req.tools.is_array()) {
    nlohmann::ordered_json builtin = nlohmann::ordered_json::array();
    for (const auto& t : req.tools) {
      const auto* fn = t.is_object() && t.contains("function") ? &t["function"] : nullptr;
      if (!fn || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string()) continue;
      const std::string name = (*fn)["name"];
      for (const char* b : {"wolfram_alpha", "web_search", "brave_search", "python", "code_interpreter"})
        if (name == b) builtin.push_back(name);
    }
    if (!builtin.empty()) ctx["builtin_tools"] = builtin;
  }
  if (tmpl.family == ChatFamily::kFireFunction) {
    const bool has_tools = req.tools.is_array() && !req.tools.empty();
    ctx["functions"] = has_tools ? jinja::python_json_dumps(req.tools, 2) : "";
    const std::time_t t = static_cast<std::time_t>(now_or_clock(req));
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    ctx["datetime"] = std::string(buf, std::strftime(buf, sizeof buf, "%b %d %Y %H:%M:%S GMT", &tm));
  }
  return ctx;
}

std::string render_chat(const ChatTemplate& tmpl, const ChatRequest& req) {
  if (!tmpl.jinja) {
    const std::vector<ChatTurn> turns = turns_of(req.messages);
    const bool gen = req.add_generation_prompt;
    switch (tmpl.family) {
      case ChatFamily::kChatml: return render_chatml(turns, gen);
      case ChatFamily::kLlama3: return render_llama3(turns, gen);
      case ChatFamily::kLlama2: return render_llama2(tmpl, turns);
      case ChatFamily::kZephyr: return render_zephyr(tmpl, turns, gen);
      default: return render_plain(turns, gen);
    }
  }
  return tmpl.jinja->render(template_context(tmpl, req), now_or_clock(req));
}

std::string render_prompt(const ChatTemplate& tmpl, const ChatRequest& req) {
  std::string out = render_chat(tmpl, req);
  if (!req.bos_token.empty() && out.rfind(req.bos_token, 0) == 0) out.erase(0, req.bos_token.size());
  return out;
}

GgufChat read_gguf_chat(const gguf::File& f) {
  GgufChat c;
  c.chat_template = f.get_str("tokenizer.chat_template").value_or("");
  c.tool_use_template = f.get_str("tokenizer.chat_template.tool_use").value_or("");
  const gguf::Value* toks = f.find("tokenizer.ggml.tokens");
  auto token = [&](const char* key) -> std::string {
    const auto id = f.get_int(key);
    if (!id || !toks || !toks->is_array() || toks->elem_type() != gguf::ValueType::STRING || *id < 0) return "";
    const auto& v = toks->strings();
    return static_cast<std::size_t>(*id) < v.size() ? v[static_cast<std::size_t>(*id)] : "";
  };
  c.bos_token = token("tokenizer.ggml.bos_token_id");
  c.eos_token = token("tokenizer.ggml.eos_token_id");
  return c;
}

std::string render_chat(const ChatTemplate& tmpl, const std::vector<ChatTurn>& messages, bool add_generation_prompt) {
  ChatRequest req;
  req.messages = messages_of(messages);
  req.add_generation_prompt = add_generation_prompt;
  return render_chat(tmpl, req);
}

std::string render_chat(std::string_view name_or_template, const std::vector<ChatTurn>& messages,
                        bool add_generation_prompt) {
  return render_chat(detect_chat_template(name_or_template), messages, add_generation_prompt);
}

}  // namespace g2c::tokenizer
