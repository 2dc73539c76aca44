#include "g2c/server/request_parse.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "g2c/sampling/grammar.hpp"
#include "g2c/sampling/json_schema.hpp"
#include "g2c/server/api_error.hpp"

namespace g2c::server {
namespace {

// A present, non-null member, else nullptr: null means "not given" in both APIs.
const Json* member(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string path_of(const std::string& prefix, const char* key) { return prefix.empty() ? key : prefix + "." + key; }

ApiError wrong_type(const std::string& path, const char* expected, const Json& v) {
  return bad_request(fmt::format("invalid request: {} must be {}, got {}", path, expected, v.type_name()), path);
}

std::optional<bool> get_bool(const Json& obj, const char* key, const std::string& prefix = {}) {
  const Json* v = member(obj, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) throw wrong_type(path_of(prefix, key), "a boolean", *v);
  return v->get<bool>();
}

std::optional<std::string> get_string(const Json& obj, const char* key, const std::string& prefix = {}) {
  const Json* v = member(obj, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) throw wrong_type(path_of(prefix, key), "a string", *v);
  return v->get<std::string>();
}

std::optional<double> get_number(const Json& obj, const char* key, const std::string& prefix = {}) {
  const Json* v = member(obj, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) throw wrong_type(path_of(prefix, key), "a number", *v);
  return v->get<double>();
}

// An integer in [lo, hi]; integral floats (100.0) are accepted, as JSON clients may send them.
std::optional<std::int64_t> get_int(const Json& obj, const char* key, std::int64_t lo, std::int64_t hi,
                                    const std::string& prefix = {}) {
  const Json* v = member(obj, key);
  if (v == nullptr) return std::nullopt;
  const std::string path = path_of(prefix, key);
  if (!v->is_number()) throw wrong_type(path, "an integer", *v);
  std::int64_t x = 0;
  if (v->is_number_integer() && !v->is_number_unsigned()) {
    x = v->get<std::int64_t>();
  } else if (v->is_number_unsigned()) {
    const auto u = v->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi))
      throw bad_request(fmt::format("invalid request: {} {} is out of range [{}, {}]", path, u, lo, hi), path);
    x = static_cast<std::int64_t>(u);
  } else {
    const double d = v->get<double>();
    if (d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi))
      throw bad_request(fmt::format("invalid request: {} must be an integer in [{}, {}], got {}", path, lo, hi, d),
                        path);
    x = static_cast<std::int64_t>(d);
  }
  if (x < lo || x > hi)
    throw bad_request(fmt::format("invalid request: {} {} is out of range [{}, {}]", path, x, lo, hi), path);
  return x;
}

constexpr std::int64_t kInt32Max = std::numeric_limits<std::int32_t>::max();

float in_range(double x, double lo, double hi, const std::string& path) {
  if (!(x >= lo && x <= hi))
    throw bad_request(fmt::format("invalid request: {} {} is out of range [{}, {}]", path, x, lo, hi), path);
  return static_cast<float>(x);
}

// A string, or an array of strings (Ollama's native API wants the array; a bare string is accepted).
std::vector<std::string> get_stop(const Json& obj, const std::string& prefix) {
  const Json* v = member(obj, "stop");
  if (v == nullptr) return {};
  const std::string path = path_of(prefix, "stop");
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array()) throw wrong_type(path, "a string or an array of strings", *v);
  std::vector<std::string> out;
  for (const Json& s : *v) {
    if (!s.is_string()) throw wrong_type(path + "[]", "a string", s);
    if (!s.get<std::string>().empty()) out.push_back(s.get<std::string>());
  }
  return out;
}

// The sampling keys shared by Ollama's `options` and the OpenAI body's llama.cpp-style extras.
void read_sampling_knobs(const Json& obj, const std::string& prefix, Sampling& s) {
  auto& sp = s.params.sampling;
  if (auto t = get_number(obj, "temperature", prefix))
    sp.temperature = in_range(*t, 0.0, 100.0, path_of(prefix, "temperature"));
  if (auto k = get_int(obj, "top_k", 0, kInt32Max, prefix)) sp.top_k = static_cast<std::int32_t>(*k);
  if (auto p = get_number(obj, "top_p", prefix)) sp.top_p = in_range(*p, 0.0, 1.0, path_of(prefix, "top_p"));
  if (auto p = get_number(obj, "min_p", prefix)) sp.min_p = in_range(*p, 0.0, 1.0, path_of(prefix, "min_p"));
  if (auto p = get_number(obj, "repeat_penalty", prefix))
    sp.repeat_penalty = in_range(*p, 0.0, 100.0, path_of(prefix, "repeat_penalty"));
  if (auto p = get_number(obj, "presence_penalty", prefix))
    sp.presence_penalty = in_range(*p, -100.0, 100.0, path_of(prefix, "presence_penalty"));
  if (auto p = get_number(obj, "frequency_penalty", prefix))
    sp.frequency_penalty = in_range(*p, -100.0, 100.0, path_of(prefix, "frequency_penalty"));
  if (auto n = get_int(obj, "repeat_last_n", -1, kInt32Max, prefix)) sp.repeat_last_n = static_cast<std::int32_t>(*n);
  if (auto seed = get_int(obj, "seed", std::numeric_limits<std::int64_t>::min(),
                          std::numeric_limits<std::int64_t>::max(), prefix))
    sp.seed = *seed < 0 ? sampling::kRandomSeed : static_cast<std::uint64_t>(*seed);
  if (auto n = get_int(obj, "num_ctx", 1, kInt32Max, prefix)) s.num_ctx = static_cast<std::int32_t>(*n);
  if (auto b = get_bool(obj, "ignore_eos", prefix)) s.params.ignore_eos = *b;
  if (member(obj, "stop") != nullptr) s.params.stop = get_stop(obj, prefix);
}

Sampling ollama_defaults() {
  Sampling s;
  auto& sp = s.params.sampling;
  sp.temperature = 0.8f;
  sp.top_k = 40;
  sp.top_p = 0.9f;
  sp.min_p = 0.0f;
  sp.repeat_penalty = 1.0f;
  sp.repeat_last_n = 64;
  sp.seed = sampling::kRandomSeed;
  s.params.max_tokens = -1;
  return s;
}

Sampling openai_defaults() {
  Sampling s = ollama_defaults();
  s.params.sampling.temperature = 1.0f;
  s.params.sampling.top_p = 1.0f;
  return s;
}

// Ollama's logprobs / top_logprobs (0-20).
void read_ollama_logprobs(const Json& body, Sampling& s) {
  if (auto b = get_bool(body, "logprobs")) s.params.logprobs = *b;
  if (auto n = get_int(body, "top_logprobs", 0, 20)) {
    s.params.top_logprobs = static_cast<std::int32_t>(*n);
    if (*n > 0) s.params.logprobs = true;
  }
}

// A grammar for structured output: the JSON Schema `schema`, or any JSON object when it is null. A schema
// g2c cannot convert is a 400 naming `field`.
std::shared_ptr<const sampling::Grammar> json_grammar(const Json* schema, const std::string& field) {
  try {
    return sampling::Grammar::parse(schema == nullptr ? sampling::json_object_gbnf()
                                                      : sampling::json_schema_to_gbnf(*schema));
  } catch (const InvalidArgument& e) {
    throw bad_request(fmt::format("invalid {}: {}", field, e.what()), field);
  }
}

// Ollama's format: "json" (any JSON object) or a JSON Schema object; "" or null: none.
void read_ollama_format(const Json& body, Sampling& s) {
  const Json* f = member(body, "format");
  if (f == nullptr || (f->is_string() && f->get<std::string>().empty())) return;
  if (f->is_string() && f->get<std::string>() == "json") {
    s.params.grammar = json_grammar(nullptr, "format");
  } else if (f->is_object()) {
    s.params.grammar = json_grammar(f, "format");
  } else {
    throw bad_request(fmt::format("invalid format: {}; expected \"json\" or a valid JSON Schema object", f->dump()),
                      "format");
  }
}

// tools: [{type: "function", function: {name, description, parameters}}] (checked for shape; whether
// the model can use them is decided with its template, once it is known).
std::vector<inference::ToolSpec> parse_tools(const Json& body) {
  std::vector<inference::ToolSpec> out;
  const Json* t = member(body, "tools");
  if (t == nullptr) return out;
  if (!t->is_array()) throw wrong_type("tools", "an array", *t);
  for (std::size_t i = 0; i < t->size(); ++i) {
    const Json& tool = (*t)[i];
    const std::string path = fmt::format("tools[{}]", i);
    if (!tool.is_object()) throw wrong_type(path, "an object", tool);
    if (tool.contains("type") && tool["type"] != "function")
      throw bad_request(fmt::format("invalid request: {}.type must be \"function\"", path), "tools");
    const Json* fn = member(tool, "function");
    if (fn == nullptr || !fn->is_object())
      throw bad_request(fmt::format("invalid request: {}.function must be an object", path), "tools");
    if (!fn->contains("name") || !(*fn)["name"].is_string() || (*fn)["name"].get<std::string>().empty())
      throw bad_request(fmt::format("invalid request: {}.function.name must be a non-empty string", path), "tools");
    Json spec = {{"type", "function"}, {"function", *fn}};
    out.push_back(std::move(spec));
  }
  return out;
}

void refuse_ollama_extras(const Json& body, const std::string& model, bool chat = false) {
  if (const Json* t = member(body, "tools"); t && !chat) {
    if (!t->is_array()) throw wrong_type("tools", "an array", *t);
    if (!t->empty()) throw bad_request(fmt::format("{} does not support tools", model), "tools");
  }
  if (const Json* th = member(body, "think"); th && !chat) {
    const bool on = th->is_boolean() ? th->get<bool>() : th->is_string();
    if (!th->is_boolean() && !th->is_string()) throw wrong_type("think", "a boolean or a string", *th);
    if (on) throw bad_request(fmt::format("{} does not support thinking", model), "think");
  }
}

std::optional<bool> parse_think(const Json& body) {
  const Json* th = member(body, "think");
  if (th == nullptr || th->is_null()) return std::nullopt;
  if (th->is_boolean()) return th->get<bool>();
  if (!th->is_string()) throw wrong_type("think", "a boolean or a string", *th);
  const std::string level = th->get<std::string>();
  if (level != "low" && level != "medium" && level != "high" && level != "max")
    throw bad_request(
        fmt::format("invalid request: think \"{}\" is not one of true, false, low, medium, high, max", level), "think");
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// content: a string, null, or (OpenAI) an array of parts whose text parts are joined; images are dropped.
std::string message_content(const Json& m, const std::string& path) {
  const Json* c = member(m, "content");
  if (c == nullptr) return {};
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array()) throw wrong_type(path + ".content", "a string, null or an array of content parts", *c);
  std::string text;
  for (const Json& part : *c) {
    if (part.is_string()) {
      text += part.get<std::string>();
      continue;
    }
    if (!part.is_object()) throw wrong_type(path + ".content[]", "an object", part);
    const Json* type = member(part, "type");
    if (type != nullptr && type->is_string() && type->get<std::string>() == "text") {
      if (auto t = get_string(part, "text", path + ".content[]")) text += *t;
    }
  }
  return text;
}

std::vector<inference::ChatMessage> parse_messages(const Json& body, bool openai) {
  const Json* ms = member(body, "messages");
  if (ms == nullptr) {
    if (openai) throw bad_request("invalid request: messages is required", "messages");
    return {};
  }
  if (!ms->is_array()) throw wrong_type("messages", "an array", *ms);
  if (openai && ms->empty())
    throw bad_request("invalid request: messages must not be empty ([] is too short)", "messages");
  std::vector<inference::ChatMessage> out;
  for (std::size_t i = 0; i < ms->size(); ++i) {
    const Json& m = (*ms)[i];
    const std::string path = fmt::format("messages[{}]", i);
    if (!m.is_object()) throw wrong_type(path, "an object", m);
    auto role = get_string(m, "role", path);
    if (!role) throw bad_request(fmt::format("invalid request: {}.role is required", path), path + ".role");
    std::string r = lower(*role);
    if (openai && r == "developer") r = "system";
    if (openai && r == "function") r = "tool";
    if (r != "system" && r != "user" && r != "assistant" && r != "tool")
      throw bad_request(
          fmt::format("invalid request: {}.role \"{}\" is not one of system, user, assistant, tool", path, *role),
          path + ".role");
    inference::ChatMessage msg;
    msg.role = r;
    msg.content = openai ? message_content(m, path) : get_string(m, "content", path).value_or("");
    if (auto n = get_string(m, "tool_name", path)) msg.tool_name = *n;
    if (auto n = get_string(m, "name", path); n && r == "tool" && msg.tool_name.empty()) msg.tool_name = *n;
    if (auto id = get_string(m, "tool_call_id", path)) msg.tool_call_id = *id;
    if (const Json* calls = member(m, "tool_calls")) {
      if (!calls->is_array()) throw wrong_type(path + ".tool_calls", "an array", *calls);
      for (const Json& c : *calls) {
        if (!c.is_object()) throw wrong_type(path + ".tool_calls[]", "an object", c);
        const Json* fn = member(c, "function");
        if (fn == nullptr || !fn->is_object())
          throw bad_request(fmt::format("invalid request: {}.tool_calls[].function must be an object", path),
                            path + ".tool_calls");
        const Json* args = member(*fn, "arguments");
        if (!openai && args != nullptr && !args->is_object())
          throw wrong_type(path + ".tool_calls[].function.arguments", "an object", *args);
        try {
          msg.tool_calls.push_back(inference::tool_call_from_json(c));
        } catch (const FormatError& e) {  // e.g. no function.name: the client's fault, a 400 naming the field
          throw bad_request(fmt::format("invalid request: {}.tool_calls[]: {}", path, e.what()), path + ".tool_calls");
        }
      }
    }
    out.push_back(std::move(msg));
  }
  return out;
}

std::vector<std::string> get_inputs(const Json& body, const char* key, bool allow_empty_array) {
  const Json* v = member(body, key);
  if (v == nullptr) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array())
    throw bad_request(
        fmt::format("invalid input type: {} must be a string or an array of strings, got {}", key, v->type_name()),
        key);
  if (v->empty() && !allow_empty_array)
    throw bad_request(fmt::format("invalid request: {} must not be an empty array", key), key);
  std::vector<std::string> out;
  for (const Json& s : *v) {
    if (!s.is_string())
      throw bad_request(fmt::format("invalid input type: {}[] must be strings, got {}", key, s.type_name()), key);
    out.push_back(s.get<std::string>());
  }
  return out;
}

// OpenAI's max_completion_tokens (preferred) or max_tokens; absent: unlimited.
void read_openai_common(const Json& body, Sampling& s) {
  // llama.cpp-style knobs in the body and an Ollama-style options object (num_ctx through /v1).
  if (const Json* o = member(body, "options")) {
    if (!o->is_object()) throw wrong_type("options", "an object", *o);
    read_sampling_knobs(*o, "options", s);
  }
  read_sampling_knobs(body, "", s);
  std::optional<std::int64_t> max = get_int(body, "max_tokens", 0, kInt32Max);
  if (auto m = get_int(body, "max_completion_tokens", 0, kInt32Max)) max = m;
  if (max) s.params.max_tokens = static_cast<std::int32_t>(*max);
  if (auto n = get_int(body, "n", 1, kInt32Max); n && *n != 1)
    throw bad_request("invalid request: only n = 1 is supported", "n");
  // llama-server's body-level extensions: a GBNF `grammar`, or a `json_schema` object.
  if (auto g = get_string(body, "grammar"); g && !g->empty()) {
    try {
      s.params.grammar = sampling::Grammar::parse(*g);
    } catch (const InvalidArgument& e) {
      throw bad_request(fmt::format("invalid grammar: {}", e.what()), "grammar");
    }
  }
  if (const Json* js = member(body, "json_schema")) {
    if (!js->is_object()) throw wrong_type("json_schema", "an object", *js);
    if (s.params.grammar) throw bad_request("invalid request: give grammar or json_schema, not both", "json_schema");
    s.params.grammar = json_grammar(js, "json_schema");
  }
  if (const Json* rf = member(body, "response_format")) {
    if (!rf->is_object()) throw wrong_type("response_format", "an object", *rf);
    const std::string type = get_string(*rf, "type", "response_format").value_or("text");
    if (type != "text") {
      if (type != "json_object" && type != "json_schema")
        throw bad_request(
            fmt::format("invalid request: response_format.type \"{}\" is not one of text, json_object, json_schema",
                        type),
            "response_format");
      // json_object: any JSON object, or (llama-server's leniency) the schema at response_format.schema;
      // json_schema: OpenAI's {"json_schema": {"name", "schema", "strict"}}, or a schema at
      // response_format.schema.
      const Json* schema = member(*rf, "schema");
      if (type == "json_schema") {
        if (const Json* js = member(*rf, "json_schema")) {
          if (!js->is_object()) throw wrong_type("response_format.json_schema", "an object", *js);
          schema = member(*js, "schema");
          if (schema == nullptr) {
            throw bad_request("invalid request: response_format.json_schema.schema is required",
                              "response_format.json_schema.schema");
          }
        } else if (schema == nullptr) {
          throw bad_request("invalid request: response_format.json_schema is required", "response_format.json_schema");
        }
      }
      if (s.params.grammar)
        throw bad_request("invalid request: give response_format or grammar / json_schema, not both",
                          "response_format");
      s.params.grammar = json_grammar(schema, "response_format");
    }
  }
}

// tools and tool_choice: "auto" (default) keeps the tools, "none" drops them (the prompt then has no
// tool definitions, as the template renders a request without tools); "required" and a named function
// need constrained decoding, which this server does not have yet: 400 rather than ignoring them.
std::vector<inference::ToolSpec> parse_openai_tools(const Json& body) {
  std::vector<inference::ToolSpec> tools = parse_tools(body);
  const Json* c = member(body, "tool_choice");
  if (c == nullptr) return tools;
  std::string choice;
  if (c->is_string()) {
    choice = c->get<std::string>();
    if (choice != "none" && choice != "auto" && choice != "required")
      throw bad_request(fmt::format("invalid request: tool_choice \"{}\" is not one of none, auto, required", choice),
                        "tool_choice");
  } else if (c->is_object()) {
    const Json* fn = member(*c, "function");
    if (!c->contains("type") || (*c)["type"] != "function" || fn == nullptr || !fn->is_object() ||
        !fn->contains("name") || !(*fn)["name"].is_string())
      throw bad_request(
          "invalid request: tool_choice must be none, auto, required or {\"type\": \"function\", "
          "\"function\": {\"name\": ...}}",
          "tool_choice");
    choice = "function " + (*fn)["name"].get<std::string>();
  } else {
    throw wrong_type("tool_choice", "a string or an object", *c);
  }
  if (choice == "none") return {};
  if (choice == "auto") return tools;
  throw bad_request(fmt::format("tool_choice {} is not supported by this server yet (forcing a call needs a grammar "
                                "for the template family's tool-call format): "
                                "refusing rather than answering without the forced call",
                                choice == "required" ? "\"required\"" : "(" + choice + ")"),
                    "tool_choice");
}

bool read_stream_options(const Json& body) {
  const Json* so = member(body, "stream_options");
  if (so == nullptr) return false;
  if (!so->is_object()) throw wrong_type("stream_options", "an object", *so);
  return get_bool(*so, "include_usage", "stream_options").value_or(false);
}

}  // namespace

Json parse_body(const std::string& body) {
  if (body.empty()) throw bad_request("missing request body");
  Json j;
  try {
    j = Json::parse(body);
  } catch (const Json::exception& e) {
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);  // drop "[json.exception...]"
    throw bad_request("invalid JSON: " + what);
  }
  if (!j.is_object())
    throw bad_request(fmt::format("invalid request: the body must be a JSON object, got {}", j.type_name()));
  return j;
}

std::optional<std::chrono::nanoseconds> parse_keep_alive(const Json& body) {
  using std::chrono::nanoseconds;
  const Json* v = member(body, "keep_alive");
  if (v == nullptr) return std::nullopt;
  auto from_seconds = [](double s) -> nanoseconds {
    if (s < 0) return nanoseconds::max();
    if (s > 1e9) return nanoseconds::max();
    return nanoseconds(static_cast<std::int64_t>(s * 1e9));
  };
  if (v->is_number()) return from_seconds(v->get<double>());
  if (!v->is_string()) throw wrong_type("keep_alive", "a number of seconds or a duration string", *v);
  const std::string s = v->get<std::string>();
  const ApiError bad = bad_request(
      fmt::format("invalid request: keep_alive \"{}\" is not a duration (e.g. \"5m\", \"1h30m\", \"300ms\", 0)", s),
      "keep_alive");
  if (s.empty()) throw bad;
  // A Go duration: [-]( number unit )+, units ns us µs ms s m h; a bare number is seconds.
  std::size_t i = 0;
  bool negative = false;
  if (s[0] == '-' || s[0] == '+') {
    negative = s[0] == '-';
    i = 1;
  }
  double total_s = 0;
  bool any = false;
  while (i < s.size()) {
    std::size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    if (j == i) throw bad;
    double num = 0;
    try {
      num = std::stod(s.substr(i, j - i));
    } catch (const std::exception&) {
      throw bad;
    }
    std::size_t k = j;
    while (k < s.size() && !std::isdigit(static_cast<unsigned char>(s[k])) && s[k] != '.') ++k;
    const std::string unit = s.substr(j, k - j);
    double mult = 0;
    if (unit.empty()) {
      if (any || k != s.size()) throw bad;  // a bare number only alone
      mult = 1;
    } else if (unit == "h") {
      mult = 3600;
    } else if (unit == "m") {
      mult = 60;
    } else if (unit == "s") {
      mult = 1;
    } else if (unit == "ms") {
      mult = 1e-3;
    } else if (unit == "us" || unit == "\xC2\xB5s") {
      mult = 1e-6;
    } else if (unit == "ns") {
      mult = 1e-9;
    } else {
      throw bad;
    }
    total_s += num * mult;
    any = true;
    i = k;
  }
  return from_seconds(negative && total_s > 0 ? -total_s : total_s);
}

std::string require_model(const Json& body, bool allow_name_alias) {
  std::optional<std::string> m = get_string(body, "model");
  if ((!m || m->empty()) && allow_name_alias) m = get_string(body, "name");
  if (!m || m->empty()) throw bad_request("model is required", "model");
  return *m;
}

Sampling parse_ollama_options(const Json& body) {
  Sampling s = ollama_defaults();
  const Json* o = member(body, "options");
  if (o == nullptr) return s;
  if (!o->is_object()) throw wrong_type("options", "an object", *o);
  read_sampling_knobs(*o, "options", s);
  // -1: no limit; -2 (older Ollama): fill the context. Both run until a stop or a full context here.
  if (auto n = get_int(*o, "num_predict", -2, kInt32Max, "options"))
    s.params.max_tokens = *n < 0 ? -1 : static_cast<std::int32_t>(*n);
  return s;
}

OllamaGenerateRequest parse_ollama_generate(const Json& body) {
  OllamaGenerateRequest r;
  r.model = require_model(body, false);
  r.prompt = get_string(body, "prompt").value_or("");
  r.system = get_string(body, "system").value_or("");
  r.raw = get_bool(body, "raw").value_or(false);
  r.stream = get_bool(body, "stream").value_or(true);
  r.truncate = get_bool(body, "truncate").value_or(false);
  if (const Json* c = member(body, "context")) {
    if (!c->is_array()) throw wrong_type("context", "an array of token ids", *c);
    for (const Json& id : *c) {
      if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() > kInt32Max)
        throw bad_request("invalid request: context must be an array of token ids (non-negative integers)", "context");
      r.context.push_back(static_cast<std::int32_t>(id.get<std::int64_t>()));
    }
  }
  if (r.raw && (!r.system.empty() || !r.context.empty() || member(body, "template") != nullptr))
    throw bad_request("raw mode does not support template, system, or context");
  if (auto suffix = get_string(body, "suffix"); suffix && !suffix->empty())
    throw bad_request(fmt::format("{} does not support insert", r.model), "suffix");
  refuse_ollama_extras(body, r.model);
  r.sampling = parse_ollama_options(body);
  read_ollama_format(body, r.sampling);
  read_ollama_logprobs(body, r.sampling);
  r.keep_alive = parse_keep_alive(body);
  return r;
}

OllamaChatRequest parse_ollama_chat(const Json& body) {
  OllamaChatRequest r;
  r.model = require_model(body, false);
  r.messages = parse_messages(body, false);
  r.stream = get_bool(body, "stream").value_or(true);
  r.truncate = get_bool(body, "truncate").value_or(false);
  refuse_ollama_extras(body, r.model, /*chat=*/true);
  r.think = parse_think(body);
  r.tools = parse_tools(body);
  r.sampling = parse_ollama_options(body);
  read_ollama_format(body, r.sampling);
  read_ollama_logprobs(body, r.sampling);
  r.keep_alive = parse_keep_alive(body);
  return r;
}

EmbedRequest parse_ollama_embed(const Json& body) {
  EmbedRequest r;
  r.model = require_model(body, false);
  r.inputs = get_inputs(body, "input", true);
  r.truncate = get_bool(body, "truncate").value_or(true);
  if (auto d = get_int(body, "dimensions", 1, kInt32Max)) r.dimensions = static_cast<std::int32_t>(*d);
  r.num_ctx = parse_ollama_options(body).num_ctx;
  r.keep_alive = parse_keep_alive(body);
  return r;
}

EmbedRequest parse_ollama_embeddings(const Json& body) {
  EmbedRequest r;
  r.model = require_model(body, false);
  if (auto p = get_string(body, "prompt")) r.inputs = {*p};
  r.num_ctx = parse_ollama_options(body).num_ctx;
  r.keep_alive = parse_keep_alive(body);
  return r;
}

OpenAICompletionRequest parse_openai_completion(const Json& body) {
  OpenAICompletionRequest r;
  r.model = require_model(body, false);
  const Json* p = member(body, "prompt");
  if (p == nullptr) throw bad_request("invalid request: prompt is required", "prompt");
  auto read_ids = [&](const Json& arr) {
    for (const Json& id : arr) {
      if (!id.is_number_integer()) throw wrong_type("prompt[]", "a token id (an integer)", id);
      const auto v = id.get<std::int64_t>();
      if (v < 0 || v > kInt32Max)
        throw bad_request(fmt::format("invalid request: token id {} in prompt is out of range", v), "prompt");
      r.prompt_ids.push_back(static_cast<std::int32_t>(v));
    }
    r.prompt_is_ids = true;
  };
  if (p->is_string()) {
    r.prompt_text = p->get<std::string>();
  } else if (p->is_array()) {
    if (p->empty()) throw bad_request("invalid request: prompt must not be an empty array", "prompt");
    const Json& first = (*p)[0];
    if (first.is_number()) {
      read_ids(*p);
    } else {
      if (p->size() != 1) throw bad_request("invalid request: only one prompt per request is supported", "prompt");
      if (first.is_string()) {
        r.prompt_text = first.get<std::string>();
      } else if (first.is_array()) {
        if (first.empty()) throw bad_request("invalid request: prompt must not be an empty array", "prompt");
        read_ids(first);
      } else {
        throw wrong_type("prompt[0]", "a string or an array of token ids", first);
      }
    }
  } else {
    throw wrong_type("prompt", "a string, an array of token ids, or an array of one of those", *p);
  }
  r.echo = get_bool(body, "echo").value_or(false);
  r.return_tokens = get_bool(body, "return_tokens").value_or(false);
  r.stream = get_bool(body, "stream").value_or(false);
  r.include_usage = read_stream_options(body);
  if (auto suffix = get_string(body, "suffix"); suffix && !suffix->empty())
    throw bad_request(fmt::format("{} does not support insert (suffix)", r.model), "suffix");
  if (auto b = get_int(body, "best_of", 1, kInt32Max); b && *b != 1)
    throw bad_request("invalid request: only best_of = 1 is supported", "best_of");
  r.sampling = openai_defaults();
  read_openai_common(body, r.sampling);
  if (const Json* lp = member(body, "logprobs")) {
    // Legacy: an integer N (the sampled token's logprob and N alternatives); true is read as 0.
    if (lp->is_boolean()) {
      r.sampling.params.logprobs = lp->get<bool>();
    } else {
      const auto n = get_int(body, "logprobs", 0, 20);
      r.sampling.params.logprobs = true;
      r.sampling.params.top_logprobs = static_cast<std::int32_t>(*n);
    }
  }
  r.sampling.params.prompt_logprobs = r.echo && r.sampling.params.logprobs;
  return r;
}

OpenAIChatRequest parse_openai_chat(const Json& body) {
  OpenAIChatRequest r;
  r.model = require_model(body, false);
  r.messages = parse_messages(body, true);
  r.stream = get_bool(body, "stream").value_or(false);
  r.include_usage = read_stream_options(body);
  r.tools = parse_openai_tools(body);
  r.sampling = openai_defaults();
  read_openai_common(body, r.sampling);
  r.sampling.params.logprobs = get_bool(body, "logprobs").value_or(false);
  if (auto n = get_int(body, "top_logprobs", 0, 20)) {
    if (!r.sampling.params.logprobs && *n > 0)
      throw bad_request("invalid request: top_logprobs requires logprobs: true", "top_logprobs");
    r.sampling.params.top_logprobs = static_cast<std::int32_t>(*n);
  }
  return r;
}

OpenAIEmbeddingsRequest parse_openai_embeddings(const Json& body) {
  OpenAIEmbeddingsRequest r;
  r.model = require_model(body, false);
  if (member(body, "input") == nullptr) throw bad_request("invalid request: input is required", "input");
  r.inputs = get_inputs(body, "input", false);
  const std::string fmt_ = get_string(body, "encoding_format").value_or("float");
  if (fmt_ != "float" && fmt_ != "base64")
    throw bad_request(fmt::format("invalid request: encoding_format \"{}\" is not one of float, base64", fmt_),
                      "encoding_format");
  r.base64 = fmt_ == "base64";
  if (auto d = get_int(body, "dimensions", 1, kInt32Max)) r.dimensions = static_cast<std::int32_t>(*d);
  return r;
}

}  // namespace g2c::server
