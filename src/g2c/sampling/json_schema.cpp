#include "g2c/sampling/json_schema.hpp"

#include <map>
#include <set>
#include <vector>

#include "g2c/core/error.hpp"

namespace g2c::sampling {
namespace {

using json = nlohmann::json;

// The primitives, each ending with optional bounded whitespace (`space`) as llama.cpp's converter does.
const char* kPrimitives = R"(space ::= | " " | "\n" [ \t]{0,20}
value ::= object | array | string | number | boolean | null
object ::= "{" space ( string ":" space value ( "," space string ":" space value )* )? "}" space
array ::= "[" space ( value ( "," space value )* )? "]" space
string ::= "\"" char* "\"" space
char ::= [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
integral-part ::= [0] | [1-9] [0-9]{0,15}
decimal-part ::= [0-9]{1,16}
number ::= "-"? integral-part ( "." decimal-part )? ( [eE] [-+]? integral-part )? space
integer ::= "-"? integral-part space
boolean ::= ( "true" | "false" ) space
null ::= "null" space
)";

// A GBNF string literal for `s` (UTF-8 kept as is).
std::string literal(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

class Converter {
 public:
  explicit Converter(const json& root) : root_(root) {}

  std::string run() {
    const std::string top = visit(root_, "root", "#");
    if (!unsupported_.empty()) {
      std::string list;
      for (const auto& u : unsupported_) list += (list.empty() ? "" : ", ") + u;
      throw InvalidArgument("json schema: unsupported keyword(s): " + list);
    }
    std::string out = "root ::= " + top + "\n";
    for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
    return out + kPrimitives;
  }

 private:
  std::string fresh(const std::string& hint) {
    std::string base;
    for (char c : hint) {
      const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      base += word ? c : '-';
    }
    if (base.empty()) base = "r";
    base = "s-" + base;  // never one of the primitives' names
    std::string name = base;
    for (int i = 2; used_.count(name); ++i) name = base + "-" + std::to_string(i);
    used_.insert(name);
    return name;
  }
  std::string rule(const std::string& hint, const std::string& body) {
    const std::string name = fresh(hint);
    rules_[name] = body;
    return name;
  }

  void check_keys(const json& s, const std::string& where) {
    static const std::set<std::string> known = {"type",      "properties",  "required", "additionalProperties",
                                                "items",     "minItems",    "maxItems", "minLength",
                                                "maxLength", "enum",        "const",    "anyOf",
                                                "oneOf",     "$ref",        "$defs",    "definitions",
                                                "title",     "description", "default",  "examples",
                                                "$schema",   "$id",         "$comment"};
    for (const auto& [k, v] : s.items()) {
      if (!known.count(k)) unsupported_.push_back(k + " (at " + where + ")");
    }
  }

  static int get_count(const json& s, const char* key, int dflt, const std::string& where) {
    if (!s.contains(key)) return dflt;
    const json& v = s.at(key);
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 100000) {
      throw InvalidArgument("json schema: " + std::string(key) + " at " + where +
                            ": expected an integer 0..100000, got " + v.dump());
    }
    return v.get<int>();
  }

  static std::string repeat(const std::string& item, int min, int max) {
    if (max == min) return "(" + item + "){" + std::to_string(min) + "}";
    return "(" + item + "){" + std::to_string(min) + "," + (max < 0 ? "" : std::to_string(max)) + "}";
  }

  // A GBNF expression (usually a rule name) for schema `s` found at JSON pointer `where`.
  std::string visit(const json& s, const std::string& hint, const std::string& where) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) throw InvalidArgument("json schema: `false` at " + where + " allows no value");
      return "value";
    }
    if (!s.is_object()) throw InvalidArgument("json schema at " + where + ": expected an object, got " + s.dump());
    check_keys(s, where);
    if (s.contains("$ref")) return ref(s.at("$ref"), where);
    if (s.contains("const")) return rule(hint, literal(s.at("const").dump()) + " space");
    if (s.contains("enum")) {
      const json& e = s.at("enum");
      if (!e.is_array() || e.empty())
        throw InvalidArgument("json schema: enum at " + where + ": expected a non-empty array");
      std::string body;
      for (const auto& v : e) body += (body.empty() ? "" : " | ") + literal(v.dump());
      return rule(hint, "(" + body + ") space");
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      const json& alts = s.at(key);
      if (!alts.is_array() || alts.empty()) {
        throw InvalidArgument("json schema: " + std::string(key) + " at " + where + ": expected a non-empty array");
      }
      std::string body;
      for (std::size_t i = 0; i < alts.size(); ++i) {
        body += (body.empty() ? "" : " | ") +
                visit(alts[i], hint + "-" + std::to_string(i), where + "/" + key + "/" + std::to_string(i));
      }
      return rule(hint, body);
    }
    if (s.contains("type")) {
      const json& t = s.at("type");
      if (t.is_array()) {
        if (t.empty()) throw InvalidArgument("json schema: type at " + where + ": an empty list allows nothing");
        std::string body;
        for (const auto& one : t) body += (body.empty() ? "" : " | ") + typed(s, one, hint, where);
        return rule(hint, body);
      }
      return typed(s, t, hint, where);
    }
    if (s.contains("properties") || s.contains("additionalProperties") || s.contains("required")) {
      return typed(s, "object", hint, where);
    }
    if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) return typed(s, "array", hint, where);
    if (s.contains("minLength") || s.contains("maxLength")) return typed(s, "string", hint, where);
    return "value";
  }

  std::string ref(const json& r, const std::string& where) {
    if (!r.is_string()) throw InvalidArgument("json schema: $ref at " + where + ": expected a string");
    const std::string target = r.get<std::string>();
    if (target.empty() || target[0] != '#') {
      throw InvalidArgument("json schema: $ref \"" + target + "\" at " + where +
                            ": only local references (#, #/$defs/name) are supported");
    }
    const auto it = refs_.find(target);
    if (it != refs_.end()) return it->second;
    const json* node = nullptr;
    try {
      node = &root_.at(json::json_pointer(target.substr(1)));
    } catch (const std::exception&) {
      throw InvalidArgument("json schema: $ref \"" + target + "\" at " + where + ": no such definition");
    }
    // The name exists before the body, so a recursive schema refers to itself.
    const std::string name = fresh(target.size() > 1 ? target.substr(target.rfind('/') + 1) : "root-ref");
    refs_[target] = name;
    rules_[name] = visit(*node, name, target);
    return name;
  }

  std::string typed(const json& s, const json& t, const std::string& hint, const std::string& where) {
    if (!t.is_string()) throw InvalidArgument("json schema: type at " + where + ": expected a string, got " + t.dump());
    const std::string type = t.get<std::string>();
    if (type == "number" || type == "integer" || type == "boolean" || type == "null") return type;
    if (type == "string") {
      const int min = get_count(s, "minLength", 0, where), max = get_count(s, "maxLength", -1, where);
      if (min == 0 && max < 0) return "string";
      if (max >= 0 && max < min) throw InvalidArgument("json schema: maxLength < minLength at " + where);
      return rule(hint, "\"\\\"\" " + repeat("char", min, max) + " \"\\\"\" space");
    }
    if (type == "array") {
      const std::string item = s.contains("items") ? visit(s.at("items"), hint + "-item", where + "/items") : "value";
      const int min = get_count(s, "minItems", 0, where), max = get_count(s, "maxItems", -1, where);
      if (max >= 0 && max < min) throw InvalidArgument("json schema: maxItems < minItems at " + where);
      if (max == 0) return rule(hint, "\"[\" space \"]\" space");
      const std::string more = "\",\" space " + item;
      const std::string seq = item + " " + repeat(more, min > 0 ? min - 1 : 0, max < 0 ? -1 : max - 1);
      return rule(hint, "\"[\" space " + (min > 0 ? seq : "( " + seq + " )?") + " \"]\" space");
    }
    if (type == "object") return object(s, hint, where);
    throw InvalidArgument("json schema: type \"" + type + "\" at " + where + " is not a JSON Schema type");
  }

  std::string object(const json& s, const std::string& hint, const std::string& where) {
    if (!s.contains("properties")) {
      if (s.contains("additionalProperties") && s.at("additionalProperties") == false) {
        return rule(hint, "\"{\" space \"}\" space");
      }
      return "object";
    }
    const json& props = s.at("properties");
    if (!props.is_object()) throw InvalidArgument("json schema: properties at " + where + ": expected an object");
    std::set<std::string> required;
    if (s.contains("required")) {
      for (const auto& r : s.at("required")) {
        if (!r.is_string()) throw InvalidArgument("json schema: required at " + where + ": expected strings");
        if (!props.contains(r.get<std::string>())) {
          throw InvalidArgument("json schema: required property \"" + r.get<std::string>() + "\" at " + where +
                                " is not in properties");
        }
        required.insert(r.get<std::string>());
      }
    }
    std::vector<std::pair<std::string, std::string>> kvs;  // (key, "key" ":" space value)
    std::vector<bool> req;
    for (const auto& [k, v] : props.items()) {
      const std::string val = visit(v, hint + "-" + k, where + "/properties/" + k);
      kvs.push_back({k, rule(hint + "-" + k + "-kv", literal(json(k).dump()) + " space \":\" space " + val)});
      req.push_back(required.count(k) > 0);
    }
    const std::size_t n = kvs.size();
    // rest[i]: properties i.. after at least one was written; first[i]: the same before any was.
    std::vector<std::string> rest(n + 1), first(n + 1);
    for (std::size_t i = n; i-- > 0;) {
      const std::string tail = i + 1 < n ? " " + rest[i + 1] : "";
      const std::string with = "\",\" space " + kvs[i].second + tail;
      std::string rest_body = with;
      if (!req[i]) rest_body = i + 1 < n ? "( " + with + " ) | " + rest[i + 1] : "( " + with + " )?";
      rest[i] = rule(hint + "-rest", rest_body);
      const std::string first_with = kvs[i].second + tail;
      if (req[i]) {
        first[i] = rule(hint + "-first", first_with);
      } else {
        first[i] = rule(hint + "-first", first_with + (i + 1 < n ? " | " + first[i + 1] : ""));
      }
    }
    bool any_required = false;
    for (bool r : req) any_required = any_required || r;
    const std::string inner = n == 0 ? "" : (any_required ? first[0] : "( " + first[0] + " )?");
    return rule(hint, "\"{\" space " + inner + " \"}\" space");
  }

  const json& root_;
  std::map<std::string, std::string> rules_;
  std::set<std::string> used_;
  std::map<std::string, std::string> refs_;
  std::vector<std::string> unsupported_;
};

}  // namespace

std::string json_schema_to_gbnf(const nlohmann::json& schema) { return Converter(schema).run(); }

std::string json_object_gbnf() { return json_schema_to_gbnf(json{{"type", "object"}}); }

}  // namespace g2c::sampling
