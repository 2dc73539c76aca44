#include "g2c/tokenizer/tool_calls.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <stdexcept>
#include <utility>

namespace g2c::tokenizer {
namespace {

using OJson = nlohmann::ordered_json;

struct Malformed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

std::size_t skip_ws(std::string_view s, std::size_t p) {
  while (p < s.size() && is_ws(s[p])) ++p;
  return p;
}

std::string_view trim(std::string_view s) {
  std::size_t b = skip_ws(s, 0), e = s.size();
  while (e > b && is_ws(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string ltrim(std::string_view s) { return std::string(s.substr(skip_ws(s, 0))); }

bool starts_with(std::string_view s, std::string_view p, std::size_t at = 0) {
  return s.size() >= at + p.size() && s.substr(at, p.size()) == p;
}

// End (one past) of the JSON object / array / string / scalar starting at `p`, or npos when it is
// cut off. Only brackets and strings are tracked; the parse itself is nlohmann's.
std::size_t json_end(std::string_view s, std::size_t p) {
  if (p >= s.size()) return std::string_view::npos;
  if (s[p] != '{' && s[p] != '[') {
    if (s[p] == '"') {
      for (std::size_t k = p + 1; k < s.size(); ++k) {
        if (s[k] == '\\')
          ++k;
        else if (s[k] == '"')
          return k + 1;
      }
      return std::string_view::npos;
    }
    std::size_t k = p;
    while (k < s.size() && !is_ws(s[k]) && s[k] != ',' && s[k] != '}' && s[k] != ']' && s[k] != ')') ++k;
    return k;
  }
  int depth = 0;
  bool in_str = false;
  for (std::size_t k = p; k < s.size(); ++k) {
    const char c = s[k];
    if (in_str) {
      if (c == '\\')
        ++k;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == '"')
      in_str = true;
    else if (c == '{' || c == '[')
      ++depth;
    else if (c == '}' || c == ']') {
      if (--depth == 0) return k + 1;
    }
  }
  return std::string_view::npos;
}

// Parses the JSON value at `p` (after whitespace); sets `end`.
OJson json_at(std::string_view s, std::size_t p, std::size_t& end, const char* what) {
  p = skip_ws(s, p);
  const std::size_t e = json_end(s, p);
  if (e == std::string_view::npos) throw Malformed(std::string(what) + ": JSON cut off");
  try {
    OJson j = OJson::parse(s.substr(p, e - p));
    end = e;
    return j;
  } catch (const nlohmann::json::exception& ex) {
    throw Malformed(std::string(what) + ": invalid JSON: " + ex.what());
  }
}

OJson as_arguments(const OJson& a, const std::string& name) {
  if (a.is_object()) return a;
  if (a.is_string()) {
    try {
      OJson j = OJson::parse(a.get<std::string>());
      if (j.is_object()) return j;
    } catch (const nlohmann::json::exception&) {
    }
  }
  throw Malformed("arguments of '" + name + "' are not a JSON object");
}

ParsedToolCall call_from(const OJson& j, const char* name_key, const char* args_key, const char* id_key) {
  if (!j.is_object() || !j.contains(name_key) || !j[name_key].is_string())
    throw Malformed(std::string("a call without a string \"") + name_key + "\"");
  ParsedToolCall c;
  c.name = j[name_key].get<std::string>();
  if (j.contains(args_key))
    c.arguments = as_arguments(j[args_key], c.name);
  else if (!(std::string_view(args_key) == "parameters" && j.contains("arguments")))
    c.arguments = OJson::object();
  else
    c.arguments = as_arguments(j["arguments"], c.name);
  if (id_key && j.contains(id_key)) c.id = j[id_key].is_string() ? j[id_key].get<std::string>() : j[id_key].dump();
  return c;
}

// A JSON array of calls right after `marker` (mistral-nemo, firefunction).
ParsedChat parse_prefixed_array(std::string_view text, std::string_view marker, std::size_t keep_tail) {
  ParsedChat r;
  const std::size_t m = text.find(marker);
  if (m == std::string_view::npos) {
    r.content = std::string(text);
    return r;
  }
  r.content = std::string(text.substr(0, m));
  std::size_t end = 0;
  const OJson arr = json_at(text, m + marker.size() - keep_tail, end, "tool call array");
  if (!arr.is_array()) throw Malformed("expected a JSON array of calls after the marker");
  for (const auto& c : arr) r.tool_calls.push_back(call_from(c, "name", "arguments", "id"));
  return r;
}

ParsedChat parse_hermes(std::string_view text) {
  ParsedChat r;
  std::size_t m = text.find("<tool_call>");
  if (m == std::string_view::npos) {
    r.content = std::string(text);
    return r;
  }
  r.content = std::string(text.substr(0, m));
  while (m != std::string_view::npos) {
    std::size_t end = 0;
    const OJson j = json_at(text, m + 11, end, "<tool_call>");
    r.tool_calls.push_back(call_from(j, "name", "arguments", nullptr));
    std::size_t p = skip_ws(text, end);
    if (starts_with(text, "</tool_call>", p)) {
      p = skip_ws(text, p + 12);
    } else if (p < text.size()) {
      throw Malformed("<tool_call> not closed by </tool_call>");
    }
    if (starts_with(text, "<tool_call>", p)) {
      m = p;
    } else {
      r.content += std::string(text.substr(p));
      m = std::string_view::npos;
    }
  }
  return r;
}

// <|python_tag|>name.call(arg=value[, arg2=value2])
ParsedToolCall parse_builtin_call(std::string_view s) {
  s = trim(s);
  const std::size_t dot = s.find(".call(");
  if (dot == std::string_view::npos || s.empty() || s.back() != ')')
    throw Malformed("<|python_tag|> without name.call(...)");
  ParsedToolCall c;
  c.name = std::string(trim(s.substr(0, dot)));
  const std::string_view args = s.substr(dot + 6, s.size() - dot - 7);
  std::size_t k = 0;
  while (true) {
    k = skip_ws(args, k);
    if (k >= args.size()) break;
    const std::size_t eq = args.find('=', k);
    if (eq == std::string_view::npos) throw Malformed("built-in call argument without '='");
    const std::string key(trim(args.substr(k, eq - k)));
    std::size_t end = 0;
    c.arguments[key] = json_at(args, eq + 1, end, "built-in call argument");
    k = skip_ws(args, end);
    if (k < args.size() && args[k] == ',') ++k;
  }
  return c;
}

ParsedChat parse_llama31(std::string_view text) {
  ParsedChat r;
  const std::size_t tag = text.find("<|python_tag|>");
  if (tag != std::string_view::npos) {
    r.content = std::string(text.substr(0, tag));
    std::string_view rest = trim(text.substr(tag + 14));
    if (!rest.empty() && rest[0] == '{') {
      std::size_t end = 0;
      r.tool_calls.push_back(call_from(json_at(rest, 0, end, "<|python_tag|> call"), "name", "parameters", nullptr));
    } else {
      r.tool_calls.push_back(parse_builtin_call(rest));
    }
    return r;
  }
  const std::string_view t = trim(text);
  if (t.empty() || t[0] != '{' || t.substr(0, 40).find("\"name\"") == std::string_view::npos) {
    r.content = std::string(text);
    return r;
  }
  // One or more {"name", "parameters"} objects (";"-separated, as Llama 3.2 sometimes writes them).
  std::size_t p = 0;
  while (p < t.size()) {
    std::size_t end = 0;
    OJson j = json_at(t, p, end, "tool call");
    if (j.is_object() && j.contains("type") && j.contains("function") && j["function"].is_object()) j = j["function"];
    r.tool_calls.push_back(call_from(j, "name", "parameters", nullptr));
    p = skip_ws(t, end);
    if (p < t.size() && t[p] == ';') p = skip_ws(t, p + 1);
    if (p < t.size() && t[p] != '{') throw Malformed("text after a tool call");
  }
  return r;
}

ParsedChat parse_functionary_v31(std::string_view text) {
  ParsedChat r;
  const std::size_t tag = text.find("<|python_tag|>");
  if (tag != std::string_view::npos) {
    r.content = std::string(text.substr(0, tag));
    ParsedToolCall c;
    c.name = "python";
    c.arguments = {{"code", std::string(text.substr(tag + 14))}};
    r.tool_calls.push_back(std::move(c));
    return r;
  }
  std::size_t m = text.find("<function=");
  if (m == std::string_view::npos) {
    r.content = std::string(text);
    return r;
  }
  r.content = std::string(text.substr(0, m));
  std::size_t p = m;
  while ((m = text.find("<function=", p)) != std::string_view::npos) {
    r.content += std::string(text.substr(p, m - p));
    const std::size_t close = text.find('>', m);
    if (close == std::string_view::npos) throw Malformed("<function= without '>'");
    const std::string name(text.substr(m + 10, close - m - 10));
    std::size_t end = 0;
    const OJson args = json_at(text, close + 1, end, "<function=>");
    ParsedToolCall c;
    c.name = name;
    c.arguments = as_arguments(args, name);
    r.tool_calls.push_back(std::move(c));
    p = skip_ws(text, end);
    if (starts_with(text, "</function>", p))
      p += 11;
    else if (p < text.size())
      throw Malformed("<function=" + name + "> not closed by </function>");
  }
  if (p < text.size()) r.content += std::string(text.substr(p));
  if (!r.tool_calls.empty() && trim(r.content).empty()) r.content.clear();
  return r;
}

bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

ParsedChat parse_functionary_v32(std::string_view text) {
  ParsedChat r;
  std::size_t p = 0;
  if (starts_with(text, "all\n")) {
    const std::size_t m = text.find(">>>", 4);
    r.content = std::string(text.substr(4, m == std::string_view::npos ? std::string_view::npos : m - 4));
    if (m == std::string_view::npos) return r;
    p = m;
  }
  while (p < text.size()) {
    if (starts_with(text, ">>>", p)) p += 3;
    std::size_t nl = p;
    while (nl < text.size() && is_word(text[nl])) ++nl;
    if (nl >= text.size() || text[nl] != '\n' || nl == p) {
      if (r.tool_calls.empty() && p == 0) {  // not a call at all
        r.content = std::string(text);
        return r;
      }
      throw Malformed("expected a function name and a newline after '>>>'");
    }
    const std::string name(text.substr(p, nl - p));
    if (name == "all") {
      const std::size_t m = text.find(">>>", nl + 1);
      r.content += std::string(text.substr(nl + 1, m == std::string_view::npos ? std::string_view::npos : m - nl - 1));
      p = m == std::string_view::npos ? text.size() : m;
      continue;
    }
    std::size_t end = 0;
    const OJson args = json_at(text, nl + 1, end, name.c_str());
    ParsedToolCall c;
    c.name = name;
    c.arguments = as_arguments(args, name);
    r.tool_calls.push_back(std::move(c));
    p = skip_ws(text, end);
  }
  return r;
}

ParsedChat parse_command_r7b(std::string_view text, bool extract) {
  ParsedChat r;
  std::string_view rest = text;
  if (starts_with(rest, "<|START_THINKING|>")) {
    const std::size_t e = rest.find("<|END_THINKING|>");
    if (e != std::string_view::npos) {
      const std::string_view inner = rest.substr(18, e - 18);
      if (extract)
        r.reasoning_content = std::string(inner);
      else if (!inner.empty())
        r.content = std::string(rest.substr(0, e + 16));
      rest = rest.substr(e + 16);
    }
  }
  if (starts_with(rest, "<|START_ACTION|>")) {
    const std::size_t e = rest.find("<|END_ACTION|>");
    std::size_t end = 0;
    const OJson arr = json_at(rest, 16, end, "<|START_ACTION|>");
    if (!arr.is_array()) throw Malformed("<|START_ACTION|> without a JSON array");
    for (const auto& a : arr) r.tool_calls.push_back(call_from(a, "tool_name", "parameters", "tool_call_id"));
    (void)e;
    return r;
  }
  if (starts_with(rest, "<|START_RESPONSE|>")) rest = rest.substr(18);
  const std::size_t e = rest.find("<|END_RESPONSE|>");
  r.content += std::string(rest.substr(0, e));
  return r;
}

ParsedChat parse_command_r(std::string_view text) {
  ParsedChat r;
  const std::size_t m = text.find("Action:");
  if (m == std::string_view::npos) {
    r.content = std::string(text);
    return r;
  }
  r.content = std::string(text.substr(0, m));
  std::size_t p = skip_ws(text, m + 7);
  if (starts_with(text, "```json", p)) p += 7;
  std::size_t end = 0;
  const OJson arr = json_at(text, p, end, "Action:");
  if (!arr.is_array()) throw Malformed("Action: without a JSON array");
  for (const auto& a : arr) {
    ParsedToolCall c = call_from(a, "tool_name", "parameters", nullptr);
    if (c.name == "directly-answer") continue;
    r.tool_calls.push_back(std::move(c));
  }
  return r;
}

constexpr std::string_view kDsCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kDsCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kDsCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kDsCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kDsSep = "<｜tool▁sep｜>";

ParsedChat parse_deepseek_r1(std::string_view text, bool extract) {
  ParsedChat r;
  std::string_view rest = text;
  const std::size_t think_end = text.find("</think>");
  if (think_end != std::string_view::npos) {
    std::string_view inner = text.substr(0, think_end);
    if (starts_with(inner, "<think>")) inner = inner.substr(7);
    if (extract)
      r.reasoning_content = std::string(trim(inner));
    else
      r.content = std::string(text.substr(0, think_end + 8));
    rest = text.substr(think_end + 8);
  }
  const std::size_t b = rest.find(kDsCallsBegin);
  if (b == std::string_view::npos || !trim(rest.substr(0, b)).empty()) {
    if (b != std::string_view::npos) {
      // Text before the calls: keep it as content, calls after.
      r.content += ltrim(rest.substr(0, b));
    } else {
      r.content += ltrim(rest);
      return r;
    }
  }
  std::string_view calls = rest.substr(b + kDsCallsBegin.size());
  const std::size_t e = calls.find(kDsCallsEnd);
  if (e != std::string_view::npos) calls = calls.substr(0, e);
  std::size_t p = skip_ws(calls, 0);
  while (p < calls.size()) {
    if (!starts_with(calls, kDsCallBegin, p)) throw Malformed("expected <｜tool▁call▁begin｜>");
    p += kDsCallBegin.size();
    const std::size_t sep = calls.find(kDsSep, p);
    if (sep == std::string_view::npos) throw Malformed("<｜tool▁call▁begin｜> without <｜tool▁sep｜>");
    const std::size_t nl = calls.find('\n', sep);
    if (nl == std::string_view::npos) throw Malformed("tool call name not ended by a newline");
    ParsedToolCall c;
    c.name = std::string(trim(calls.substr(sep + kDsSep.size(), nl - sep - kDsSep.size())));
    std::size_t q = skip_ws(calls, nl);
    if (starts_with(calls, "```json", q)) q += 7;
    std::size_t end = 0;
    c.arguments = as_arguments(json_at(calls, q, end, c.name.c_str()), c.name);
    q = skip_ws(calls, end);
    if (starts_with(calls, "```", q)) q = skip_ws(calls, q + 3);
    if (!starts_with(calls, kDsCallEnd, q)) throw Malformed("<｜tool▁call▁begin｜> not closed by <｜tool▁call▁end｜>");
    p = skip_ws(calls, q + kDsCallEnd.size());
    r.tool_calls.push_back(std::move(c));
  }
  return r;
}

ParsedChat parse_any(ChatFamily f, std::string_view text, bool extract) {
  switch (f) {
    case ChatFamily::kHermes: return parse_hermes(text);
    case ChatFamily::kLlama31: return parse_llama31(text);
    case ChatFamily::kMistralNemo: return parse_prefixed_array(text, "[TOOL_CALLS]", 0);
    case ChatFamily::kFireFunction: return parse_prefixed_array(text, " functools[", 1);
    case ChatFamily::kCommandR7b: return parse_command_r7b(text, extract);
    case ChatFamily::kCommandR: return parse_command_r(text);
    case ChatFamily::kFunctionaryV31: return parse_functionary_v31(text);
    case ChatFamily::kFunctionaryV32: return parse_functionary_v32(text);
    case ChatFamily::kDeepSeekR1: return parse_deepseek_r1(text, extract);
    default: {
      ParsedChat r;
      r.content = std::string(text);
      return r;
    }
  }
}

// The markers that may start a call (or hidden text) in a family's output.
std::vector<std::string_view> markers(ChatFamily f) {
  switch (f) {
    case ChatFamily::kHermes: return {"<tool_call>"};
    case ChatFamily::kLlama31: return {"<|python_tag|>"};
    case ChatFamily::kMistralNemo: return {"[TOOL_CALLS]"};
    case ChatFamily::kFireFunction: return {" functools["};
    case ChatFamily::kCommandR: return {"Action:"};
    case ChatFamily::kFunctionaryV31: return {"<function=", "<|python_tag|>"};
    case ChatFamily::kFunctionaryV32: return {">>>"};
    case ChatFamily::kDeepSeekR1: return {kDsCallsBegin};
    default: return {};
  }
}

}  // namespace

ParsedChat parse_tool_calls(ChatFamily family, std::string_view text, bool extract_reasoning) {
  try {
    return parse_any(family, text, extract_reasoning);
  } catch (const std::exception& e) {
    ParsedChat r;
    r.content = std::string(text);
    r.tool_call_error = std::string(family_name(family)) + " tool call: " + e.what();
    return r;
  }
}

ToolCallStream::ToolCallStream(ChatFamily family, bool extract_reasoning, bool reasoning_open)
    : family_(family), extract_reasoning_(extract_reasoning), reasoning_open_(reasoning_open) {}

std::size_t ToolCallStream::safe_end() const {
  const std::string_view s = raw_;
  if (family_ == ChatFamily::kCommandR7b) return 0;  // thinking / action / response: decided at the end
  if (family_ == ChatFamily::kLlama31) {
    const std::size_t p = skip_ws(s, 0);
    if (p == s.size() || s[p] == '{') return 0;  // may be a JSON call: hold it all
  }
  std::size_t safe = s.size();
  for (std::string_view m : markers(family_)) {
    const std::size_t hit = s.find(m);
    if (hit != std::string_view::npos) safe = std::min(safe, hit);
    // A suffix that may grow into the marker.
    for (std::size_t n = std::min(m.size() - 1, s.size()); n > 0; --n) {
      if (s.substr(s.size() - n) == m.substr(0, n)) {
        safe = std::min(safe, s.size() - n);
        break;
      }
    }
  }
  return safe;
}

namespace {

// The thinking markers of the families whose parse extracts reasoning, and whether the parse trims it.
struct ThinkMarkers {
  std::string_view open, close;
  bool trimmed;
};
std::optional<ThinkMarkers> think_markers(ChatFamily f) {
  if (f == ChatFamily::kDeepSeekR1) return ThinkMarkers{"<think>", "</think>", true};
  if (f == ChatFamily::kCommandR7b) return ThinkMarkers{"<|START_THINKING|>", "<|END_THINKING|>", false};
  return std::nullopt;
}

// The reasoning of `s` (which opens with m.open) as far as it is known: up to the closing marker, or
// without a suffix that may grow into it; trimmed as the parse trims it (trailing whitespace held).
std::string open_reasoning(std::string_view s, const ThinkMarkers& m, bool& closed) {
  std::string_view body = s.substr(m.open.size());
  const std::size_t e = body.find(m.close);
  closed = e != std::string_view::npos;
  if (closed) {
    body = body.substr(0, e);
  } else {
    for (std::size_t n = std::min(m.close.size() - 1, body.size()); n > 0; --n) {
      if (body.substr(body.size() - n) == m.close.substr(0, n)) {
        body = body.substr(0, body.size() - n);
        break;
      }
    }
  }
  return m.trimmed ? std::string(trim(body)) : std::string(body);
}

}  // namespace

// The text as if it opened with the thinking marker, or nullopt when it does not think (yet).
std::optional<std::string> ToolCallStream::opened() const {
  const auto m = think_markers(family_);
  if (!extract_reasoning_ || !m) return std::nullopt;
  if (starts_with(raw_, m->open)) return raw_;
  if (!reasoning_open_ || m->open.substr(0, raw_.size()) == raw_) return std::nullopt;  // may still write it
  return std::string(m->open) + raw_;
}

bool prompt_opens_reasoning(ChatFamily family, std::string_view prompt) {
  const auto m = think_markers(family);
  if (!m) return false;
  std::size_t e = prompt.size();
  while (e > 0 && is_ws(prompt[e - 1])) --e;
  return e >= m->open.size() && prompt.substr(e - m->open.size(), m->open.size()) == m->open;
}

void ToolCallStream::stream_reasoning() {
  const std::optional<std::string> text = opened();
  if (!text) return;
  bool closed = false;
  const std::string r = open_reasoning(*text, *think_markers(family_), closed);
  if (r.size() <= reasoning_shown_.size() || r.compare(0, reasoning_shown_.size(), reasoning_shown_) != 0) return;
  reasoning_pending_ += r.substr(reasoning_shown_.size());
  reasoning_shown_ = r;
}

std::string ToolCallStream::take_reasoning() { return std::exchange(reasoning_pending_, std::string()); }

std::string ToolCallStream::feed(std::string_view piece) {
  raw_ += piece;
  stream_reasoning();
  const std::size_t safe = safe_end();
  std::string visible;
  const std::string_view s = raw_;
  if (family_ == ChatFamily::kFunctionaryV32) {
    if (s.size() < 4 && std::string_view("all\n").substr(0, s.size()) == s) return "";
    if (!starts_with(s, "all\n")) return "";  // a call
    visible = safe > 4 ? std::string(s.substr(4, safe - 4)) : "";
  } else if (family_ == ChatFamily::kDeepSeekR1 && extract_reasoning_) {
    const std::size_t te = s.find("</think>");
    if (te == std::string_view::npos || safe < te + 8) return "";
    visible = ltrim(s.substr(te + 8, safe - te - 8));
  } else {
    visible = std::string(s.substr(0, safe));
  }
  if (visible.size() <= shown_.size() || visible.compare(0, shown_.size(), shown_) != 0) return "";
  std::string out = visible.substr(shown_.size());
  shown_ = visible;
  return out;
}

ToolCallStream::Final ToolCallStream::finish() {
  Final f;
  f.parsed = parse_tool_calls(family_, raw_, extract_reasoning_);
  const auto m = think_markers(family_);
  const std::optional<std::string> text = opened();
  if (!reasoning_shown_.empty() && f.parsed.reasoning_content.empty() && m && text) {
    bool closed = false;
    (void)open_reasoning(*text, *m, closed);
    if (!closed) {  // never closed: it was all reasoning
      const std::string_view body = std::string_view(*text).substr(m->open.size());
      f.parsed.reasoning_content = m->trimmed ? std::string(trim(body)) : std::string(body);
      f.parsed.content.clear();
      f.parsed.tool_calls.clear();
      f.parsed.tool_call_error.clear();
    }
  }
  const std::string& c = f.parsed.content;
  if (c.size() >= shown_.size() && c.compare(0, shown_.size(), shown_) == 0) f.rest = c.substr(shown_.size());
  const std::string& r = f.parsed.reasoning_content;
  if (r.size() >= reasoning_shown_.size() && r.compare(0, reasoning_shown_.size(), reasoning_shown_) == 0)
    f.reasoning_rest = reasoning_pending_ + r.substr(reasoning_shown_.size());
  return f;
}

ParsedChat parse_reply(ChatFamily family, std::string_view text, bool extract_reasoning, bool reasoning_open) {
  ToolCallStream s(family, extract_reasoning, reasoning_open);
  (void)s.feed(text);
  return s.finish().parsed;
}

}  // namespace g2c::tokenizer
