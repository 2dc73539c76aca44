#include "g2c/sampling/grammar.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace g2c::sampling {

// ---------------------------------------------------------------------------------------------------------------
// Character sets

void CharSet::finish() {
  ascii.reset();
  for (std::uint32_t c = 0; c < 128; ++c) ascii[c] = contains_slow(c);
}

bool CharSet::contains_slow(std::uint32_t c) const {
  bool in = false;
  for (const auto& [lo, hi] : ranges) {
    if (lo <= c && c <= hi) {
      in = true;
      break;
    }
  }
  return in != negated;
}

bool CharSet::intersects(std::uint32_t lo, std::uint32_t hi) const {
  if (!negated) {
    for (const auto& [a, b] : ranges) {
      if (a <= hi && lo <= b) return true;
    }
    return false;
  }
  // Some c in [lo, hi] outside every range: walk up from lo past the ranges that cover it.
  std::uint32_t c = lo;
  bool moved = true;
  while (moved) {
    moved = false;
    for (const auto& [a, b] : ranges) {
      if (a <= c && c <= b) {
        if (b >= hi) return false;
        c = b + 1;
        moved = true;
      }
    }
  }
  return c <= hi;
}

namespace {

void append_utf8(std::string& out, std::uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

void describe_char(std::string& out, std::uint32_t c) {
  static const char* hex = "0123456789ABCDEF";
  switch (c) {
    case '\n': out += "\\n"; return;
    case '\r': out += "\\r"; return;
    case '\t': out += "\\t"; return;
    case '\\': out += "\\\\"; return;
    case '"': out += "\\\""; return;
    case ']': out += "\\]"; return;
    case '[': out += "\\["; return;
    default: break;
  }
  if (c < 0x20 || c == 0x7F) {
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 15];
    return;
  }
  append_utf8(out, c);
}

}  // namespace

std::string CharSet::describe() const {
  std::string out;
  if (negated && ranges.empty()) return ".";
  if (!negated && ranges.size() == 1 && ranges[0].first == ranges[0].second) {
    out = "\"";
    describe_char(out, ranges[0].first);
    return out + "\"";
  }
  out = negated ? "[^" : "[";
  for (const auto& [lo, hi] : ranges) {
    describe_char(out, lo);
    if (hi != lo) {
      out += '-';
      describe_char(out, hi);
    }
  }
  return out + "]";
}

// ---------------------------------------------------------------------------------------------------------------
// The parser

class GrammarParser {
 public:
  explicit GrammarParser(std::string_view text) : s_(text) {}

  std::shared_ptr<const Grammar> run(std::string_view root_name) {
    std::size_t p = space(0, true);
    while (p < s_.size()) p = rule(p);
    for (std::size_t r = 0; r < rules_.size(); ++r) {
      if (!defined_[r]) fail(first_ref_[r], "undefined rule '" + names_[r] + "'");
    }
    const auto it = ids_.find(std::string(root_name));
    if (it == ids_.end()) {
      throw GrammarError("grammar: no rule named '" + std::string(root_name) + "' (the start rule)");
    }
    check_left_recursion();
    auto g = std::make_shared<Grammar>();
    g->sets_ = std::move(sets_);
    g->names_ = std::move(names_);
    g->rules_.resize(rules_.size());
    for (std::size_t r = 0; r < rules_.size(); ++r) {
      for (const auto& alt : rules_[r]) {
        g->rules_[r].push_back(static_cast<std::uint32_t>(g->elems_.size()));
        g->elems_.insert(g->elems_.end(), alt.begin(), alt.end());
        g->elems_.push_back({Grammar::Kind::kEnd, 0});
      }
    }
    g->root_ = it->second;
    return g;
  }

 private:
  using Elem = Grammar::Elem;
  using Alt = std::vector<Elem>;
  static constexpr std::size_t kMaxElems = 1u << 20;  // a bound on what {m,n} may expand to

  [[noreturn]] void fail(std::size_t at, const std::string& what) const {
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < at && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else if ((static_cast<unsigned char>(s_[i]) & 0xC0) != 0x80) {
        ++col;
      }
    }
    throw GrammarError("grammar:" + std::to_string(line) + ":" + std::to_string(col) + ": " + what);
  }

  char at(std::size_t p) const { return p < s_.size() ? s_[p] : '\0'; }
  static bool word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  }

  std::size_t space(std::size_t p, bool newline_ok) const {
    while (p < s_.size()) {
      const char c = s_[p];
      if (c == ' ' || c == '\t' || (newline_ok && (c == '\r' || c == '\n'))) {
        ++p;
      } else if (c == '#') {
        while (p < s_.size() && s_[p] != '\r' && s_[p] != '\n') ++p;
      } else {
        break;
      }
    }
    return p;
  }

  std::uint32_t symbol(const std::string& name, std::size_t where) {
    auto [it, inserted] = ids_.emplace(name, static_cast<std::uint32_t>(names_.size()));
    if (inserted) {
      names_.push_back(name);
      rules_.emplace_back();
      defined_.push_back(false);
      first_ref_.push_back(where);
    }
    return it->second;
  }
  std::uint32_t helper(const std::string& base) {
    const auto id = static_cast<std::uint32_t>(names_.size());
    const std::uint32_t r = symbol(base + "_" + std::to_string(id), 0);
    helper_of_[r] = base;
    return r;
  }
  void define(std::uint32_t id, std::vector<Alt> alts) {
    rules_[id] = std::move(alts);
    defined_[id] = true;
  }
  std::uint32_t add_set(CharSet cs) {
    cs.finish();
    sets_.push_back(std::move(cs));
    return static_cast<std::uint32_t>(sets_.size() - 1);
  }

  // One character of a literal or class at p: its code point, and p moves past it.
  std::uint32_t character(std::size_t& p) {
    const std::size_t start = p;
    if (p >= s_.size()) fail(p, "unexpected end of input");
    if (s_[p] == '\\') {
      const char e = at(p + 1);
      auto hex = [&](int n) {
        std::uint32_t v = 0;
        for (int i = 0; i < n; ++i) {
          const char c = at(p + 2 + static_cast<std::size_t>(i));
          int d;
          if (c >= '0' && c <= '9') {
            d = c - '0';
          } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
          } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
          } else {
            fail(start, "expected " + std::to_string(n) + " hex digits after \\" + std::string(1, e));
          }
          v = v * 16 + static_cast<std::uint32_t>(d);
        }
        p += 2 + static_cast<std::size_t>(n);
        return v;
      };
      switch (e) {
        case 'x': return hex(2);
        case 'u': return hex(4);
        case 'U': return hex(8);
        case 't': p += 2; return '\t';
        case 'r': p += 2; return '\r';
        case 'n': p += 2; return '\n';
        case '\\':
        case '"':
        case '[':
        case ']': p += 2; return static_cast<unsigned char>(e);
        default: fail(start, "unknown escape \\" + std::string(1, e));
      }
    }
    const auto b0 = static_cast<unsigned char>(s_[p]);
    int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
    if (len == 0) fail(start, "invalid UTF-8");
    std::uint32_t v = len == 1 ? b0 : len == 2 ? (b0 & 0x1Fu) : len == 3 ? (b0 & 0x0Fu) : (b0 & 0x07u);
    for (int i = 1; i < len; ++i) {
      const auto b = static_cast<unsigned char>(at(p + static_cast<std::size_t>(i)));
      if ((b & 0xC0) != 0x80) fail(start, "invalid UTF-8");
      v = (v << 6) | (b & 0x3Fu);
    }
    p += static_cast<std::size_t>(len);
    return v;
  }

  std::size_t integer(std::size_t p, int& out) {
    if (!(at(p) >= '0' && at(p) <= '9')) fail(p, "expected an integer");
    std::int64_t v = 0;
    while (at(p) >= '0' && at(p) <= '9') {
      v = v * 10 + (at(p) - '0');
      if (v > 1'000'000) fail(p, "repetition count too large");
      ++p;
    }
    out = static_cast<int>(v);
    return p;
  }

  // `name ::= alternatives` up to the end of its line.
  std::size_t rule(std::size_t p) {
    const std::size_t name_at = p;
    std::size_t e = p;
    while (word_char(at(e))) ++e;
    if (e == p) fail(p, "expected a rule name");
    const std::string name(s_.substr(p, e - p));
    p = space(e, false);
    if (s_.substr(p, 3) != "::=") fail(p, "expected ::= after rule name '" + name + "'");
    p = space(p + 3, true);
    const std::uint32_t id = symbol(name, name_at);
    std::vector<Alt> alts;
    p = alternates(p, name, alts, false);
    define(id, std::move(alts));
    if (at(p) == '\r') {
      p += at(p + 1) == '\n' ? 2 : 1;
    } else if (at(p) == '\n') {
      ++p;
    } else if (p < s_.size()) {
      fail(p, std::string("expected the end of the line, got '") + at(p) + "'");
    }
    return space(p, true);
  }

  std::size_t alternates(std::size_t p, const std::string& name, std::vector<Alt>& alts, bool nested) {
    alts.emplace_back();
    p = sequence(p, name, alts.back(), nested);
    while (at(p) == '|') {
      p = space(p + 1, true);
      alts.emplace_back();
      p = sequence(p, name, alts.back(), nested);
    }
    return p;
  }

  std::size_t sequence(std::size_t p, const std::string& name, Alt& alt, bool nested) {
    std::size_t last = alt.size();  // where the last item starts; == size: none
    auto repeat = [&](std::size_t where, int min, int max) {
      if (last == alt.size()) fail(where, "expected an item before the repetition operator");
      const Alt item(alt.begin() + static_cast<std::ptrdiff_t>(last), alt.end());
      const std::size_t copies = static_cast<std::size_t>(std::max(min, max < 0 ? 1 : max));
      if ((copies + 1) * (item.size() + 1) + elem_count_ > kMaxElems) fail(where, "repetition too large");
      elem_count_ += (copies + 1) * (item.size() + 1);
      alt.resize(last);
      for (int i = 0; i < min; ++i) alt.insert(alt.end(), item.begin(), item.end());
      if (max < 0) {  // R ::= item R |
        const std::uint32_t r = helper(name);
        Alt loop = item;
        loop.push_back({Grammar::Kind::kRef, r});
        define(r, {loop, Alt{}});
        alt.push_back({Grammar::Kind::kRef, r});
      } else if (max > min) {  // R1 ::= item | ;  Rk ::= item R(k-1) |
        std::uint32_t prev = 0;
        for (int k = 1; k <= max - min; ++k) {
          const std::uint32_t r = helper(name);
          Alt a = item;
          if (k > 1) a.push_back({Grammar::Kind::kRef, prev});
          define(r, {a, Alt{}});
          prev = r;
        }
        alt.push_back({Grammar::Kind::kRef, prev});
      }
      // `last` stays: a following operator repeats the whole construct, as in llama.cpp (x*+ is (x*)+).
    };
    while (p < s_.size()) {
      const char c = s_[p];
      if (c == '"') {
        ++p;
        last = alt.size();
        while (at(p) != '"') {
          if (p >= s_.size()) fail(p, "unterminated string literal");
          CharSet cs;
          const std::uint32_t ch = character(p);
          cs.ranges.push_back({ch, ch});
          alt.push_back({Grammar::Kind::kChars, add_set(std::move(cs))});
        }
        p = space(p + 1, nested);
      } else if (c == '[') {
        const std::size_t open = p;
        ++p;
        CharSet cs;
        if (at(p) == '^') {
          cs.negated = true;
          ++p;
        }
        while (at(p) != ']') {
          if (p >= s_.size()) fail(open, "unterminated character class");
          const std::uint32_t lo = character(p);
          std::uint32_t hi = lo;
          if (at(p) == '-' && at(p + 1) != ']') {
            ++p;
            if (p >= s_.size()) fail(p, "unexpected end of input");
            hi = character(p);
          }
          cs.ranges.push_back({lo, hi});
        }
        last = alt.size();
        alt.push_back({Grammar::Kind::kChars, add_set(std::move(cs))});
        p = space(p + 1, nested);
      } else if (word_char(c)) {
        std::size_t e = p;
        while (word_char(at(e))) ++e;
        const std::uint32_t r = symbol(std::string(s_.substr(p, e - p)), p);
        last = alt.size();
        alt.push_back({Grammar::Kind::kRef, r});
        p = space(e, nested);
      } else if (c == '(') {
        const std::size_t open = p;
        p = space(p + 1, true);
        const std::uint32_t r = helper(name);
        std::vector<Alt> sub;
        p = alternates(p, name, sub, true);
        define(r, std::move(sub));
        if (at(p) != ')') fail(p < s_.size() ? p : open, "expected ')' to close the group opened here");
        last = alt.size();
        alt.push_back({Grammar::Kind::kRef, r});
        p = space(p + 1, nested);
      } else if (c == '.') {
        CharSet cs;
        cs.negated = true;
        last = alt.size();
        alt.push_back({Grammar::Kind::kChars, add_set(std::move(cs))});
        p = space(p + 1, nested);
      } else if (c == '*' || c == '+' || c == '?') {
        const std::size_t where = p;
        p = space(p + 1, nested);
        repeat(where, c == '+' ? 1 : 0, c == '?' ? 1 : -1);
      } else if (c == '{') {
        const std::size_t where = p;
        p = space(p + 1, nested);
        int min = 0, max = -1;
        p = space(integer(p, min), nested);
        if (at(p) == '}') {
          max = min;
          p = space(p + 1, nested);
        } else if (at(p) == ',') {
          p = space(p + 1, nested);
          if (at(p) >= '0' && at(p) <= '9') p = space(integer(p, max), nested);
          if (at(p) != '}') fail(p, "expected '}' to close the repetition");
          p = space(p + 1, nested);
        } else {
          fail(p, "expected ',' or '}' in the repetition");
        }
        if (max >= 0 && max < min) fail(where, "repetition {m,n} with n < m");
        repeat(where, min, max);
      } else {
        break;
      }
      elem_count_ += 1;
      if (elem_count_ > kMaxElems) fail(p, "grammar too large");
    }
    return p;
  }

  void check_left_recursion() {
    const std::size_t n = rules_.size();
    std::vector<char> nullable(n, 0);
    for (bool changed = true; changed;) {
      changed = false;
      for (std::size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (const Alt& a : rules_[r]) {
          bool all = true;
          for (const Elem& e : a) {
            if (e.kind == Grammar::Kind::kChars || !nullable[e.arg]) {
              all = false;
              break;
            }
          }
          if (all) {
            nullable[r] = 1;
            changed = true;
            break;
          }
        }
      }
    }
    // Edges r -> s when s can start r without consuming anything; a cycle is left recursion.
    std::vector<char> color(n, 0);  // 0 new, 1 on the path, 2 done
    for (std::uint32_t start = 0; start < n; ++start) {
      if (color[start]) continue;
      std::vector<std::pair<std::uint32_t, std::vector<std::uint32_t>>> st;
      auto edges = [&](std::uint32_t r) {
        std::vector<std::uint32_t> out;
        for (const Alt& a : rules_[r]) {
          for (const Elem& e : a) {
            if (e.kind == Grammar::Kind::kChars) break;
            out.push_back(e.arg);
            if (!nullable[e.arg]) break;
          }
        }
        return out;
      };
      color[start] = 1;
      st.push_back({start, edges(start)});
      while (!st.empty()) {
        auto& [r, out] = st.back();
        if (out.empty()) {
          color[r] = 2;
          st.pop_back();
          continue;
        }
        const std::uint32_t s = out.back();
        out.pop_back();
        if (color[s] == 1) {
          // Name the user's rule: helper names are "<rule>_<n>".
          const auto h = helper_of_.find(s);
          const std::string who = h != helper_of_.end() ? h->second : names_[s];
          throw GrammarError("grammar: left recursion in rule '" + who +
                             "' (a rule that can reach itself before matching a character)");
        }
        if (color[s] == 0) {
          color[s] = 1;
          st.push_back({s, edges(s)});
        }
      }
    }
  }

  std::string_view s_;
  std::unordered_map<std::string, std::uint32_t> ids_;
  std::vector<std::string> names_;
  std::vector<std::vector<Alt>> rules_;
  std::vector<char> defined_;
  std::vector<std::size_t> first_ref_;
  std::unordered_map<std::uint32_t, std::string> helper_of_;  // helper rule -> the rule it was made for
  std::vector<CharSet> sets_;
  std::size_t elem_count_ = 0;
};

std::shared_ptr<const Grammar> Grammar::parse(std::string_view text, std::string_view root) {
  return GrammarParser(text).run(root);
}

// ---------------------------------------------------------------------------------------------------------------
// The matcher

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar) : g_(std::move(grammar)) {
  G2C_CHECK(g_ != nullptr);
  nodes_.push_back({0, 0});  // the empty stack
  nodes_[0].exp_state = 2;
  nodes_[0].exp_off = 0;
  nodes_[0].exp_len = 1;
  pool_.push_back(0);
  std::vector<std::uint32_t> init;
  for (std::uint32_t a : g_->alternatives(g_->root())) {
    const auto e = expand(node(a, 0));
    init.insert(init.end(), e.begin(), e.end());
  }
  std::sort(init.begin(), init.end());
  init.erase(std::unique(init.begin(), init.end()), init.end());
  state_.stacks = std::move(init);
}

std::uint32_t GrammarMatcher::node(std::uint32_t pos, std::uint32_t parent) {
  if (g_->elems()[pos].kind == Grammar::Kind::kEnd) return parent;  // a tail call: nothing left here
  const std::uint64_t key = (static_cast<std::uint64_t>(pos) << 32) | parent;
  const auto [it, inserted] = index_.emplace(key, static_cast<std::uint32_t>(nodes_.size()));
  if (inserted) nodes_.push_back({pos, parent});
  return it->second;
}

std::span<const std::uint32_t> GrammarMatcher::expand(std::uint32_t id) {
  if (nodes_[id].exp_state == 2) return {pool_.data() + nodes_[id].exp_off, nodes_[id].exp_len};
  if (nodes_[id].exp_state == 1) return {};  // a cycle without input (refused by the parser; a guard)
  nodes_[id].exp_state = 1;
  std::vector<std::uint32_t> out;
  const std::uint32_t pos = nodes_[id].pos, parent = nodes_[id].parent;
  const Grammar::Elem e = g_->elems()[pos];
  if (e.kind == Grammar::Kind::kChars) {
    out.push_back(id);
  } else {
    const std::uint32_t ret = node(pos + 1, parent);
    for (std::uint32_t a : g_->alternatives(e.arg)) {
      const auto sub = expand(node(a, ret));
      out.insert(out.end(), sub.begin(), sub.end());
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }
  Node& n = nodes_[id];
  n.exp_off = static_cast<std::uint32_t>(pool_.size());
  n.exp_len = static_cast<std::uint32_t>(out.size());
  n.exp_state = 2;
  pool_.insert(pool_.end(), out.begin(), out.end());
  return {pool_.data() + n.exp_off, n.exp_len};
}

std::span<const std::uint32_t> GrammarMatcher::after(std::uint32_t id) {
  if (nodes_[id].aft_state != 2) {
    const std::uint32_t next = node(nodes_[id].pos + 1, nodes_[id].parent);
    const auto e = expand(next);
    const std::vector<std::uint32_t> copy(e.begin(), e.end());
    Node& n = nodes_[id];
    n.aft_off = static_cast<std::uint32_t>(pool_.size());
    n.aft_len = static_cast<std::uint32_t>(copy.size());
    n.aft_state = 2;
    pool_.insert(pool_.end(), copy.begin(), copy.end());
  }
  return {pool_.data() + nodes_[id].aft_off, nodes_[id].aft_len};
}

void GrammarMatcher::step_cp(const std::vector<std::uint32_t>& from, std::uint32_t cp, std::vector<std::uint32_t>& to) {
  to.clear();
  const auto& elems = g_->elems();
  const auto& sets = g_->sets();
  for (std::uint32_t id : from) {
    if (id == 0) continue;
    if (!sets[elems[nodes_[id].pos].arg].contains(cp)) continue;
    const auto a = after(id);
    to.insert(to.end(), a.begin(), a.end());
  }
  if (to.size() > 1) {
    std::sort(to.begin(), to.end());
    to.erase(std::unique(to.begin(), to.end()), to.end());
  }
}

void GrammarMatcher::filter_partial(const std::vector<std::uint32_t>& from, PartialUtf8 p,
                                    std::vector<std::uint32_t>& to) const {
  to.clear();
  const unsigned shift = 6u * static_cast<unsigned>(p.n_remain);
  const std::uint32_t lo = std::max(p.value << shift, p.min_cp);
  const std::uint32_t hi = std::min((p.value << shift) | ((1u << shift) - 1u), 0x10FFFFu);
  const auto& elems = g_->elems();
  const auto& sets = g_->sets();
  for (std::uint32_t id : from) {
    if (id == 0) continue;
    if (sets[elems[nodes_[id].pos].arg].intersects(lo, hi)) to.push_back(id);
  }
}

bool GrammarMatcher::step_byte(const GrammarState& from, std::uint8_t b, GrammarState& to) {
  PartialUtf8 p = from.partial;
  if (p.n_remain == 0) {
    if (b < 0x80) {
      to.partial = {};
      step_cp(from.stacks, b, to.stacks);
      return !to.stacks.empty();
    }
    // Well-formed UTF-8 (Unicode 15, table 3-7): the lead byte fixes the length and the second byte's range.
    if (b >= 0xC2 && b <= 0xDF) {
      p = {b & 0x1Fu, 1, 0x80, 0xBF, 0x80};
    } else if (b >= 0xE0 && b <= 0xEF) {
      p = {b & 0x0Fu, 2, static_cast<std::uint8_t>(b == 0xE0 ? 0xA0 : 0x80),
           static_cast<std::uint8_t>(b == 0xED ? 0x9F : 0xBF), 0x800};
    } else if (b >= 0xF0 && b <= 0xF4) {
      p = {b & 0x07u, 3, static_cast<std::uint8_t>(b == 0xF0 ? 0x90 : 0x80),
           static_cast<std::uint8_t>(b == 0xF4 ? 0x8F : 0xBF), 0x10000};
    } else {
      to.stacks.clear();
      return false;  // a continuation byte, an overlong lead (C0, C1) or F5..FF where a character should start
    }
  } else {
    if (b < p.next_lo || b > p.next_hi) {
      to.stacks.clear();
      return false;
    }
    p.next_lo = 0x80;
    p.next_hi = 0xBF;
    p.value = (p.value << 6) | (b & 0x3Fu);
    if (--p.n_remain == 0) {
      to.partial = {};
      step_cp(from.stacks, p.value, to.stacks);
      return !to.stacks.empty();
    }
  }
  to.partial = p;
  filter_partial(from.stacks, p, to.stacks);
  return !to.stacks.empty();
}

bool GrammarMatcher::accept(std::string_view bytes) {
  if (bytes.empty()) return true;
  GrammarState a = state_, b;
  for (char c : bytes) {
    if (!step_byte(a, static_cast<std::uint8_t>(c), b)) return false;
    std::swap(a, b);
  }
  state_ = std::move(a);
  return true;
}

bool GrammarMatcher::complete() const {
  return state_.partial.n_remain == 0 && !state_.stacks.empty() && state_.stacks[0] == 0;
}

bool GrammarMatcher::can_continue() const {
  for (std::uint32_t id : state_.stacks) {
    if (id != 0) return true;
  }
  return false;
}

std::string GrammarMatcher::expected(const GrammarState& s) const {
  std::vector<std::string> seen;
  for (std::uint32_t id : s.stacks) {
    std::string d = id == 0 ? "end" : g_->sets()[g_->elems()[nodes_[id].pos].arg].describe();
    if (std::find(seen.begin(), seen.end(), d) == seen.end()) seen.push_back(d);
  }
  std::string out;
  for (const auto& d : seen) out += (out.empty() ? "" : " or ") + d;
  return out.empty() ? "nothing" : out;
}

// ---------------------------------------------------------------------------------------------------------------
// The vocabulary

namespace {

// Complete, well-formed code points of `s` (fragments of characters are skipped).
void code_points(const std::string& s, std::vector<std::uint32_t>& out) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    const int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + static_cast<std::size_t>(len) > s.size()) {
      ++i;
      continue;
    }
    std::uint32_t v = len == 1 ? b0 : len == 2 ? (b0 & 0x1Fu) : len == 3 ? (b0 & 0x0Fu) : (b0 & 0x07u);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      if ((b & 0xC0) != 0x80) ok = false;
      v = (v << 6) | (b & 0x3Fu);
    }
    if (!ok) {
      ++i;
      continue;
    }
    out.push_back(v);
    i += static_cast<std::size_t>(len);
  }
}

}  // namespace

GrammarVocab::GrammarVocab(std::vector<std::string> token_bytes, std::vector<TokenRole> roles)
    : bytes_(std::move(token_bytes)), roles_(std::move(roles)) {
  G2C_CHECK(bytes_.size() == roles_.size());
  std::vector<std::int32_t> ids;
  std::vector<char> single(256, 0);
  for (std::size_t i = 0; i < bytes_.size(); ++i) {
    if (roles_[i] == TokenRole::kText && bytes_[i].empty()) roles_[i] = TokenRole::kNever;
    if (roles_[i] != TokenRole::kText) continue;
    ids.push_back(static_cast<std::int32_t>(i));
    if (bytes_[i].size() == 1) single[static_cast<unsigned char>(bytes_[i][0])] = 1;
    code_points(bytes_[i], cps_);
  }
  std::sort(cps_.begin(), cps_.end());
  cps_.erase(std::unique(cps_.begin(), cps_.end()), cps_.end());
  all_bytes_ = std::all_of(single.begin() + 0x80, single.begin() + 0xF5, [](char c) { return c != 0; });

  std::sort(ids.begin(), ids.end(), [&](std::int32_t a, std::int32_t b) {
    const auto& x = bytes_[static_cast<std::size_t>(a)];
    const auto& y = bytes_[static_cast<std::size_t>(b)];
    return x != y ? x < y : a < b;
  });
  trie_tokens_ = ids;
  // Node [lo, hi) at `depth`: every token in it shares the first `depth` bytes; those of exactly that
  // length sort first. Children are allocated contiguously, then filled.
  trie_.push_back({0, 0, 0, 0, 0});
  struct Work {
    std::uint32_t node, lo, hi, depth;
  };
  std::vector<Work> work{{0, 0, static_cast<std::uint32_t>(ids.size()), 0}};
  while (!work.empty()) {
    const Work w = work.back();
    work.pop_back();
    std::uint32_t i = w.lo;
    while (i < w.hi && bytes_[static_cast<std::size_t>(ids[i])].size() == w.depth) ++i;
    trie_[w.node].tok_begin = w.lo;
    trie_[w.node].tok_end = i;
    std::vector<Work> kids;
    while (i < w.hi) {
      const char b = bytes_[static_cast<std::size_t>(ids[i])][w.depth];
      std::uint32_t j = i;
      while (j < w.hi && bytes_[static_cast<std::size_t>(ids[j])][w.depth] == b) ++j;
      kids.push_back({0, i, j, w.depth + 1});
      i = j;
    }
    const auto begin = static_cast<std::uint32_t>(trie_.size());
    trie_[w.node].child_begin = begin;
    trie_[w.node].child_end = begin + static_cast<std::uint32_t>(kids.size());
    for (std::size_t k = 0; k < kids.size(); ++k) {
      const auto b = static_cast<std::uint8_t>(bytes_[static_cast<std::size_t>(ids[kids[k].lo])][w.depth]);
      trie_.push_back({0, 0, 0, 0, b});
      kids[k].node = begin + static_cast<std::uint32_t>(k);
      work.push_back(kids[k]);
    }
  }
}

bool GrammarVocab::produces(const CharSet& s) const {
  if (all_bytes_ && s.intersects(0x80, 0x10FFFF)) return true;
  for (std::uint32_t c : cps_) {
    if (s.contains(c)) return true;
  }
  return false;
}

void GrammarVocab::check_coverage(const Grammar& g) const {
  const auto& elems = g.elems();
  std::vector<char> set_ok(g.sets().size());
  for (std::size_t i = 0; i < set_ok.size(); ++i) set_ok[i] = produces(g.sets()[i]) ? 1 : 0;
  const std::size_t n = g.n_rules();
  std::vector<char> ok(n, 0);
  auto elem_ok = [&](const Grammar::Elem& e) {
    return e.kind == Grammar::Kind::kChars ? set_ok[e.arg] != 0 : ok[e.arg] != 0;
  };
  auto alt_ok = [&](std::uint32_t a) {
    for (std::uint32_t i = a; elems[i].kind != Grammar::Kind::kEnd; ++i) {
      if (!elem_ok(elems[i])) return false;
    }
    return true;
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (std::uint32_t r = 0; r < n; ++r) {
      if (ok[r]) continue;
      for (std::uint32_t a : g.alternatives(r)) {
        if (alt_ok(a)) {
          ok[r] = 1;
          changed = true;
          break;
        }
      }
    }
  }
  if (ok[g.root()]) return;
  // Follow the first alternative's first unproducible element down to a character set.
  std::uint32_t r = g.root();
  std::vector<char> seen(n, 0);
  while (!seen[r]) {
    seen[r] = 1;
    const std::uint32_t a = g.alternatives(r).at(0);
    for (std::uint32_t i = a; elems[i].kind != Grammar::Kind::kEnd; ++i) {
      if (elem_ok(elems[i])) continue;
      if (elems[i].kind == Grammar::Kind::kChars) {
        throw InvalidArgument("grammar: the model's vocabulary cannot produce " + g.sets()[elems[i].arg].describe() +
                              ", which rule '" + g.rule_name(r) +
                              "' needs (no token contains it and there is no byte fallback)");
      }
      r = elems[i].arg;
      break;
    }
  }
  throw InvalidArgument("grammar: the model's vocabulary cannot produce any string of the grammar");
}

// ---------------------------------------------------------------------------------------------------------------
// One sequence's token constraint

TokenGrammar::TokenGrammar(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab)
    : vocab_(std::move(vocab)), m_(std::move(grammar)) {
  G2C_CHECK(vocab_ != nullptr);
}

bool TokenGrammar::allows(std::int32_t token) {
  if (token < 0 || static_cast<std::size_t>(token) >= vocab_->n_vocab()) return false;
  return allows_text(token, vocab_->bytes(token));
}

bool TokenGrammar::allows_text(std::int32_t token, std::string_view text) {
  if (token < 0 || static_cast<std::size_t>(token) >= vocab_->n_vocab()) return false;
  switch (vocab_->role(token)) {
    case TokenRole::kNever: return false;
    case TokenRole::kEog: return m_.complete();
    case TokenRole::kText: break;
  }
  const GrammarState probe = m_.state();
  if (!m_.accept(text)) return false;
  m_.set_state(probe);
  return true;
}

void TokenGrammar::accept(std::int32_t token) { accept_text(token, vocab_->bytes(token)); }

void TokenGrammar::accept_text(std::int32_t token, std::string_view text) {
  if (vocab_->role(token) != TokenRole::kText) return;
  const bool ok = m_.accept(text);
  G2C_CHECK_MSG(ok, "TokenGrammar::accept: a token the grammar does not allow");
}

void TokenGrammar::walk(std::uint32_t node, std::size_t depth) {
  const auto& nodes = vocab_->nodes();
  const auto& toks = vocab_->trie_tokens();
  if (depth_states_.size() < depth + 2) depth_states_.resize(depth + 2);
  const GrammarVocab::TrieNode n = nodes[node];
  for (std::uint32_t c = n.child_begin; c < n.child_end; ++c) {
    if (!m_.step_byte(depth_states_[depth], nodes[c].byte, depth_states_[depth + 1])) continue;
    for (std::uint32_t t = nodes[c].tok_begin; t < nodes[c].tok_end; ++t) {
      allowed_[static_cast<std::size_t>(toks[t])] = 1;
    }
    if (nodes[c].child_begin != nodes[c].child_end) walk(c, depth + 1);
  }
}

std::size_t TokenGrammar::mask(std::span<float> logits) {
  G2C_CHECK(logits.size() == vocab_->n_vocab());
  allowed_.assign(logits.size(), 0);
  if (depth_states_.empty()) depth_states_.resize(2);
  depth_states_[0] = m_.state();
  walk(0, 0);
  const bool done = m_.complete();
  std::size_t n_allowed = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (vocab_->role(static_cast<std::int32_t>(i)) == TokenRole::kEog) allowed_[i] = done ? 1 : 0;
    if (allowed_[i]) {
      ++n_allowed;
    } else {
      logits[i] = -std::numeric_limits<float>::infinity();
    }
  }
  return n_allowed;
}

}  // namespace g2c::sampling
