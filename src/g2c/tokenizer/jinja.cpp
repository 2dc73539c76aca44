#include "g2c/tokenizer/jinja.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace g2c::tokenizer::jinja {
namespace {

// ---------------------------------------------------------------------------------------------
// Values

struct Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // a Python dict: insertion order

struct Args;
using NativeFn = std::function<Value(Args&)>;

struct Value {
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kArray, kObject, kFunction };
  Kind kind = Kind::kUndefined;
  bool b = false;
  std::int64_t i = 0;
  double f = 0.0;
  std::string s;  // string; for kUndefined, the name that was undefined
  std::shared_ptr<Array> arr;
  std::shared_ptr<Object> obj;
  std::shared_ptr<NativeFn> fn;
  bool is_namespace = false;
  // A list that jinja2 would hold as a generator (map / select / reject results): iterable, but
  // len() and tojson fail on it, and `| list` makes it a list.
  bool is_generator = false;
  // A markupsafe.Markup string (from |safe or |e): `+` with a plain string HTML-escapes the plain one.
  bool markup = false;

  static Value undefined(std::string name = {}) {
    Value v;
    v.s = std::move(name);
    return v;
  }
  static Value none() {
    Value v;
    v.kind = Kind::kNone;
    return v;
  }
  static Value boolean(bool x) {
    Value v;
    v.kind = Kind::kBool;
    v.b = x;
    return v;
  }
  static Value integer(std::int64_t x) {
    Value v;
    v.kind = Kind::kInt;
    v.i = x;
    return v;
  }
  static Value number(double x) {
    Value v;
    v.kind = Kind::kFloat;
    v.f = x;
    return v;
  }
  static Value str(std::string x) {
    Value v;
    v.kind = Kind::kString;
    v.s = std::move(x);
    return v;
  }
  static Value array(Array a = {}) {
    Value v;
    v.kind = Kind::kArray;
    v.arr = std::make_shared<Array>(std::move(a));
    return v;
  }
  static Value object(Object o = {}) {
    Value v;
    v.kind = Kind::kObject;
    v.obj = std::make_shared<Object>(std::move(o));
    return v;
  }
  static Value function(NativeFn f) {
    Value v;
    v.kind = Kind::kFunction;
    v.fn = std::make_shared<NativeFn>(std::move(f));
    return v;
  }

  bool undefined_() const { return kind == Kind::kUndefined; }
  bool is_str() const { return kind == Kind::kString; }
  bool is_num() const { return kind == Kind::kInt || kind == Kind::kFloat; }
  double as_double() const { return kind == Kind::kInt ? static_cast<double>(i) : f; }
  const Value* find(std::string_view key) const {
    if (kind != Kind::kObject) return nullptr;
    for (const auto& [k, v] : *obj)
      if (k == key) return &v;
    return nullptr;
  }
  void put(const std::string& key, Value v) {
    for (auto& kv : *obj)
      if (kv.first == key) {
        kv.second = std::move(v);
        return;
      }
    obj->emplace_back(key, std::move(v));
  }
};

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // Positional i, else keyword `name`, else undefined.
  Value get(std::size_t idx, std::string_view name) const {
    for (const auto& [k, v] : kw)
      if (k == name) return v;
    if (idx < pos.size()) return pos[idx];
    return Value::undefined();
  }
};

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(j.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value::integer(static_cast<std::int64_t>(j.get<std::uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: return Value::number(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::str(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      Array a;
      for (const auto& e : j) a.push_back(from_json(e));
      return Value::array(std::move(a));
    }
    case nlohmann::ordered_json::value_t::object: {
      Object o;
      for (auto it = j.begin(); it != j.end(); ++it) o.emplace_back(it.key(), from_json(it.value()));
      return Value::object(std::move(o));
    }
    default: return Value::none();
  }
}

// Python's repr(float).
std::string py_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0.0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);  // "-1.2345e+02"
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  std::size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exp = std::stoi(sci.substr(e + 1));
  std::string out;
  if (exp < -4 || exp >= 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
  } else if (exp < 0) {
    out = "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
  } else {
    const auto ip = static_cast<std::size_t>(exp + 1);
    if (digits.size() <= ip) {
      out = digits + std::string(ip - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, ip) + "." + digits.substr(ip);
    }
  }
  return neg ? "-" + out : out;
}

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20)
          out += fmt::format("\\u{:04x}", c);
        else
          out += static_cast<char>(c);
    }
  }
  out += '"';
}

[[noreturn]] void fail(const std::string& msg) { throw TemplateError(msg); }

void dumps(std::string& out, const Value& v, int indent, int depth) {
  auto nl = [&](int d) {
    if (indent >= 0) out += "\n" + std::string(static_cast<std::size_t>(indent * d), ' ');
  };
  const char* item_sep = indent >= 0 ? "," : ", ";
  switch (v.kind) {
    case Value::Kind::kNone: out += "null"; break;
    case Value::Kind::kBool: out += v.b ? "true" : "false"; break;
    case Value::Kind::kInt: out += std::to_string(v.i); break;
    case Value::Kind::kFloat:
      out += std::isnan(v.f) ? "NaN" : std::isinf(v.f) ? (v.f > 0 ? "Infinity" : "-Infinity") : py_float(v.f);
      break;
    case Value::Kind::kString: json_string(out, v.s); break;
    case Value::Kind::kArray: {
      if (v.is_generator) fail("Object of type generator is not JSON serializable");
      if (v.arr->empty()) {
        out += "[]";
        break;
      }
      out += '[';
      for (std::size_t k = 0; k < v.arr->size(); ++k) {
        if (k) out += item_sep;
        nl(depth + 1);
        dumps(out, (*v.arr)[k], indent, depth + 1);
      }
      nl(depth);
      out += ']';
      break;
    }
    case Value::Kind::kObject: {
      if (v.obj->empty()) {
        out += "{}";
        break;
      }
      out += '{';
      bool first = true;
      for (const auto& [k, e] : *v.obj) {
        if (!first) out += item_sep;
        first = false;
        nl(depth + 1);
        json_string(out, k);
        out += ": ";
        dumps(out, e, indent, depth + 1);
      }
      nl(depth);
      out += '}';
      break;
    }
    default: fail("tojson: object of this type is not JSON serializable");
  }
}

std::string py_repr_str(const std::string& s) {
  const char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == static_cast<unsigned char>(q))
      out += std::string("\\") + q;
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  return out + q;
}

std::string to_str(const Value& v, bool repr = false) {
  switch (v.kind) {
    case Value::Kind::kUndefined: return "";
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return v.b ? "True" : "False";
    case Value::Kind::kInt: return std::to_string(v.i);
    case Value::Kind::kFloat: return py_float(v.f);
    case Value::Kind::kString: return repr ? py_repr_str(v.s) : v.s;
    case Value::Kind::kArray: {
      if (v.is_generator) return "<generator object>";
      std::string out = "[";
      for (std::size_t k = 0; k < v.arr->size(); ++k) out += (k ? ", " : "") + to_str((*v.arr)[k], true);
      return out + "]";
    }
    case Value::Kind::kObject: {
      if (v.is_namespace) return "<Namespace>";
      std::string out = "{";
      bool first = true;
      for (const auto& [k, e] : *v.obj) {
        out += (first ? "" : ", ") + py_repr_str(k) + ": " + to_str(e, true);
        first = false;
      }
      return out + "}";
    }
    case Value::Kind::kFunction: return "<function>";
  }
  return "";
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return false;
    case Value::Kind::kBool: return v.b;
    case Value::Kind::kInt: return v.i != 0;
    case Value::Kind::kFloat: return v.f != 0.0;
    case Value::Kind::kString: return !v.s.empty();
    case Value::Kind::kArray: return !v.arr->empty();
    case Value::Kind::kObject: return v.is_namespace || !v.obj->empty();
    case Value::Kind::kFunction: return true;
  }
  return false;
}

bool equal(const Value& a, const Value& b) {
  if (a.is_num() && b.is_num()) return a.as_double() == b.as_double();
  if (a.kind == Value::Kind::kBool && b.is_num()) return (a.b ? 1.0 : 0.0) == b.as_double();
  if (b.kind == Value::Kind::kBool && a.is_num()) return (b.b ? 1.0 : 0.0) == a.as_double();
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kBool: return a.b == b.b;
    case Value::Kind::kString: return a.s == b.s;
    case Value::Kind::kArray:
      if (a.arr->size() != b.arr->size()) return false;
      for (std::size_t k = 0; k < a.arr->size(); ++k)
        if (!equal((*a.arr)[k], (*b.arr)[k])) return false;
      return true;
    case Value::Kind::kObject:
      if (a.obj->size() != b.obj->size()) return false;
      for (const auto& [k, v] : *a.obj) {
        const Value* o = b.find(k);
        if (!o || !equal(v, *o)) return false;
      }
      return true;
    case Value::Kind::kFunction: return a.fn == b.fn;
    default: return false;
  }
}

const char* type_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kNone: return "NoneType";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInt: return "int";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return "str";
    case Value::Kind::kArray: return "list";
    case Value::Kind::kObject: return "dict";
    case Value::Kind::kFunction: return "function";
  }
  return "?";
}

// -1, 0, 1 (Python's < on numbers and strings; lists lexicographically).
int compare(const Value& a, const Value& b) {
  if ((a.is_num() || a.kind == Value::Kind::kBool) && (b.is_num() || b.kind == Value::Kind::kBool)) {
    const double x = a.kind == Value::Kind::kBool ? a.b : a.as_double();
    const double y = b.kind == Value::Kind::kBool ? b.b : b.as_double();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_str() && b.is_str()) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
  if (a.kind == Value::Kind::kArray && b.kind == Value::Kind::kArray) {
    for (std::size_t k = 0; k < std::min(a.arr->size(), b.arr->size()); ++k) {
      const int c = compare((*a.arr)[k], (*b.arr)[k]);
      if (c) return c;
    }
    return a.arr->size() < b.arr->size() ? -1 : a.arr->size() > b.arr->size() ? 1 : 0;
  }
  fail(fmt::format("'<' not supported between instances of '{}' and '{}'", type_name(a), type_name(b)));
}

// Items a for loop / filter walks: list elements, dict keys, string characters (UTF-8 sequences).
Array iterate(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kArray: return *v.arr;
    case Value::Kind::kObject: {
      Array a;
      for (const auto& [k, e] : *v.obj) a.push_back(Value::str(k));
      return a;
    }
    case Value::Kind::kString: {
      Array a;
      for (std::size_t k = 0; k < v.s.size();) {
        std::size_t n = 1;
        const auto c = static_cast<unsigned char>(v.s[k]);
        if (c >= 0xf0)
          n = 4;
        else if (c >= 0xe0)
          n = 3;
        else if (c >= 0xc0)
          n = 2;
        a.push_back(Value::str(v.s.substr(k, n)));
        k += n;
      }
      return a;
    }
    default: fail(fmt::format("'{}' object is not iterable", type_name(v)));
  }
}

std::int64_t length(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return static_cast<std::int64_t>(iterate(v).size());
    case Value::Kind::kArray:
      if (v.is_generator) fail("object of type 'generator' has no len()");
      return static_cast<std::int64_t>(v.arr->size());
    case Value::Kind::kObject: return static_cast<std::int64_t>(v.obj->size());
    default: fail(fmt::format("object of type '{}' has no len()", type_name(v)));
  }
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value generator(Array a) {
  Value v = Value::array(std::move(a));
  v.is_generator = true;
  return v;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string strip(std::string_view s, std::string_view chars, bool left, bool right) {
  auto in = [&](char c) { return chars.empty() ? is_space(c) : chars.find(c) != std::string_view::npos; };
  std::size_t b = 0, e = s.size();
  if (left)
    while (b < e && in(s[b])) ++b;
  if (right)
    while (e > b && in(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

bool is_alpha(unsigned char c) { return std::isalpha(c) || c >= 0x80; }

std::string title(std::string s) {
  bool prev_cased = false;
  for (char& ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalpha(c)) {
      ch = static_cast<char>(prev_cased ? std::tolower(c) : std::toupper(c));
      prev_cased = true;
    } else {
      prev_cased = is_alpha(c);
    }
  }
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, std::int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` between every character
    for (char c : s) {
      if (count-- != 0) out += to;
      out += c;
    }
    if (count != 0) out += to;
    return out;
  }
  std::size_t pos = 0;
  while (count != 0) {
    std::size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out += s.substr(pos, hit - pos) + to;
    pos = hit + from.size();
    --count;
  }
  return out + s.substr(pos);
}

Array split(const std::string& s, const Value& sep, std::int64_t maxsplit) {
  Array out;
  if (sep.undefined_() || sep.kind == Value::Kind::kNone) {
    std::size_t k = 0;
    while (k < s.size()) {
      while (k < s.size() && is_space(s[k])) ++k;
      if (k >= s.size()) break;
      if (maxsplit == 0) {
        std::string rest = strip(s.substr(k), "", false, true);
        out.push_back(Value::str(rest));
        break;
      }
      std::size_t e = k;
      while (e < s.size() && !is_space(s[e])) ++e;
      out.push_back(Value::str(s.substr(k, e - k)));
      k = e;
      --maxsplit;
    }
    return out;
  }
  if (!sep.is_str() || sep.s.empty()) fail("split(): empty or non-string separator");
  std::size_t pos = 0;
  while (maxsplit != 0) {
    std::size_t hit = s.find(sep.s, pos);
    if (hit == std::string::npos) break;
    out.push_back(Value::str(s.substr(pos, hit - pos)));
    pos = hit + sep.s.size();
    --maxsplit;
  }
  out.push_back(Value::str(s.substr(pos)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Lexer: template text -> segments; tag contents -> expression tokens.

struct Loc {
  int line = 1, col = 1;
};

std::string at(const Loc& l) { return fmt::format("line {}:{}", l.line, l.col); }

enum class Tok { kName, kString, kInt, kFloat, kOp, kEnd };

struct Token {
  Tok type = Tok::kEnd;
  std::string text;
  Loc loc;
};

struct Segment {
  enum class Kind { kText, kExpr, kStmt } kind;
  std::string text;
  Loc loc;  // of the text or of the tag's first character
  std::vector<Token> toks;
};

Loc loc_of(std::string_view src, std::size_t pos) {
  Loc l;
  for (std::size_t k = 0; k < pos && k < src.size(); ++k) {
    if (src[k] == '\n') {
      ++l.line;
      l.col = 1;
    } else {
      ++l.col;
    }
  }
  return l;
}

std::vector<Token> tokenize(std::string_view src, std::size_t b, std::size_t e) {
  std::vector<Token> out;
  std::size_t k = b;
  while (k < e) {
    const char c = src[k];
    if (is_space(c)) {
      ++k;
      continue;
    }
    Token t;
    t.loc = loc_of(src, k);
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t s = k;
      while (k < e && (std::isalnum(static_cast<unsigned char>(src[k])) || src[k] == '_')) ++k;
      t.type = Tok::kName;
      t.text = std::string(src.substr(s, k - s));
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      std::size_t s = k;
      while (k < e && (std::isdigit(static_cast<unsigned char>(src[k])) || src[k] == '_')) ++k;
      t.type = Tok::kInt;
      if (k + 1 < e && src[k] == '.' && std::isdigit(static_cast<unsigned char>(src[k + 1]))) {
        ++k;
        while (k < e && std::isdigit(static_cast<unsigned char>(src[k]))) ++k;
        t.type = Tok::kFloat;
      }
      if (k < e && (src[k] == 'e' || src[k] == 'E')) {
        ++k;
        if (k < e && (src[k] == '+' || src[k] == '-')) ++k;
        while (k < e && std::isdigit(static_cast<unsigned char>(src[k]))) ++k;
        t.type = Tok::kFloat;
      }
      t.text = std::string(src.substr(s, k - s));
      t.text.erase(std::remove(t.text.begin(), t.text.end(), '_'), t.text.end());
    } else if (c == '\'' || c == '"') {
      ++k;
      std::string s;
      while (k < e && src[k] != c) {
        if (src[k] == '\\' && k + 1 < e) {
          const char n = src[++k];
          switch (n) {
            case 'n': s += '\n'; break;
            case 't': s += '\t'; break;
            case 'r': s += '\r'; break;
            case '\\': s += '\\'; break;
            case '\'': s += '\''; break;
            case '"': s += '"'; break;
            case '\n': break;
            default: s += '\\', s += n;
          }
          ++k;
        } else {
          s += src[k++];
        }
      }
      if (k >= e) throw TemplateError(at(t.loc) + ": unterminated string");
      ++k;
      t.type = Tok::kString;
      t.text = std::move(s);
    } else {
      static const char* kOps[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                   ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|"};
      bool found = false;
      for (const char* op : kOps) {
        const std::size_t n = std::char_traits<char>::length(op);
        if (src.substr(k, n) == op && k + n <= e) {
          t.type = Tok::kOp;
          t.text = op;
          k += n;
          found = true;
          break;
        }
      }
      if (!found) throw TemplateError(at(t.loc) + fmt::format(": unexpected character '{}'", c));
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.loc = loc_of(src, e);
  out.push_back(end);
  return out;
}

// Splits the source into text and tags, applying -/+ whitespace control, trim_blocks,
// lstrip_blocks, and keep_trailing_newline=False as jinja2's lexer does.
std::vector<Segment> split_template(std::string_view src) {
  std::vector<Segment> segs;
  std::size_t pos = 0;
  bool strip_next = false;    // previous tag ended with '-'
  bool line_starting = true;  // jinja2's lexer state for lstrip_blocks
  bool trim_newline = false;  // trim_blocks after a block tag
  std::string_view s = src;
  if (!s.empty() && s.back() == '\n') s.remove_suffix(s.size() >= 2 && s[s.size() - 2] == '\r' ? 2 : 1);
  while (pos <= s.size()) {
    std::size_t open = s.find('{', pos);
    while (open != std::string_view::npos && open + 1 < s.size() && s[open + 1] != '{' && s[open + 1] != '%' &&
           s[open + 1] != '#')
      open = s.find('{', open + 1);
    if (open != std::string_view::npos && open + 1 >= s.size()) open = std::string_view::npos;
    const std::size_t text_end = open == std::string_view::npos ? s.size() : open;
    std::string text(s.substr(pos, text_end - pos));
    if (trim_newline && !text.empty() && text[0] == '\n') text.erase(0, 1);
    if (strip_next) text = strip(text, "", true, false);
    Loc text_loc = loc_of(src, pos);
    if (open == std::string_view::npos) {
      if (!text.empty()) segs.push_back({Segment::Kind::kText, std::move(text), text_loc, {}});
      break;
    }
    const char kind = s[open + 1];
    const char mod = open + 2 < s.size() ? s[open + 2] : '\0';
    if (mod == '-') {
      text = strip(text, "", false, true);
    } else if (mod != '+' && kind != '{') {
      // lstrip_blocks: only whitespace between the line start and the tag.
      const std::size_t nl = text.rfind('\n');
      const std::size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if (l_pos > 0 || line_starting) {
        bool ws = true;
        for (std::size_t k = l_pos; k < text.size(); ++k) ws = ws && (text[k] == ' ' || text[k] == '\t');
        if (ws) text.resize(l_pos);
      }
    }
    if (!text.empty()) segs.push_back({Segment::Kind::kText, std::move(text), text_loc, {}});
    const std::size_t body = open + 2 + (mod == '-' || mod == '+' ? 1 : 0);
    const std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    std::size_t close_pos = body;
    // Find the closing delimiter outside string literals.
    char quote = 0;
    for (; close_pos + 1 < s.size() + 1; ++close_pos) {
      if (close_pos >= s.size()) {
        close_pos = std::string_view::npos;
        break;
      }
      const char c = s[close_pos];
      if (kind != '#' && quote) {
        if (c == '\\')
          ++close_pos;
        else if (c == quote)
          quote = 0;
        continue;
      }
      if (kind != '#' && (c == '\'' || c == '"')) {
        quote = c;
        continue;
      }
      if (s.substr(close_pos, 2) == close) break;
    }
    if (close_pos == std::string_view::npos || close_pos >= s.size())
      throw TemplateError(at(loc_of(src, open)) + ": tag not closed (expected '" + close + "')");
    std::size_t inner_end = close_pos;
    strip_next = false;
    if (inner_end > body && s[inner_end - 1] == '-') {
      --inner_end;
      strip_next = true;
    } else if (inner_end > body && s[inner_end - 1] == '+' && kind != '{') {
      --inner_end;
    }
    const bool plus_close = close_pos > body && s[close_pos - 1] == '+';
    std::size_t after = close_pos + 2;
    trim_newline = kind != '{' && !strip_next && !plus_close;
    line_starting = false;
    if (trim_newline && after < s.size() && s[after] == '\n') line_starting = true;
    if (strip_next) {
      // jinja2 matches the trailing whitespace with the tag: the line starts if it ended in a newline.
      std::size_t k = after;
      while (k < s.size() && is_space(s[k])) ++k;
      line_starting = k > after && s[k - 1] == '\n';
    }
    if (kind != '#') {
      Segment seg{kind == '{' ? Segment::Kind::kExpr : Segment::Kind::kStmt, {}, loc_of(src, open), {}};
      seg.toks = tokenize(src, body, inner_end);
      // {% raw %} ... {% endraw %}: the body is text.
      if (seg.kind == Segment::Kind::kStmt && seg.toks.size() == 2 && seg.toks[0].text == "raw") {
        const std::size_t end_raw = s.find("endraw", after);
        if (end_raw == std::string_view::npos) throw TemplateError(at(seg.loc) + ": {% raw %} without {% endraw %}");
        std::size_t tag_open = s.rfind("{%", end_raw);
        std::string raw(s.substr(after, tag_open - after));
        if (trim_newline && !raw.empty() && raw[0] == '\n') raw.erase(0, 1);
        if (tag_open + 2 < s.size() && s[tag_open + 2] == '-') raw = strip(raw, "", false, true);
        segs.push_back({Segment::Kind::kText, std::move(raw), loc_of(src, after), {}});
        std::size_t raw_close = s.find("%}", end_raw);
        if (raw_close == std::string_view::npos) throw TemplateError(at(seg.loc) + ": {% endraw %} not closed");
        strip_next = s[raw_close - 1] == '-';
        trim_newline = !strip_next;
        pos = raw_close + 2;
        continue;
      }
      segs.push_back(std::move(seg));
    }
    pos = after;
  }
  return segs;
}

// ---------------------------------------------------------------------------------------------
// AST

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Op {
    kLiteral,
    kName,
    kList,
    kDict,
    kTuple,
    kGetAttr,
    kGetItem,
    kSlice,
    kCall,
    kFilter,
    kTest,
    kNot,
    kNeg,
    kPos,
    kAnd,
    kOr,
    kBinary,
    kCompare,
    kCond
  } op;
  Loc loc;
  Value literal;
  std::string name;  // kName, kGetAttr attr, kFilter / kTest name, kBinary / kCompare operator
  std::vector<ExprPtr> kids;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // calls, filters, tests; dict entries use kids pairs
  bool negated = false;                                 // is not
};

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum class Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue, kFilterBlock };
  Kind kind;
  Loc loc;
  std::string text;                                     // kText
  ExprPtr expr;                                         // kOutput, kSet value, kFor iterable
  std::vector<std::pair<ExprPtr, Body>> branches;       // kIf: (condition or null for else, body)
  std::vector<std::string> targets;                     // kFor loop variables, kSet names
  std::string attr;                                     // kSet: ns.attr
  ExprPtr cond;                                         // kFor filter
  Body body, else_body;                                 // kFor, kSetBlock, kMacro, kFilterBlock
  std::string name;                                     // kMacro
  std::vector<std::pair<std::string, ExprPtr>> params;  // kMacro
  ExprPtr filter;                                       // kFilterBlock (a kFilter with null input) / kSetBlock
};

}  // namespace

struct Program {
  Body body;
};

namespace {

const std::map<std::string, int, std::less<>>& known_filters() {
  static const std::map<std::string, int, std::less<>> m = {
      {"abs", 0},     {"capitalize", 0}, {"count", 0}, {"default", 0}, {"d", 0},          {"first", 0},
      {"float", 0},   {"indent", 0},     {"int", 0},   {"items", 0},   {"join", 0},       {"last", 0},
      {"length", 0},  {"list", 0},       {"lower", 0}, {"map", 0},     {"reject", 0},     {"rejectattr", 0},
      {"replace", 0}, {"round", 0},      {"safe", 0},  {"select", 0},  {"selectattr", 0}, {"string", 0},
      {"title", 0},   {"tojson", 0},     {"trim", 0},  {"unique", 0},  {"upper", 0},      {"dictsort", 0},
      {"sum", 0},     {"min", 0},        {"max", 0},   {"reverse", 0}, {"sort", 0},       {"wordcount", 0},
      {"batch", 0},   {"center", 0},     {"e", 0},     {"escape", 0}};
  return m;
}

const std::map<std::string, int, std::less<>>& known_tests() {
  static const std::map<std::string, int, std::less<>> m = {
      {"defined", 0}, {"undefined", 0}, {"none", 0},    {"string", 0},   {"number", 0},      {"integer", 0},
      {"float", 0},   {"boolean", 0},   {"mapping", 0}, {"iterable", 0}, {"sequence", 0},    {"callable", 0},
      {"true", 0},    {"false", 0},     {"odd", 0},     {"even", 0},     {"divisibleby", 0}, {"eq", 0},
      {"equalto", 0}, {"==", 0},        {"ne", 0},      {"!=", 0},       {"lt", 0},          {"<", 0},
      {"le", 0},      {"<=", 0},        {"gt", 0},      {">", 0},        {"ge", 0},          {">=", 0},
      {"in", 0},      {"sameas", 0},    {"lower", 0},   {"upper", 0}};
  return m;
}

class Parser {
 public:
  explicit Parser(std::vector<Segment> segs) : segs_(std::move(segs)) {}

  Body parse_all() {
    Body b = parse_body({});
    if (seg_ < segs_.size()) fail_at(segs_[seg_].loc, "unexpected '" + segs_[seg_].toks[0].text + "'");
    return b;
  }

 private:
  std::vector<Segment> segs_;
  std::size_t seg_ = 0;
  const std::vector<Token>* toks_ = nullptr;
  std::size_t pos_ = 0;

  [[noreturn]] static void fail_at(const Loc& l, const std::string& msg) { throw TemplateError(at(l) + ": " + msg); }

  // Statement keyword of the segment at seg_ (or "" when it is not a statement).
  std::string keyword() const {
    if (seg_ >= segs_.size() || segs_[seg_].kind != Segment::Kind::kStmt) return "";
    return segs_[seg_].toks[0].type == Tok::kName ? segs_[seg_].toks[0].text : "";
  }

  Body parse_body(const std::vector<std::string>& enders) {
    Body body;
    while (seg_ < segs_.size()) {
      Segment& sg = segs_[seg_];
      if (sg.kind == Segment::Kind::kText) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kText;
        n->loc = sg.loc;
        n->text = sg.text;
        body.push_back(std::move(n));
        ++seg_;
        continue;
      }
      start(sg);
      if (sg.kind == Segment::Kind::kExpr) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kOutput;
        n->loc = sg.loc;
        n->expr = parse_expr();
        expect_end();
        body.push_back(std::move(n));
        ++seg_;
        continue;
      }
      const std::string kw = keyword();
      if (std::find(enders.begin(), enders.end(), kw) != enders.end()) return body;
      body.push_back(parse_statement(kw));
    }
    if (!enders.empty()) {
      std::string list;
      for (const auto& e : enders) list += (list.empty() ? "" : " or ") + ("'" + e + "'");
      fail_at(segs_.empty() ? Loc{} : segs_.back().loc, "template ended while looking for " + list);
    }
    return body;
  }

  void start(const Segment& sg) {
    toks_ = &sg.toks;
    pos_ = 0;
  }
  const Token& peek(std::size_t ahead = 0) const { return (*toks_)[std::min(pos_ + ahead, toks_->size() - 1)]; }
  Token next() { return (*toks_)[pos_ < toks_->size() - 1 ? pos_++ : pos_]; }
  bool is_op(const char* op, std::size_t ahead = 0) const {
    return peek(ahead).type == Tok::kOp && peek(ahead).text == op;
  }
  bool is_name(const char* n, std::size_t ahead = 0) const {
    return peek(ahead).type == Tok::kName && peek(ahead).text == n;
  }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    ++pos_;
    return true;
  }
  bool accept_name(const char* n) {
    if (!is_name(n)) return false;
    ++pos_;
    return true;
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) fail_at(peek().loc, fmt::format("expected '{}', got '{}'", op, peek().text));
  }
  std::string expect_name() {
    if (peek().type != Tok::kName) fail_at(peek().loc, fmt::format("expected a name, got '{}'", peek().text));
    return next().text;
  }
  void expect_end() {
    if (peek().type != Tok::kEnd) fail_at(peek().loc, fmt::format("unexpected '{}'", peek().text));
  }

  std::unique_ptr<Node> parse_statement(const std::string& kw) {
    Segment& sg = segs_[seg_];
    auto n = std::make_unique<Node>();
    n->loc = sg.loc;
    next();  // keyword
    if (kw == "if") {
      n->kind = Node::Kind::kIf;
      ExprPtr c = parse_expr();
      expect_end();
      ++seg_;
      while (true) {
        Body b = parse_body({"elif", "else", "endif"});
        n->branches.emplace_back(std::move(c), std::move(b));
        start(segs_[seg_]);
        const std::string k = next().text;
        if (k == "endif") {
          expect_end();
          ++seg_;
          break;
        }
        if (k == "elif") {
          c = parse_expr();
        } else {
          c = nullptr;
        }
        expect_end();
        ++seg_;
        if (k == "else") {
          Body eb = parse_body({"endif"});
          n->branches.emplace_back(nullptr, std::move(eb));
          start(segs_[seg_]);
          next();
          expect_end();
          ++seg_;
          break;
        }
      }
      return n;
    }
    if (kw == "for") {
      n->kind = Node::Kind::kFor;
      n->targets.push_back(expect_name());
      while (accept_op(",")) n->targets.push_back(expect_name());
      if (!accept_name("in")) fail_at(peek().loc, "expected 'in' in for loop");
      n->expr = parse_or_expr_no_cond();
      if (accept_name("if")) n->cond = parse_or_expr_no_cond();
      if (is_name("recursive")) fail_at(peek().loc, "recursive for loops are not supported");
      expect_end();
      ++seg_;
      n->body = parse_body({"else", "endfor"});
      start(segs_[seg_]);
      if (next().text == "else") {
        expect_end();
        ++seg_;
        n->else_body = parse_body({"endfor"});
        start(segs_[seg_]);
        next();
      }
      expect_end();
      ++seg_;
      return n;
    }
    if (kw == "set") {
      std::string target = expect_name();
      if (accept_op(".")) n->attr = expect_name();
      n->targets.push_back(target);
      while (n->attr.empty() && accept_op(",")) n->targets.push_back(expect_name());
      if (accept_op("=")) {
        n->kind = Node::Kind::kSet;
        n->expr = parse_expr_tuple();
        expect_end();
        ++seg_;
        return n;
      }
      n->kind = Node::Kind::kSetBlock;
      if (accept_op("|")) n->filter = parse_filter_chain(nullptr);
      expect_end();
      ++seg_;
      n->body = parse_body({"endset"});
      ++seg_;
      return n;
    }
    if (kw == "macro") {
      n->kind = Node::Kind::kMacro;
      n->name = expect_name();
      expect_op("(");
      while (!accept_op(")")) {
        std::string p = expect_name();
        ExprPtr def;
        if (accept_op("=")) def = parse_expr();
        n->params.emplace_back(std::move(p), std::move(def));
        if (!is_op(")")) expect_op(",");
      }
      expect_end();
      ++seg_;
      n->body = parse_body({"endmacro"});
      ++seg_;
      return n;
    }
    if (kw == "filter") {
      n->kind = Node::Kind::kFilterBlock;
      n->filter = parse_filter_chain(nullptr);
      expect_end();
      ++seg_;
      n->body = parse_body({"endfilter"});
      ++seg_;
      return n;
    }
    if (kw == "break" || kw == "continue") {
      n->kind = kw == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      expect_end();
      ++seg_;
      return n;
    }
    fail_at(sg.loc, kw.empty() ? "empty or malformed statement tag" : "unsupported statement '" + kw + "'");
  }

  ExprPtr make(Expr::Op op, Loc loc) {
    auto e = std::make_unique<Expr>();
    e->op = op;
    e->loc = loc;
    return e;
  }

  // An expression, or an unparenthesized tuple "a, b" (set x = a, b).
  ExprPtr parse_expr_tuple() {
    ExprPtr first = parse_expr();
    if (!is_op(",")) return first;
    auto t = make(Expr::Op::kTuple, first->loc);
    t->kids.push_back(std::move(first));
    while (accept_op(",")) {
      if (peek().type == Tok::kEnd) break;
      t->kids.push_back(parse_expr());
    }
    return t;
  }

  ExprPtr parse_expr() {
    ExprPtr e = parse_or();
    while (is_name("if")) {
      const Loc l = next().loc;
      auto c = make(Expr::Op::kCond, l);
      ExprPtr cond = parse_or();
      ExprPtr other;
      if (accept_name("else")) other = parse_expr();
      c->kids.push_back(std::move(e));
      c->kids.push_back(std::move(cond));
      c->kids.push_back(std::move(other));
      e = std::move(c);
    }
    return e;
  }

  ExprPtr parse_or_expr_no_cond() { return parse_or(); }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      auto n = make(Expr::Op::kOr, next().loc);
      n->kids.push_back(std::move(e));
      n->kids.push_back(parse_and());
      e = std::move(n);
    }
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      auto n = make(Expr::Op::kAnd, next().loc);
      n->kids.push_back(std::move(e));
      n->kids.push_back(parse_not());
      e = std::move(n);
    }
    return e;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      auto n = make(Expr::Op::kNot, next().loc);
      n->kids.push_back(parse_not());
      return n;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr e = parse_math1();
    while (true) {
      std::string op;
      const Loc l = peek().loc;
      if (peek().type == Tok::kOp && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                      peek().text == "<=" || peek().text == ">" || peek().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        next();
        next();
        op = "not in";
      } else {
        break;
      }
      auto n = make(Expr::Op::kCompare, l);
      n->name = op;
      n->kids.push_back(std::move(e));
      n->kids.push_back(parse_math1());
      e = std::move(n);
    }
    return e;
  }
  ExprPtr binary(ExprPtr lhs, const std::string& op, ExprPtr rhs, Loc l) {
    auto n = make(Expr::Op::kBinary, l);
    n->name = op;
    n->kids.push_back(std::move(lhs));
    n->kids.push_back(std::move(rhs));
    return n;
  }
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      Token t = next();
      e = binary(std::move(e), t.text, parse_concat(), t.loc);
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      Token t = next();
      e = binary(std::move(e), "~", parse_math2(), t.loc);
    }
    return e;
  }
  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      Token t = next();
      e = binary(std::move(e), t.text, parse_pow(), t.loc);
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      Token t = next();
      e = binary(std::move(e), "**", parse_unary(true), t.loc);
    }
    return e;
  }
  ExprPtr parse_unary(bool with_filter) {
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      Token t = next();
      e = make(t.text == "-" ? Expr::Op::kNeg : Expr::Op::kPos, t.loc);
      e->kids.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    Token t = next();
    switch (t.type) {
      case Tok::kString: {
        std::string s = t.text;
        while (peek().type == Tok::kString) s += next().text;  // adjacent literals concatenate
        auto e = make(Expr::Op::kLiteral, t.loc);
        e->literal = Value::str(std::move(s));
        return e;
      }
      case Tok::kInt: {
        auto e = make(Expr::Op::kLiteral, t.loc);
        e->literal = Value::integer(std::stoll(t.text));
        return e;
      }
      case Tok::kFloat: {
        auto e = make(Expr::Op::kLiteral, t.loc);
        e->literal = Value::number(std::stod(t.text));
        return e;
      }
      case Tok::kName: {
        auto e = make(Expr::Op::kLiteral, t.loc);
        if (t.text == "true" || t.text == "True") {
          e->literal = Value::boolean(true);
        } else if (t.text == "false" || t.text == "False") {
          e->literal = Value::boolean(false);
        } else if (t.text == "none" || t.text == "None") {
          e->literal = Value::none();
        } else {
          e->op = Expr::Op::kName;
          e->name = t.text;
        }
        return e;
      }
      case Tok::kOp:
        if (t.text == "(") {
          if (accept_op(")")) return make(Expr::Op::kTuple, t.loc);
          ExprPtr first = parse_expr();
          if (accept_op(")")) return first;
          auto tup = make(Expr::Op::kTuple, t.loc);
          tup->kids.push_back(std::move(first));
          while (accept_op(",")) {
            if (is_op(")")) break;
            tup->kids.push_back(parse_expr());
          }
          expect_op(")");
          return tup;
        }
        if (t.text == "[") {
          auto l = make(Expr::Op::kList, t.loc);
          while (!accept_op("]")) {
            l->kids.push_back(parse_expr());
            if (!is_op("]")) expect_op(",");
          }
          return l;
        }
        if (t.text == "{") {
          auto d = make(Expr::Op::kDict, t.loc);
          while (!accept_op("}")) {
            d->kids.push_back(parse_expr());
            expect_op(":");
            d->kids.push_back(parse_expr());
            if (!is_op("}")) expect_op(",");
          }
          return d;
        }
        break;
      case Tok::kEnd: fail_at(t.loc, "unexpected end of expression");
    }
    fail_at(t.loc, "unexpected '" + t.text + "'");
  }

  void parse_call_args(Expr& call) {
    // after "("
    while (!accept_op(")")) {
      if (peek().type == Tok::kName && is_op("=", 1)) {
        std::string k = next().text;
        next();
        call.kwargs.emplace_back(std::move(k), parse_expr());
      } else {
        if (is_op("*") || is_op("**")) fail_at(peek().loc, "*args / **kwargs calls are not supported");
        call.kids.push_back(parse_expr());
      }
      if (!is_op(")")) expect_op(",");
    }
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        Token t = next();
        auto g = make(Expr::Op::kGetAttr, t.loc);
        if (peek().type == Tok::kInt) {
          g->op = Expr::Op::kGetItem;
          auto idx = make(Expr::Op::kLiteral, peek().loc);
          idx->literal = Value::integer(std::stoll(next().text));
          g->kids.push_back(std::move(e));
          g->kids.push_back(std::move(idx));
        } else {
          g->name = expect_name();
          g->kids.push_back(std::move(e));
        }
        e = std::move(g);
      } else if (is_op("[")) {
        Token t = next();
        ExprPtr a, b, c;
        bool slice = false;
        if (!is_op(":")) a = parse_expr();
        if (accept_op(":")) {
          slice = true;
          if (!is_op(":") && !is_op("]")) b = parse_expr();
          if (accept_op(":"))
            if (!is_op("]")) c = parse_expr();
        }
        expect_op("]");
        auto g = make(slice ? Expr::Op::kSlice : Expr::Op::kGetItem, t.loc);
        g->kids.push_back(std::move(e));
        g->kids.push_back(std::move(a));
        if (slice) {
          g->kids.push_back(std::move(b));
          g->kids.push_back(std::move(c));
        }
        e = std::move(g);
      } else if (is_op("(")) {
        Token t = next();
        auto call = make(Expr::Op::kCall, t.loc);
        call->kids.push_back(std::move(e));
        parse_call_args(*call);
        e = std::move(call);
      } else {
        return e;
      }
    }
  }

  // One or more "name[(args)]" filters separated by '|' (the first '|' already consumed), applied
  // to `input` (null for {% filter %} blocks, where the block's text is the input).
  ExprPtr parse_filter_chain(ExprPtr input) {
    ExprPtr e = parse_one_filter(std::move(input));
    while (accept_op("|")) e = parse_one_filter(std::move(e));
    return e;
  }

  ExprPtr parse_one_filter(ExprPtr input) {
    const Loc l = peek().loc;
    std::string name = expect_name();
    while (accept_op(".")) name += "." + expect_name();
    if (!known_filters().count(name)) fail_at(l, "unsupported filter '" + name + "'");
    auto f = make(Expr::Op::kFilter, l);
    f->name = name;
    f->kids.push_back(std::move(input));
    if (accept_op("(")) parse_call_args(*f);
    return f;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (accept_op("|")) {
        e = parse_one_filter(std::move(e));
      } else if (is_name("is")) {
        const Loc l = next().loc;
        auto t = make(Expr::Op::kTest, l);
        t->negated = accept_name("not");
        std::string name = peek().type == Tok::kOp ? next().text : expect_name();
        if (!known_tests().count(name)) fail_at(l, "unsupported test '" + name + "'");
        t->name = name;
        t->kids.push_back(std::move(e));
        if (accept_op("(")) {
          parse_call_args(*t);
        } else if (peek().type == Tok::kString || peek().type == Tok::kInt || peek().type == Tok::kFloat ||
                   (peek().type == Tok::kName && !is_name("else") && !is_name("or") && !is_name("and") &&
                    !is_name("if") && !is_name("is") && !is_name("in") && !is_name("not"))) {
          t->kids.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(t);
      } else if (is_op("(")) {
        Token t = next();
        auto call = make(Expr::Op::kCall, t.loc);
        call->kids.push_back(std::move(e));
        parse_call_args(*call);
        e = std::move(call);
      } else {
        return e;
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Evaluator

struct BreakSignal {};
struct ContinueSignal {};

class Scope {
 public:
  explicit Scope(Scope* parent) : parent_(parent) {}
  const Value* lookup(const std::string& n) const {
    auto it = vars_.find(n);
    if (it != vars_.end()) return &it->second;
    return parent_ ? parent_->lookup(n) : nullptr;
  }
  void set(const std::string& n, Value v) { vars_[n] = std::move(v); }

 private:
  Scope* parent_;
  std::map<std::string, Value, std::less<>> vars_;
};

class Renderer {
 public:
  Renderer(const Program& p, long long now) : prog_(p), now_(now) {}

  std::string run(const nlohmann::ordered_json& ctx) {
    Scope globals(nullptr);
    install_globals(globals);
    Scope root(&globals);
    if (ctx.is_object())
      for (auto it = ctx.begin(); it != ctx.end(); ++it) root.set(it.key(), from_json(it.value()));
    root_ = &root;
    std::string out;
    exec(prog_.body, root, out);
    return out;
  }

 private:
  const Program& prog_;
  long long now_;
  Scope* root_ = nullptr;
  int depth_ = 0;
  static constexpr int kMaxMacroDepth = 200;

  [[noreturn]] static void fail_at(const Loc& l, const std::string& msg) { throw TemplateError(at(l) + ": " + msg); }

  void install_globals(Scope& g) {
    g.set("raise_exception",
          Value::function([](Args& a) -> Value { throw TemplateRaised(to_str(a.get(0, "message"))); }));
    const long long now = now_;
    g.set("strftime_now", Value::function([now](Args& a) -> Value {
            const std::time_t t = static_cast<std::time_t>(now);
            std::tm tm{};
            gmtime_r(&t, &tm);
            char buf[256];
            const std::string fmt_s = to_str(a.get(0, "format"));
            const std::size_t n = std::strftime(buf, sizeof buf, fmt_s.c_str(), &tm);
            return Value::str(std::string(buf, n));
          }));
    g.set("range", Value::function([](Args& a) -> Value {
            std::int64_t start = 0, stop = 0, step = 1;
            auto num = [](const Value& v) {
              if (v.kind != Value::Kind::kInt) fail("range(): integer arguments expected");
              return v.i;
            };
            if (a.pos.size() == 1) {
              stop = num(a.pos[0]);
            } else if (a.pos.size() >= 2) {
              start = num(a.pos[0]);
              stop = num(a.pos[1]);
              if (a.pos.size() > 2) step = num(a.pos[2]);
            }
            if (step == 0) fail("range() arg 3 must not be zero");
            if ((stop - start) / step > 10'000'000) fail("range() of more than 10^7 items");
            Array out;
            for (std::int64_t k = start; step > 0 ? k < stop : k > stop; k += step) out.push_back(Value::integer(k));
            return Value::array(std::move(out));
          }));
    g.set("namespace", Value::function([](Args& a) -> Value {
            Value ns = Value::object();
            ns.is_namespace = true;
            for (const Value& p : a.pos)
              if (p.kind == Value::Kind::kObject)
                for (const auto& [k, v] : *p.obj) ns.put(k, v);
            for (auto& [k, v] : a.kw) ns.put(k, v);
            return ns;
          }));
    g.set("dict", Value::function([](Args& a) -> Value {
            Value d = Value::object();
            for (auto& [k, v] : a.kw) d.put(k, v);
            return d;
          }));
  }

  void exec(const Body& body, Scope& sc, std::string& out) {
    for (const auto& n : body) exec_node(*n, sc, out);
  }

  void assign(Scope& sc, const std::vector<std::string>& names, const Value& v, const Loc& l) {
    if (names.size() == 1) {
      sc.set(names[0], v);
      return;
    }
    Array items = iterate(v);
    if (items.size() != names.size())
      fail_at(l, fmt::format("cannot unpack {} values into {} names", items.size(), names.size()));
    for (std::size_t k = 0; k < names.size(); ++k) sc.set(names[k], items[k]);
  }

  void exec_node(const Node& n, Scope& sc, std::string& out) {
    switch (n.kind) {
      case Node::Kind::kText: out += n.text; return;
      case Node::Kind::kOutput: out += to_str(eval(*n.expr, sc)); return;
      case Node::Kind::kIf:
        for (const auto& [c, b] : n.branches) {
          if (!c || truthy(eval(*c, sc))) {
            exec(b, sc, out);
            return;
          }
        }
        return;
      case Node::Kind::kFor: {
        Value seq = eval(*n.expr, sc);
        Array items;
        if (seq.kind == Value::Kind::kObject && !seq.is_namespace) {
          items = iterate(seq);
        } else {
          items = iterate(seq);
        }
        if (n.cond) {
          Array kept;
          for (const Value& it : items) {
            Scope tmp(&sc);
            assign(tmp, n.targets, it, n.loc);
            if (truthy(eval(*n.cond, tmp))) kept.push_back(it);
          }
          items = std::move(kept);
        }
        if (items.empty()) {
          exec(n.else_body, sc, out);
          return;
        }
        const auto len = static_cast<std::int64_t>(items.size());
        for (std::int64_t k = 0; k < len; ++k) {
          Scope it_scope(&sc);
          Value loop = Value::object();
          loop.put("index", Value::integer(k + 1));
          loop.put("index0", Value::integer(k));
          loop.put("revindex", Value::integer(len - k));
          loop.put("revindex0", Value::integer(len - k - 1));
          loop.put("first", Value::boolean(k == 0));
          loop.put("last", Value::boolean(k == len - 1));
          loop.put("length", Value::integer(len));
          loop.put("depth", Value::integer(1));
          loop.put("depth0", Value::integer(0));
          loop.put("previtem", k > 0 ? items[static_cast<std::size_t>(k - 1)] : Value::undefined("previtem"));
          loop.put("nextitem", k + 1 < len ? items[static_cast<std::size_t>(k + 1)] : Value::undefined("nextitem"));
          loop.put("cycle", Value::function([k](Args& a) -> Value {
                     if (a.pos.empty()) fail("loop.cycle() needs at least one argument");
                     return a.pos[static_cast<std::size_t>(k) % a.pos.size()];
                   }));
          it_scope.set("loop", loop);
          assign(it_scope, n.targets, items[static_cast<std::size_t>(k)], n.loc);
          try {
            exec(n.body, it_scope, out);
          } catch (const BreakSignal&) {
            break;
          } catch (const ContinueSignal&) {
            continue;
          }
        }
        return;
      }
      case Node::Kind::kSet: {
        Value v = eval(*n.expr, sc);
        if (!n.attr.empty()) {
          const Value* ns = sc.lookup(n.targets[0]);
          if (!ns || ns->kind != Value::Kind::kObject || !ns->is_namespace)
            fail_at(n.loc, "cannot assign attribute on non-namespace object '" + n.targets[0] + "'");
          const_cast<Value*>(ns)->put(n.attr, std::move(v));
          return;
        }
        assign(sc, n.targets, v, n.loc);
        return;
      }
      case Node::Kind::kSetBlock: {
        std::string text;
        exec(n.body, sc, text);
        Value v = Value::str(std::move(text));
        if (n.filter) v = apply_filter_chain(*n.filter, v, sc);
        if (!n.attr.empty()) {
          const Value* ns = sc.lookup(n.targets[0]);
          if (!ns || !ns->is_namespace) fail_at(n.loc, "cannot assign attribute on non-namespace object");
          const_cast<Value*>(ns)->put(n.attr, std::move(v));
        } else {
          sc.set(n.targets[0], std::move(v));
        }
        return;
      }
      case Node::Kind::kMacro: {
        const Node* node = &n;
        sc.set(n.name, Value::function([this, node](Args& a) -> Value {
                 // A template is input (it comes in a GGUF): bound the recursion instead of the stack.
                 if (++depth_ > kMaxMacroDepth) {
                   --depth_;
                   fail_at(node->loc, fmt::format("macro '{}' nested deeper than {}", node->name, kMaxMacroDepth));
                 }
                 struct Leave {
                   int& d;
                   ~Leave() { --d; }
                 } leave{depth_};
                 Scope ms(root_);
                 std::size_t k = 0;
                 for (const auto& [pname, def] : node->params) {
                   Value v = Value::undefined(pname);
                   bool found = false;
                   for (const auto& [kn, kv] : a.kw)
                     if (kn == pname) v = kv, found = true;
                   if (!found && k < a.pos.size())
                     v = a.pos[k];
                   else if (!found && def)
                     v = eval(*def, ms);
                   ms.set(pname, v);
                   ++k;
                 }
                 std::string text;
                 exec(node->body, ms, text);
                 return Value::str(std::move(text));
               }));
        return;
      }
      case Node::Kind::kBreak: throw BreakSignal{};
      case Node::Kind::kContinue: throw ContinueSignal{};
      case Node::Kind::kFilterBlock: {
        std::string text;
        exec(n.body, sc, text);
        out += to_str(apply_filter_chain(*n.filter, Value::str(std::move(text)), sc));
        return;
      }
    }
  }

  // A chain of kFilter nodes whose innermost input is null: feed `v` in.
  Value apply_filter_chain(const Expr& f, const Value& v, Scope& sc) {
    Value in = f.kids[0] ? apply_filter_chain(*f.kids[0], v, sc) : v;
    return apply_filter(f, in, sc);
  }

  Args eval_args(const Expr& e, Scope& sc, std::size_t first) {
    Args a;
    for (std::size_t k = first; k < e.kids.size(); ++k) a.pos.push_back(eval(*e.kids[k], sc));
    for (const auto& [k, v] : e.kwargs) a.kw.emplace_back(k, eval(*v, sc));
    return a;
  }

  Value getattr(const Value& obj, const std::string& name, const Loc& l) {
    if (obj.undefined_()) fail_at(l, fmt::format("'{}' is undefined", obj.s.empty() ? std::string("value") : obj.s));
    if (obj.kind == Value::Kind::kObject) {
      if (const Value* v = obj.find(name)) return *v;
    }
    return Value::undefined(name);
  }

  Value getitem(const Value& obj, const Value& key, const Loc& l) {
    if (obj.undefined_()) fail_at(l, fmt::format("'{}' is undefined", obj.s.empty() ? std::string("value") : obj.s));
    if (obj.kind == Value::Kind::kObject) {
      if (key.is_str())
        if (const Value* v = obj.find(key.s)) return *v;
      return Value::undefined(key.is_str() ? key.s : to_str(key));
    }
    if (obj.kind == Value::Kind::kArray || obj.kind == Value::Kind::kString) {
      if (key.kind != Value::Kind::kInt) return Value::undefined();
      Array chars;
      const Array& items = obj.kind == Value::Kind::kArray ? *obj.arr : (chars = iterate(obj));
      std::int64_t k = key.i < 0 ? key.i + static_cast<std::int64_t>(items.size()) : key.i;
      if (k < 0 || k >= static_cast<std::int64_t>(items.size())) return Value::undefined();
      return items[static_cast<std::size_t>(k)];
    }
    return Value::undefined();
  }

  Value slice(const Value& obj, const Value& a, const Value& b, const Value& c, const Loc& l) {
    if (obj.kind != Value::Kind::kArray && obj.kind != Value::Kind::kString)
      fail_at(l, fmt::format("'{}' object is not subscriptable", type_name(obj)));
    const Array items = iterate(obj);
    const auto n = static_cast<std::int64_t>(items.size());
    auto opt = [&](const Value& v) -> std::optional<std::int64_t> {
      if (v.undefined_() || v.kind == Value::Kind::kNone) return std::nullopt;
      if (v.kind != Value::Kind::kInt) fail_at(l, "slice indices must be integers");
      return v.i;
    };
    const std::int64_t step = opt(c).value_or(1);
    if (step == 0) fail_at(l, "slice step cannot be zero");
    auto norm = [&](std::optional<std::int64_t> v, std::int64_t dflt) {
      if (!v) return dflt;
      std::int64_t x = *v < 0 ? *v + n : *v;
      if (step > 0) return std::clamp<std::int64_t>(x, 0, n);
      return std::clamp<std::int64_t>(x, -1, n - 1);
    };
    const std::int64_t start = norm(opt(a), step > 0 ? 0 : n - 1);
    const std::int64_t stop = norm(opt(b), step > 0 ? n : -1);
    Array out;
    for (std::int64_t k = start; step > 0 ? k < stop : k > stop; k += step)
      out.push_back(items[static_cast<std::size_t>(k)]);
    if (obj.kind == Value::Kind::kString) {
      std::string s;
      for (const Value& v : out) s += v.s;
      return Value::str(std::move(s));
    }
    return Value::array(std::move(out));
  }

  Value call_method(const Value& obj, const std::string& name, Args& a, const Loc& l) {
    if (obj.kind == Value::Kind::kString) {
      const std::string& s = obj.s;
      auto chars = [&](std::size_t i) {
        Value v = a.get(i, "chars");
        return v.is_str() ? v.s : std::string();
      };
      if (name == "strip") return Value::str(strip(s, chars(0), true, true));
      if (name == "lstrip") return Value::str(strip(s, chars(0), true, false));
      if (name == "rstrip") return Value::str(strip(s, chars(0), false, true));
      if (name == "upper") return Value::str(upper(s));
      if (name == "lower") return Value::str(lower(s));
      if (name == "title") return Value::str(title(s));
      if (name == "capitalize") return Value::str(s.empty() ? s : upper(s.substr(0, 1)) + lower(s.substr(1)));
      if (name == "startswith" || name == "endswith") {
        Value p = a.get(0, "prefix");
        Array opts = p.kind == Value::Kind::kArray ? *p.arr : Array{p};
        for (const Value& o : opts) {
          if (!o.is_str()) fail_at(l, name + "(): expected a string");
          if (name == "startswith" ? s.rfind(o.s, 0) == 0
                                   : (s.size() >= o.s.size() && s.compare(s.size() - o.s.size(), o.s.size(), o.s) == 0))
            return Value::boolean(true);
        }
        return Value::boolean(false);
      }
      if (name == "split") {
        Value mx = a.get(1, "maxsplit");
        return Value::array(split(s, a.get(0, "sep"), mx.kind == Value::Kind::kInt ? mx.i : -1));
      }
      if (name == "replace") {
        Value cnt = a.get(2, "count");
        return Value::str(replace_all(s, to_str(a.get(0, "old")), to_str(a.get(1, "new")),
                                      cnt.kind == Value::Kind::kInt ? cnt.i : -1));
      }
      if (name == "find")
        return Value::integer(s.find(to_str(a.get(0, "sub"))) == std::string::npos
                                  ? -1
                                  : static_cast<std::int64_t>(s.find(to_str(a.get(0, "sub")))));
      if (name == "count") {
        const std::string sub = to_str(a.get(0, "sub"));
        std::int64_t c = 0;
        for (std::size_t p = s.find(sub); !sub.empty() && p != std::string::npos; p = s.find(sub, p + sub.size())) ++c;
        return Value::integer(c);
      }
      if (name == "join") {
        std::string out;
        bool first = true;
        for (const Value& v : iterate(a.get(0, "iterable"))) {
          out += (first ? "" : s) + to_str(v);
          first = false;
        }
        return Value::str(out);
      }
      if (name == "isdigit" || name == "isalpha" || name == "isspace") {
        if (s.empty()) return Value::boolean(false);
        for (unsigned char c : s) {
          const bool ok = name == "isdigit" ? std::isdigit(c) : name == "isalpha" ? std::isalpha(c) : is_space(char(c));
          if (!ok) return Value::boolean(false);
        }
        return Value::boolean(true);
      }
    } else if (obj.kind == Value::Kind::kObject && !obj.is_namespace) {
      if (name == "get") {
        if (const Value* v = obj.find(to_str(a.get(0, "key")))) return *v;
        Value d = a.get(1, "default");
        return d.undefined_() ? Value::none() : d;
      }
      if (name == "items" || name == "keys" || name == "values") {
        Array out;
        for (const auto& [k, v] : *obj.obj) {
          if (name == "items")
            out.push_back(Value::array({Value::str(k), v}));
          else
            out.push_back(name == "keys" ? Value::str(k) : v);
        }
        return Value::array(std::move(out));
      }
    } else if (obj.kind == Value::Kind::kArray) {
      if (name == "index") {
        Value x = a.get(0, "value");
        for (std::size_t k = 0; k < obj.arr->size(); ++k)
          if (equal((*obj.arr)[k], x)) return Value::integer(static_cast<std::int64_t>(k));
        fail_at(l, "list.index(x): x not in list");
      }
      if (name == "count") {
        Value x = a.get(0, "value");
        std::int64_t c = 0;
        for (const Value& v : *obj.arr) c += equal(v, x);
        return Value::integer(c);
      }
      if (name == "append" || name == "pop" || name == "extend" || name == "insert")
        fail_at(l, fmt::format("access to attribute '{}' of 'list' object is unsafe", name));
    }
    if (obj.kind == Value::Kind::kObject) {
      if (const Value* v = obj.find(name); v && v->kind == Value::Kind::kFunction) return (*v->fn)(a);
    }
    if (obj.undefined_()) fail_at(l, fmt::format("'{}' is undefined", obj.s.empty() ? std::string("value") : obj.s));
    fail_at(l, fmt::format("'{}' object has no method '{}' (unsupported)", type_name(obj), name));
  }

  bool run_test(const std::string& name, const Value& v, const Args& a, const Loc& l) {
    auto arg = [&]() {
      if (a.pos.empty()) fail_at(l, "test '" + name + "' needs an argument");
      return a.pos[0];
    };
    if (name == "defined") return !v.undefined_();
    if (name == "undefined") return v.undefined_();
    if (name == "none") return v.kind == Value::Kind::kNone;
    if (name == "string") return v.is_str();
    if (name == "number") return v.is_num();
    if (name == "integer") return v.kind == Value::Kind::kInt;
    if (name == "float") return v.kind == Value::Kind::kFloat;
    if (name == "boolean") return v.kind == Value::Kind::kBool;
    if (name == "true") return v.kind == Value::Kind::kBool && v.b;
    if (name == "false") return v.kind == Value::Kind::kBool && !v.b;
    if (name == "mapping") return v.kind == Value::Kind::kObject;
    if (name == "iterable")
      return v.kind == Value::Kind::kArray || v.kind == Value::Kind::kObject || v.is_str() || v.undefined_();
    if (name == "sequence")
      return v.kind == Value::Kind::kArray || v.kind == Value::Kind::kObject || v.is_str() || v.undefined_();
    if (name == "callable") return v.kind == Value::Kind::kFunction;
    if (name == "odd" || name == "even") {
      if (v.kind != Value::Kind::kInt) fail_at(l, "odd/even test on a non-integer");
      return (((v.i % 2) + 2) % 2 == 1) == (name == "odd");
    }
    if (name == "divisibleby") {
      const Value d = arg();
      if (v.kind != Value::Kind::kInt || d.kind != Value::Kind::kInt || d.i == 0) fail_at(l, "divisibleby: integers");
      return v.i % d.i == 0;
    }
    if (name == "eq" || name == "equalto" || name == "==") return equal(v, arg());
    if (name == "ne" || name == "!=") return !equal(v, arg());
    if (name == "lt" || name == "<") return compare(v, arg()) < 0;
    if (name == "le" || name == "<=") return compare(v, arg()) <= 0;
    if (name == "gt" || name == ">") return compare(v, arg()) > 0;
    if (name == "ge" || name == ">=") return compare(v, arg()) >= 0;
    if (name == "in") return contains(arg(), v, l);
    if (name == "sameas") {
      const Value o = arg();
      if (v.kind != o.kind) return false;
      if (v.kind == Value::Kind::kArray) return v.arr == o.arr;
      if (v.kind == Value::Kind::kObject) return v.obj == o.obj;
      return equal(v, o);
    }
    if (name == "lower") return v.is_str() && lower(v.s) == v.s;
    if (name == "upper") return v.is_str() && upper(v.s) == v.s;
    fail_at(l, "unsupported test '" + name + "'");
  }

  bool contains(const Value& container, const Value& item, const Loc& l) {
    switch (container.kind) {
      case Value::Kind::kString:
        if (!item.is_str()) fail_at(l, "'in <string>' requires string as left operand");
        return container.s.find(item.s) != std::string::npos;
      case Value::Kind::kArray:
        for (const Value& v : *container.arr)
          if (equal(v, item)) return true;
        return false;
      case Value::Kind::kObject: return item.is_str() && container.find(item.s) != nullptr;
      case Value::Kind::kUndefined: return false;
      default: fail_at(l, fmt::format("argument of type '{}' is not iterable", type_name(container)));
    }
  }

  // select/reject/selectattr/rejectattr: keep items where test(value) (or truthiness) == keep.
  Value select(const Value& seq, const Args& a, bool by_attr, bool keep, const Loc& l) {
    Array out;
    std::size_t k = 0;
    std::string attr;
    if (by_attr) {
      if (a.pos.empty()) fail_at(l, "selectattr/rejectattr need an attribute name");
      attr = to_str(a.pos[k++]);
    }
    std::string test;
    if (k < a.pos.size()) test = to_str(a.pos[k++]);
    if (!test.empty() && !known_tests().count(test)) fail_at(l, "unsupported test '" + test + "'");
    Args targs;
    for (; k < a.pos.size(); ++k) targs.pos.push_back(a.pos[k]);
    for (const Value& it : truthy(seq) ? iterate(seq) : Array{}) {
      Value v = it;
      if (by_attr) {
        for (std::size_t p = 0, q; p <= attr.size(); p = q + 1) {
          q = attr.find('.', p);
          if (q == std::string::npos) q = attr.size();
          v = v.kind == Value::Kind::kObject ? getattr(v, attr.substr(p, q - p), l) : Value::undefined();
        }
      }
      const bool ok = test.empty() ? truthy(v) : run_test(test, v, targs, l);
      if (ok == keep) out.push_back(it);
    }
    return generator(std::move(out));
  }

  Value apply_filter(const Expr& f, const Value& v, Scope& sc) {
    Args a = eval_args(f, sc, 1);
    const std::string& n = f.name;
    const Loc& l = f.loc;
    if (n == "safe" || n == "e" || n == "escape") {
      if (v.markup) return v;
      Value m = Value::str(n == "safe" ? to_str(v) : html_escape(to_str(v)));
      m.markup = true;
      return m;
    }
    if (n == "tojson") {
      const Value ind = a.get(0, "indent");
      std::string out;
      dumps(out, v, ind.kind == Value::Kind::kInt ? static_cast<int>(ind.i) : -1, 0);
      return Value::str(std::move(out));
    }
    if (n == "trim") {
      if (v.undefined_()) return Value::str("");
      const Value c = a.get(0, "chars");
      return Value::str(strip(to_str(v), c.is_str() ? c.s : "", true, true));
    }
    if (n == "string") return Value::str(to_str(v));
    if (n == "length" || n == "count") return Value::integer(length(v));
    if (n == "lower") return Value::str(lower(to_str(v)));
    if (n == "upper") return Value::str(upper(to_str(v)));
    if (n == "title") return Value::str(title(to_str(v)));
    if (n == "capitalize") {
      const std::string s = to_str(v);
      return Value::str(s.empty() ? s : upper(s.substr(0, 1)) + lower(s.substr(1)));
    }
    if (n == "default" || n == "d") {
      const bool boolean = truthy(a.get(1, "boolean"));
      if (v.undefined_() || (boolean && !truthy(v))) {
        Value d = a.get(0, "default_value");
        return d.undefined_() ? Value::str("") : d;
      }
      return v;
    }
    if (n == "items") {
      if (v.undefined_()) return Value::array();
      if (v.kind != Value::Kind::kObject) fail_at(l, "items filter: expected a mapping");
      Args none;
      return call_method(v, "items", none, l);
    }
    if (n == "list") return Value::array(iterate(v));
    if (n == "first" || n == "last") {
      Array items = iterate(v);
      if (items.empty()) return Value::undefined();
      return n == "first" ? items.front() : items.back();
    }
    if (n == "reverse") {
      if (v.is_str()) {
        Array items = iterate(v);
        std::string s;
        for (auto it = items.rbegin(); it != items.rend(); ++it) s += it->s;
        return Value::str(s);
      }
      Array items = iterate(v);
      std::reverse(items.begin(), items.end());
      return Value::array(std::move(items));
    }
    if (n == "join") {
      const Value sep = a.get(0, "d");
      const Value attr = a.get(1, "attribute");
      std::string out;
      bool first = true;
      for (const Value& it : iterate(v)) {
        out += (first ? "" : to_str(sep)) + to_str(attr.undefined_() ? it : getitem(it, attr, l));
        first = false;
      }
      return Value::str(std::move(out));
    }
    if (n == "replace") {
      const Value cnt = a.get(2, "count");
      return Value::str(replace_all(to_str(v), to_str(a.get(0, "old")), to_str(a.get(1, "new")),
                                    cnt.kind == Value::Kind::kInt ? cnt.i : -1));
    }
    if (n == "indent") {
      const Value w = a.get(0, "width");
      const std::string ind = w.is_str() ? w.s : std::string(static_cast<std::size_t>(w.undefined_() ? 4 : w.i), ' ');
      const bool first = truthy(a.get(1, "first")), blank = truthy(a.get(2, "blank"));
      std::string s = to_str(v) + "\n";
      std::vector<std::string> lines;
      std::size_t p = 0;
      while (p < s.size()) {
        std::size_t q = s.find_first_of("\r\n", p);
        if (q == std::string::npos) {
          lines.push_back(s.substr(p));
          break;
        }
        lines.push_back(s.substr(p, q - p));
        p = q + ((s[q] == '\r' && q + 1 < s.size() && s[q + 1] == '\n') ? 2 : 1);
      }
      std::string rv;
      if (blank) {
        for (std::size_t k = 0; k < lines.size(); ++k) rv += (k ? "\n" + ind : "") + lines[k];
      } else {
        rv = lines.empty() ? "" : lines[0];
        for (std::size_t k = 1; k < lines.size(); ++k) rv += "\n" + (lines[k].empty() ? "" : ind + lines[k]);
      }
      return Value::str(first ? ind + rv : rv);
    }
    if (n == "map") {
      Array out;
      const Value attr = a.get(99, "attribute");
      const Array items = truthy(v) ? iterate(v) : Array{};
      if (!attr.undefined_()) {
        const Value dflt = a.get(99, "default");
        for (const Value& it : items) {
          Value x = getitem(it, attr, l);
          out.push_back(x.undefined_() && !dflt.undefined_() ? dflt : x);
        }
        return generator(std::move(out));
      }
      if (a.pos.empty()) fail_at(l, "map: needs a filter name or attribute=");
      auto inner = std::make_unique<Expr>();
      inner->op = Expr::Op::kFilter;
      inner->loc = l;
      inner->name = to_str(a.pos[0]);
      if (!known_filters().count(inner->name)) fail_at(l, "unsupported filter '" + inner->name + "'");
      inner->kids.push_back(nullptr);
      for (std::size_t k = 1; k < a.pos.size(); ++k) {
        auto lit = std::make_unique<Expr>();
        lit->op = Expr::Op::kLiteral;
        lit->literal = a.pos[k];
        inner->kids.push_back(std::move(lit));
      }
      for (const Value& it : items) out.push_back(apply_filter(*inner, it, sc));
      return generator(std::move(out));
    }
    if (n == "select") return select(v, a, false, true, l);
    if (n == "reject") return select(v, a, false, false, l);
    if (n == "selectattr") return select(v, a, true, true, l);
    if (n == "rejectattr") return select(v, a, true, false, l);
    if (n == "unique") {
      Array out;
      for (const Value& it : iterate(v)) {
        bool seen = false;
        for (const Value& o : out)
          seen = seen || (it.is_str() && o.is_str() ? lower(it.s) == lower(o.s) : equal(it, o));
        if (!seen) out.push_back(it);
      }
      return generator(std::move(out));
    }
    if (n == "int") {
      if (v.kind == Value::Kind::kInt) return v;
      if (v.kind == Value::Kind::kFloat) return Value::integer(static_cast<std::int64_t>(v.f));
      if (v.kind == Value::Kind::kBool) return Value::integer(v.b);
      if (v.is_str()) {
        try {
          return Value::integer(std::stoll(strip(v.s, "", true, true)));
        } catch (...) {
        }
      }
      return Value::integer(0);
    }
    if (n == "float") {
      if (v.is_num()) return Value::number(v.as_double());
      if (v.is_str()) {
        try {
          return Value::number(std::stod(v.s));
        } catch (...) {
        }
      }
      return Value::number(0.0);
    }
    if (n == "abs") {
      if (v.kind == Value::Kind::kInt) return Value::integer(v.i < 0 ? -v.i : v.i);
      if (v.kind == Value::Kind::kFloat) return Value::number(std::fabs(v.f));
      fail_at(l, "abs: expected a number");
    }
    if (n == "sum") {
      Value acc = Value::integer(0);
      for (const Value& it : iterate(v)) acc = arith("+", acc, it, l);
      return acc;
    }
    if (n == "min" || n == "max") {
      Array items = iterate(v);
      if (items.empty()) return Value::undefined();
      Value best = items[0];
      for (const Value& it : items)
        if ((n == "min" && compare(it, best) < 0) || (n == "max" && compare(it, best) > 0)) best = it;
      return best;
    }
    if (n == "sort") {
      Array items = iterate(v);
      const bool rev = truthy(a.get(0, "reverse"));
      std::stable_sort(items.begin(), items.end(),
                       [&](const Value& x, const Value& y) { return rev ? compare(y, x) < 0 : compare(x, y) < 0; });
      return Value::array(std::move(items));
    }
    if (n == "dictsort") {
      if (v.kind != Value::Kind::kObject) fail_at(l, "dictsort: expected a mapping");
      Array items;
      for (const auto& [k, e] : *v.obj) items.push_back(Value::array({Value::str(k), e}));
      std::stable_sort(items.begin(), items.end(),
                       [](const Value& x, const Value& y) { return lower((*x.arr)[0].s) < lower((*y.arr)[0].s); });
      return Value::array(std::move(items));
    }
    if (n == "round") {
      const Value p = a.get(0, "precision");
      const double scale = std::pow(10.0, p.kind == Value::Kind::kInt ? static_cast<double>(p.i) : 0.0);
      return Value::number(std::nearbyint(v.as_double() * scale) / scale);
    }
    if (n == "wordcount") return Value::integer(static_cast<std::int64_t>(split(to_str(v), Value::none(), -1).size()));
    fail_at(l, "unsupported filter '" + n + "'");
  }

  Value arith(const std::string& op, const Value& x, const Value& y, const Loc& l) {
    auto bad = [&]() -> Value {
      if (x.undefined_() || y.undefined_()) {
        const Value& u = x.undefined_() ? x : y;
        fail_at(l, fmt::format("'{}' is undefined", u.s.empty() ? std::string("value") : u.s));
      }
      fail_at(l, fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(x), type_name(y)));
    };
    auto is_int = [](const Value& v) { return v.kind == Value::Kind::kInt || v.kind == Value::Kind::kBool; };
    auto iv = [](const Value& v) { return v.kind == Value::Kind::kBool ? std::int64_t{v.b} : v.i; };
    auto dv = [&](const Value& v) { return v.kind == Value::Kind::kBool ? double(v.b) : v.as_double(); };
    const bool nums = (x.is_num() || x.kind == Value::Kind::kBool) && (y.is_num() || y.kind == Value::Kind::kBool);
    if (op == "+") {
      if (x.is_str() && y.is_str()) {
        if (!x.markup && !y.markup) return Value::str(x.s + y.s);
        Value m = Value::str((x.markup ? x.s : html_escape(x.s)) + (y.markup ? y.s : html_escape(y.s)));
        m.markup = true;
        return m;
      }
      if (x.kind == Value::Kind::kArray && y.kind == Value::Kind::kArray) {
        Array out = *x.arr;
        out.insert(out.end(), y.arr->begin(), y.arr->end());
        return Value::array(std::move(out));
      }
      if (!nums) return bad();
      if (is_int(x) && is_int(y)) return Value::integer(iv(x) + iv(y));
      return Value::number(dv(x) + dv(y));
    }
    if (op == "-") {
      if (!nums) return bad();
      if (is_int(x) && is_int(y)) return Value::integer(iv(x) - iv(y));
      return Value::number(dv(x) - dv(y));
    }
    if (op == "*") {
      if (x.is_str() && is_int(y)) {
        if (iv(y) > 0 && x.s.size() * static_cast<std::size_t>(iv(y)) > (1u << 26))
          fail_at(l, "string repeated past 64 MiB");
        std::string out;
        for (std::int64_t k = 0; k < iv(y); ++k) out += x.s;
        return Value::str(out);
      }
      if (!nums) return bad();
      if (is_int(x) && is_int(y)) return Value::integer(iv(x) * iv(y));
      return Value::number(dv(x) * dv(y));
    }
    if (op == "/") {
      if (!nums) return bad();
      if (dv(y) == 0.0) fail_at(l, "division by zero");
      return Value::number(dv(x) / dv(y));
    }
    if (op == "//" || op == "%") {
      if (op == "%" && x.is_str()) fail_at(l, "string formatting with % is not supported");
      if (!nums) return bad();
      if (dv(y) == 0.0) fail_at(l, "integer division or modulo by zero");
      if (is_int(x) && is_int(y)) {
        std::int64_t q = iv(x) / iv(y), r = iv(x) % iv(y);
        if (r != 0 && ((r < 0) != (iv(y) < 0))) {
          --q;
          r += iv(y);
        }
        return Value::integer(op == "//" ? q : r);
      }
      const double q = std::floor(dv(x) / dv(y));
      return Value::number(op == "//" ? q : dv(x) - q * dv(y));
    }
    if (op == "**") {
      if (!nums) return bad();
      if (is_int(x) && is_int(y) && iv(y) >= 0) {
        std::int64_t r = 1;
        for (std::int64_t k = 0; k < iv(y); ++k) r *= iv(x);
        return Value::integer(r);
      }
      return Value::number(std::pow(dv(x), dv(y)));
    }
    return bad();
  }

  Value eval(const Expr& e, Scope& sc) {
    switch (e.op) {
      case Expr::Op::kLiteral: return e.literal;
      case Expr::Op::kName: {
        const Value* v = sc.lookup(e.name);
        return v ? *v : Value::undefined(e.name);
      }
      case Expr::Op::kList:
      case Expr::Op::kTuple: {
        Array a;
        for (const auto& k : e.kids) a.push_back(eval(*k, sc));
        return Value::array(std::move(a));
      }
      case Expr::Op::kDict: {
        Value d = Value::object();
        for (std::size_t k = 0; k + 1 < e.kids.size(); k += 2) {
          Value key = eval(*e.kids[k], sc);
          d.put(key.is_str() ? key.s : to_str(key), eval(*e.kids[k + 1], sc));
        }
        return d;
      }
      case Expr::Op::kGetAttr: return getattr(eval(*e.kids[0], sc), e.name, e.loc);
      case Expr::Op::kGetItem: return getitem(eval(*e.kids[0], sc), eval(*e.kids[1], sc), e.loc);
      case Expr::Op::kSlice: {
        auto opt = [&](const ExprPtr& p) { return p ? eval(*p, sc) : Value::undefined(); };
        return slice(eval(*e.kids[0], sc), opt(e.kids[1]), opt(e.kids[2]), opt(e.kids[3]), e.loc);
      }
      case Expr::Op::kCall: {
        const Expr& callee = *e.kids[0];
        Args a = eval_args(e, sc, 1);
        if (callee.op == Expr::Op::kGetAttr) {
          Value obj = eval(*callee.kids[0], sc);
          return call_method(obj, callee.name, a, e.loc);
        }
        Value f = eval(callee, sc);
        if (f.kind != Value::Kind::kFunction) {
          if (f.undefined_()) fail_at(e.loc, fmt::format("'{}' is undefined", f.s));
          fail_at(e.loc, fmt::format("'{}' object is not callable", type_name(f)));
        }
        return (*f.fn)(a);
      }
      case Expr::Op::kFilter: return apply_filter(e, eval(*e.kids[0], sc), sc);
      case Expr::Op::kTest: {
        Value v = eval(*e.kids[0], sc);
        Args a = eval_args(e, sc, 1);
        return Value::boolean(run_test(e.name, v, a, e.loc) != e.negated);
      }
      case Expr::Op::kNot: return Value::boolean(!truthy(eval(*e.kids[0], sc)));
      case Expr::Op::kNeg:
      case Expr::Op::kPos: {
        Value v = eval(*e.kids[0], sc);
        if (e.op == Expr::Op::kPos) return v;
        if (v.kind == Value::Kind::kInt) return Value::integer(-v.i);
        if (v.kind == Value::Kind::kFloat) return Value::number(-v.f);
        fail_at(e.loc, fmt::format("bad operand type for unary -: '{}'", type_name(v)));
      }
      case Expr::Op::kAnd: {
        Value x = eval(*e.kids[0], sc);
        return truthy(x) ? eval(*e.kids[1], sc) : x;
      }
      case Expr::Op::kOr: {
        Value x = eval(*e.kids[0], sc);
        return truthy(x) ? x : eval(*e.kids[1], sc);
      }
      case Expr::Op::kBinary: {
        Value x = eval(*e.kids[0], sc), y = eval(*e.kids[1], sc);
        if (e.name == "~") return Value::str(to_str(x) + to_str(y));
        return arith(e.name, x, y, e.loc);
      }
      case Expr::Op::kCompare: {
        Value x = eval(*e.kids[0], sc), y = eval(*e.kids[1], sc);
        const std::string& op = e.name;
        if (op == "==") return Value::boolean(equal(x, y));
        if (op == "!=") return Value::boolean(!equal(x, y));
        if (op == "in") return Value::boolean(contains(y, x, e.loc));
        if (op == "not in") return Value::boolean(!contains(y, x, e.loc));
        const int c = compare(x, y);
        if (op == "<") return Value::boolean(c < 0);
        if (op == "<=") return Value::boolean(c <= 0);
        if (op == ">") return Value::boolean(c > 0);
        return Value::boolean(c >= 0);
      }
      case Expr::Op::kCond: {
        if (truthy(eval(*e.kids[1], sc))) return eval(*e.kids[0], sc);
        return e.kids[2] ? eval(*e.kids[2], sc) : Value::undefined();
      }
    }
    return Value::undefined();
  }
};

}  // namespace

Template::Template(std::string_view source) : prog_(std::make_unique<Program>()) {
  Parser p(split_template(source));
  prog_->body = p.parse_all();
}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const nlohmann::ordered_json& context, long long now_unix) const {
  Renderer r(*prog_, now_unix);
  try {
    return r.run(context);
  } catch (const BreakSignal&) {
    throw TemplateError("'break' outside a for loop");
  } catch (const ContinueSignal&) {
    throw TemplateError("'continue' outside a for loop");
  }
}

std::string python_json_dumps(const nlohmann::ordered_json& v, int indent) {
  std::string out;
  dumps(out, from_json(v), indent, 0);
  return out;
}

}  // namespace g2c::tokenizer::jinja
