// Tool-call parsing against llama.cpp's tests/test-chat.cpp at c392e50 (data/tool_call_cases.json):
//  - "input" cases: the model output parsed into content / reasoning / calls (common_chat_parse cases);
//  - "delta" cases: llama.cpp's test_templates - the template renders [user] with the generation
//    prompt and [user, message] without it; the part that differs (end tokens cut) must be the
//    expected delta, i.e. g2c renders the assistant's call exactly as the model writes it, and parsing
//    the delta must give the message back.
// Plus streaming (text before a call is delivered, the call never is) and malformed calls.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "g2c/tokenizer/chat_template.hpp"
#include "g2c/tokenizer/tool_calls.hpp"

namespace g2c::tokenizer {
namespace {

using OJson = nlohmann::ordered_json;
const std::filesystem::path kDir = G2C_TOKENIZER_TEST_DIR;

std::string read(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Same message: content, reasoning, and calls (name, arguments as JSON, id).
std::string diff(const OJson& expected, const ParsedChat& got) {
  std::string why;
  if (got.content != expected["content"].get<std::string>())
    why += "content: expected '" + expected["content"].get<std::string>() + "', got '" + got.content + "'\n";
  if (got.reasoning_content != expected["reasoning_content"].get<std::string>())
    why += "reasoning: expected '" + expected["reasoning_content"].get<std::string>() + "', got '" +
           got.reasoning_content + "'\n";
  const auto& calls = expected["tool_calls"];
  if (calls.size() != got.tool_calls.size()) {
    why += "calls: expected " + std::to_string(calls.size()) + ", got " + std::to_string(got.tool_calls.size()) +
           (got.tool_call_error.empty() ? "" : " (" + got.tool_call_error + ")") + "\n";
    return why;
  }
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const auto& c = calls[i];
    const auto& g = got.tool_calls[i];
    if (g.name != c["name"].get<std::string>()) why += "name: " + g.name + "\n";
    if (g.arguments != OJson::parse(c["arguments"].get<std::string>()))
      why += "arguments: " + g.arguments.dump() + "\n";
    if (g.id != c["id"].get<std::string>()) why += "id: '" + g.id + "'\n";
  }
  return why;
}

// The assistant message of a case, in Hugging Face's shape (arguments as objects).
OJson assistant_message(const OJson& e) {
  OJson m = {{"role", "assistant"}};
  m["content"] = e["tool_calls"].empty() || !e["content"].get<std::string>().empty() ? OJson(e["content"]) : OJson();
  if (!e["tool_calls"].empty()) {
    OJson calls = OJson::array();
    for (const auto& c : e["tool_calls"]) {
      OJson tc = {{"type", "function"},
                  {"function", {{"name", c["name"]}, {"arguments", OJson::parse(c["arguments"].get<std::string>())}}}};
      if (!c["id"].get<std::string>().empty()) tc["id"] = c["id"];
      calls.push_back(tc);
    }
    m["tool_calls"] = calls;
  }
  return m;
}

// llama.cpp's init_delta: the common prefix (not eating a '<' where they diverge) removed, then the
// text cut at the last end token found.
std::string delta_of(const std::string& prefix, const std::string& full, const OJson& end_tokens) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < prefix.size() && i < full.size(); ++i) {
    if (prefix[i] != full[i]) break;
    if (prefix[i] == '<') continue;
    n = i + 1;
  }
  std::string d = full.substr(n);
  for (const auto& t : end_tokens) {
    const std::size_t p = d.rfind(t.get<std::string>());
    if (p != std::string::npos) {
      d = d.substr(0, p);
      break;
    }
  }
  return d;
}

TEST(ToolCalls, LlamaCppTestChatCases) {
  const OJson d = OJson::parse(read(kDir / "data/tool_call_cases.json"));
  std::map<std::string, std::pair<int, int>> parse_counts, delta_counts;
  for (const auto& c : d["cases"]) {
    const std::string file = c["template"];
    const ChatTemplate t = detect_chat_template(read(kDir / "data/templates" / file));
    ASSERT_TRUE(t.jinja) << file;
    const std::string fam = family_name(t.family);
    const bool extract = c.value("extract_reasoning", false);
    std::string text;
    if (c.contains("input")) {
      text = c["input"];
    } else {
      ChatRequest req;
      req.messages = OJson::array({d["user_message"]});
      req.tools = c["tools"];
      req.now_unix = 1721952000;
      std::string prefix, full;
      try {
        prefix = render_chat(t, req);
        req.messages.push_back(assistant_message(c["expected"]));
        req.add_generation_prompt = false;
        full = render_chat(t, req);
      } catch (const std::exception& e) {
        // llama-cpp-deepseek-r1.jinja passes `tools | map(...)` (a generator) to tojson: written for
        // llama.cpp's minja, it fails under jinja2 with tools, and so under g2c. Only its parse is checked.
        EXPECT_EQ(file, "llama-cpp-deepseek-r1.jinja") << e.what();
        EXPECT_NE(std::string(e.what()).find("generator"), std::string::npos) << e.what();
        const ParsedChat got = parse_tool_calls(t.family, c["delta"].get<std::string>(), extract);
        EXPECT_EQ(diff(c["expected"], got), "") << file;
        parse_counts[fam].first += diff(c["expected"], got).empty();
        parse_counts[fam].second += 1;
        delta_counts[fam + " (refused)"].second += 1;
        continue;
      }
      text = delta_of(prefix, full, c["end_tokens"]);
      const bool same = text == c["delta"].get<std::string>();
      EXPECT_TRUE(same) << file << ": rendered delta\n" << text << "\n---- expected\n" << c["delta"].get<std::string>();
      delta_counts[fam].first += same;
      delta_counts[fam].second += 1;
    }
    const ParsedChat got = parse_tool_calls(t.family, text, extract);
    const std::string why = diff(c["expected"], got);
    EXPECT_EQ(why, "") << file << " parsing:\n" << text;
    parse_counts[fam].first += why.empty();
    parse_counts[fam].second += 1;
  }
  for (const auto* table : {&parse_counts, &delta_counts}) {
    std::printf("%s\n", table == &parse_counts ? "test-chat.cpp parse cases (pass / total):"
                                               : "test-chat.cpp rendered deltas (pass / total):");
    int p = 0, n = 0;
    for (const auto& [f, c] : *table) {
      std::printf("  %-20s %3d %3d\n", f.c_str(), c.first, c.second);
      p += c.first;
      n += c.second;
    }
    std::printf("  %-20s %3d %3d\n", "all", p, n);
  }
}

TEST(ToolCalls, MalformedCallIsTextWithAnError) {
  const std::string bad = "Sure.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": }\n</tool_call>";
  const ParsedChat r = parse_tool_calls(ChatFamily::kHermes, bad);
  EXPECT_EQ(r.content, bad);
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_NE(r.tool_call_error.find("hermes tool call"), std::string::npos) << r.tool_call_error;
  const ParsedChat cut = parse_tool_calls(ChatFamily::kMistralNemo, "[TOOL_CALLS][{\"name\": \"f\", \"argu");
  EXPECT_FALSE(cut.tool_call_error.empty());
  EXPECT_EQ(cut.content, "[TOOL_CALLS][{\"name\": \"f\", \"argu");
  // JSON that is no call is content, not an error.
  const ParsedChat json = parse_tool_calls(ChatFamily::kLlama31, "{\"answer\": 42}");
  EXPECT_EQ(json.content, "{\"answer\": 42}");
  EXPECT_TRUE(json.tool_call_error.empty());
  EXPECT_TRUE(json.tool_calls.empty());
}

TEST(ToolCalls, TwoHermesCallsAndText) {
  const ParsedChat r = parse_tool_calls(
      ChatFamily::kHermes,
      "Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": "
      "\"b\", \"arguments\": \"{\\\"y\\\": [2]}\"}\n</tool_call>");
  ASSERT_EQ(r.tool_calls.size(), 2u) << r.tool_call_error;
  EXPECT_EQ(r.content, "Let me check.\n");
  EXPECT_EQ(r.tool_calls[1].name, "b");
  EXPECT_EQ(r.tool_calls[1].arguments, OJson::parse("{\"y\": [2]}"));  // a JSON-string argument object
}

// Streaming, one byte at a time: the shown text is the content before the call, never a piece of
// the call or its marker, and shown + rest is the parsed content.
void check_stream(ChatFamily f, const std::string& text, const std::string& content_before, std::size_t n_calls,
                  bool extract = false) {
  ToolCallStream s(f, extract);
  std::string shown;
  for (char c : text) shown += s.feed(std::string_view(&c, 1));
  const ToolCallStream::Final fin = s.finish();
  EXPECT_EQ(shown, content_before) << family_name(f);
  EXPECT_EQ(shown + fin.rest, fin.parsed.content) << family_name(f);
  EXPECT_EQ(fin.parsed.tool_calls.size(), n_calls) << family_name(f) << fin.parsed.tool_call_error;
}

TEST(ToolCalls, StreamingHoldsBackTheCall) {
  check_stream(ChatFamily::kHermes, "Checking <now>.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>",
               "Checking <now>.\n", 1);
  check_stream(ChatFamily::kMistralNemo, "Hi [TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}, \"id\": \"abcDEF123\"}]",
               "Hi ", 1);
  check_stream(ChatFamily::kLlama31, "{\"name\": \"a\", \"parameters\": {\"q\": \"x\"}}", "", 1);
  check_stream(ChatFamily::kLlama31, "Paris is sunny.", "Paris is sunny.", 0);
  check_stream(ChatFamily::kFunctionaryV32, "all\nHello>>>a\n{\"x\": 1}", "Hello", 1);
  check_stream(ChatFamily::kFunctionaryV32, "a\n{\"x\": 1}", "", 1);
  check_stream(
      ChatFamily::kDeepSeekR1,
      "<think>hmm</think>\n\nSo <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>a\n```json\n{}\n```<"
      "｜tool▁call▁end｜><｜tool▁calls▁end｜>",
      "So ", 1, /*extract=*/true);
  // A plain reply streams whole, even with a '<' that could have begun a marker.
  // (The tail "<tool" may still become "<tool_call>": it is held, and comes with finish().)
  check_stream(ChatFamily::kHermes, "a < b <tool", "a < b ", 0);
}

// Reasoning streamed, one byte at a time: it is taken in pieces before its closing marker arrives, never
// a piece of the marker, and taken + reasoning_rest is the parse's reasoning_content (the non-streamed
// parse's, when the thinking is closed); the content never holds any of it.
struct StreamedReasoning {
  std::string taken, content;
  std::size_t pieces_before_close = 0;
  ToolCallStream::Final fin;
};
StreamedReasoning stream_reasoning(ChatFamily f, const std::string& text, std::string_view close, bool open = false) {
  ToolCallStream s(f, /*extract_reasoning=*/true, open);
  StreamedReasoning out;
  std::string raw;
  for (char c : text) {
    raw += c;
    out.content += s.feed(std::string_view(&c, 1));
    const std::string r = s.take_reasoning();
    EXPECT_EQ(r.find('<'), std::string::npos) << "a marker piece shown as reasoning: " << r;
    if (!r.empty() && raw.find(close) == std::string::npos) ++out.pieces_before_close;
    out.taken += r;
  }
  out.fin = s.finish();
  out.content += out.fin.rest;
  out.taken += out.fin.reasoning_rest;
  return out;
}

TEST(ToolCalls, StreamingReasoning) {
  const std::string ds = "<think>\nFirst a, then b.\n</think>\n\nThe answer.";
  StreamedReasoning r = stream_reasoning(ChatFamily::kDeepSeekR1, ds, "</think>");
  EXPECT_EQ(r.taken, "First a, then b.");
  EXPECT_EQ(r.taken, parse_tool_calls(ChatFamily::kDeepSeekR1, ds, true).reasoning_content);
  EXPECT_GE(r.pieces_before_close, 10u);  // one per character: as generated, not at the end
  EXPECT_EQ(r.content, "The answer.");
  EXPECT_TRUE(r.fin.reasoning_rest.empty());

  const std::string cr = "<|START_THINKING|>Plan: x<|END_THINKING|><|START_RESPONSE|>Hi<|END_RESPONSE|>";
  r = stream_reasoning(ChatFamily::kCommandR7b, cr, "<|END_THINKING|>");
  EXPECT_EQ(r.taken, "Plan: x");
  EXPECT_EQ(r.taken, parse_tool_calls(ChatFamily::kCommandR7b, cr, true).reasoning_content);
  EXPECT_GE(r.pieces_before_close, 5u);
  EXPECT_EQ(r.content, "Hi");

  // Cut off while thinking: what was shown as reasoning stays reasoning.
  r = stream_reasoning(ChatFamily::kDeepSeekR1, "<think>still going </th", "</think>");
  EXPECT_EQ(r.taken, "still going </th");
  EXPECT_EQ(r.fin.parsed.reasoning_content, "still going </th");
  EXPECT_EQ(r.content, "");

  // No opening marker: the reasoning comes whole at the end; unless the prompt opened it (reasoning_open, as
  // the R1 distills' templates end with "<think>\n"), then it streams as well.
  r = stream_reasoning(ChatFamily::kDeepSeekR1, "abc</think>done", "</think>");
  EXPECT_EQ(r.pieces_before_close, 0u);
  EXPECT_EQ(r.taken, "abc");
  EXPECT_EQ(r.content, "done");
  r = stream_reasoning(ChatFamily::kDeepSeekR1, "First a, then b.\n</think>\n\ndone", "</think>", /*open=*/true);
  EXPECT_GE(r.pieces_before_close, 10u);
  EXPECT_EQ(r.taken, "First a, then b.");
  EXPECT_EQ(r.content, "done");
  r = stream_reasoning(ChatFamily::kDeepSeekR1, ds, "</think>", /*open=*/true);  // the model writes it anyway
  EXPECT_EQ(r.taken, "First a, then b.");
  EXPECT_EQ(r.content, "The answer.");
}

}  // namespace
}  // namespace g2c::tokenizer
