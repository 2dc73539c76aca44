#include "g2c/gguf/gguf.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <unistd.h>

#include "g2c/core/error.hpp"

namespace g2c::gguf {

static_assert(std::endian::native == std::endian::little, "g2c reads GGUF on little-endian hosts only");

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "u8";
    case ValueType::INT8: return "i8";
    case ValueType::UINT16: return "u16";
    case ValueType::INT16: return "i16";
    case ValueType::UINT32: return "u32";
    case ValueType::INT32: return "i32";
    case ValueType::FLOAT32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "str";
    case ValueType::ARRAY: return "arr";
    case ValueType::UINT64: return "u64";
    case ValueType::INT64: return "i64";
    case ValueType::FLOAT64: return "f64";
  }
  return "?";
}

std::size_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::BOOL: return 1;
    case ValueType::UINT16:
    case ValueType::INT16: return 2;
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::FLOAT32: return 4;
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64: return 8;
    case ValueType::STRING:
    case ValueType::ARRAY: return 0;
  }
  return 0;
}

static bool valid_value_type(std::uint32_t t) { return t <= static_cast<std::uint32_t>(ValueType::FLOAT64); }

static bool is_int_type(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::UINT16:
    case ValueType::INT16:
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::UINT64:
    case ValueType::INT64: return true;
    default: return false;
  }
}
static bool is_signed_type(ValueType t) {
  return t == ValueType::INT8 || t == ValueType::INT16 || t == ValueType::INT32 || t == ValueType::INT64;
}

// Decodes one packed little-endian numeric element into the widened scalar representation.
static std::uint64_t decode_bits(ValueType t, const std::uint8_t* p) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::BOOL: return p[0];
    case ValueType::INT8: return static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::int8_t>(p[0])));
    case ValueType::UINT16: {
      std::uint16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case ValueType::INT16: {
      std::int16_t v;
      std::memcpy(&v, p, 2);
      return static_cast<std::uint64_t>(static_cast<std::int64_t>(v));
    }
    case ValueType::UINT32: {
      std::uint32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case ValueType::INT32: {
      std::int32_t v;
      std::memcpy(&v, p, 4);
      return static_cast<std::uint64_t>(static_cast<std::int64_t>(v));
    }
    case ValueType::FLOAT32: {
      float v;
      std::memcpy(&v, p, 4);
      return std::bit_cast<std::uint64_t>(static_cast<double>(v));
    }
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64: {
      std::uint64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
    default: return 0;
  }
}

static void encode_bits(ValueType t, std::uint64_t bits, std::vector<std::uint8_t>& out) {
  std::uint8_t buf[8];
  std::size_t n = value_type_size(t);
  if (t == ValueType::FLOAT32) {
    float f = static_cast<float>(std::bit_cast<double>(bits));
    std::memcpy(buf, &f, 4);
  } else {
    std::memcpy(buf, &bits, 8);  // little-endian truncation
  }
  out.insert(out.end(), buf, buf + n);
}

// ---- Value -------------------------------------------------------------------------------------

Value Value::u8(std::uint8_t v) { return scalar(ValueType::UINT8, v); }
Value Value::i8(std::int8_t v) {
  return scalar(ValueType::INT8, static_cast<std::uint64_t>(static_cast<std::int64_t>(v)));
}
Value Value::u16(std::uint16_t v) { return scalar(ValueType::UINT16, v); }
Value Value::i16(std::int16_t v) {
  return scalar(ValueType::INT16, static_cast<std::uint64_t>(static_cast<std::int64_t>(v)));
}
Value Value::u32(std::uint32_t v) { return scalar(ValueType::UINT32, v); }
Value Value::i32(std::int32_t v) {
  return scalar(ValueType::INT32, static_cast<std::uint64_t>(static_cast<std::int64_t>(v)));
}
Value Value::u64(std::uint64_t v) { return scalar(ValueType::UINT64, v); }
Value Value::i64(std::int64_t v) { return scalar(ValueType::INT64, static_cast<std::uint64_t>(v)); }
Value Value::f32(float v) { return scalar(ValueType::FLOAT32, std::bit_cast<std::uint64_t>(static_cast<double>(v))); }
Value Value::f64(double v) { return scalar(ValueType::FLOAT64, std::bit_cast<std::uint64_t>(v)); }
Value Value::boolean(bool v) { return scalar(ValueType::BOOL, v ? 1 : 0); }

Value Value::str(std::string v) {
  Value r;
  r.type_ = ValueType::STRING;
  r.str_ = std::move(v);
  return r;
}

Value Value::array_str(std::vector<std::string> v) {
  Value r;
  r.type_ = ValueType::ARRAY;
  r.elem_ = ValueType::STRING;
  r.count_ = v.size();
  r.strs_ = std::move(v);
  return r;
}

Value Value::array_raw(ValueType elem, std::vector<std::uint8_t> bytes) {
  std::size_t es = value_type_size(elem);
  if (es == 0) throw InvalidArgument(fmt::format("array_raw: element type {} is not numeric", value_type_name(elem)));
  if (bytes.size() % es != 0)
    throw InvalidArgument(fmt::format("array_raw: {} bytes is not a multiple of {}", bytes.size(), es));
  Value r;
  r.type_ = ValueType::ARRAY;
  r.elem_ = elem;
  r.count_ = bytes.size() / es;
  r.raw_ = std::move(bytes);
  return r;
}

template <typename T>
static std::vector<std::uint8_t> pack(std::span<const T> v) {
  std::vector<std::uint8_t> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}
Value Value::array_f32(std::span<const float> v) { return array_raw(ValueType::FLOAT32, pack(v)); }
Value Value::array_i32(std::span<const std::int32_t> v) { return array_raw(ValueType::INT32, pack(v)); }
Value Value::array_u32(std::span<const std::uint32_t> v) { return array_raw(ValueType::UINT32, pack(v)); }

Value Value::scalar(ValueType t, std::uint64_t bits) {
  Value v;
  v.type_ = t;
  v.bits_ = bits;
  return v;
}

bool Value::is_integer() const { return is_int_type(type_); }

std::int64_t Value::as_i64() const {
  if (!is_int_type(type_) && type_ != ValueType::BOOL)
    throw InvalidArgument(fmt::format("expected an integer, got {}", value_type_name(type_)));
  if (type_ == ValueType::UINT64 && bits_ > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    throw InvalidArgument(fmt::format("integer {} does not fit in int64", bits_));
  return static_cast<std::int64_t>(bits_);
}

std::uint64_t Value::as_u64() const {
  if (!is_int_type(type_) && type_ != ValueType::BOOL)
    throw InvalidArgument(fmt::format("expected an integer, got {}", value_type_name(type_)));
  if (is_signed_type(type_) && static_cast<std::int64_t>(bits_) < 0)
    throw InvalidArgument(fmt::format("expected a non-negative integer, got {}", static_cast<std::int64_t>(bits_)));
  return bits_;
}

double Value::as_f64() const {
  if (is_float()) return std::bit_cast<double>(bits_);
  if (is_int_type(type_)) {
    return is_signed_type(type_) ? static_cast<double>(static_cast<std::int64_t>(bits_)) : static_cast<double>(bits_);
  }
  throw InvalidArgument(fmt::format("expected a number, got {}", value_type_name(type_)));
}

bool Value::as_bool() const {
  if (type_ == ValueType::BOOL || is_int_type(type_)) return bits_ != 0;
  throw InvalidArgument(fmt::format("expected a bool, got {}", value_type_name(type_)));
}

const std::string& Value::as_str() const {
  if (type_ != ValueType::STRING)
    throw InvalidArgument(fmt::format("expected a string, got {}", value_type_name(type_)));
  return str_;
}

std::size_t Value::size() const { return type_ == ValueType::ARRAY ? count_ : 0; }

const std::vector<std::string>& Value::strings() const {
  if (type_ != ValueType::ARRAY || elem_ != ValueType::STRING)
    throw InvalidArgument(fmt::format("expected an array of strings, got {}", to_display(0)));
  return strs_;
}

std::int64_t Value::int_at(std::size_t i) const {
  if (type_ != ValueType::ARRAY || (!is_int_type(elem_) && elem_ != ValueType::BOOL))
    throw InvalidArgument("expected an array of integers");
  G2C_CHECK(i < count_);
  std::uint64_t b = decode_bits(elem_, raw_.data() + i * value_type_size(elem_));
  return static_cast<std::int64_t>(b);
}

double Value::float_at(std::size_t i) const {
  if (type_ != ValueType::ARRAY || elem_ == ValueType::STRING) throw InvalidArgument("expected a numeric array");
  G2C_CHECK(i < count_);
  std::uint64_t b = decode_bits(elem_, raw_.data() + i * value_type_size(elem_));
  if (elem_ == ValueType::FLOAT32 || elem_ == ValueType::FLOAT64) return std::bit_cast<double>(b);
  if (is_signed_type(elem_)) return static_cast<double>(static_cast<std::int64_t>(b));
  return static_cast<double>(b);
}

std::vector<std::int64_t> Value::to_i64_vector() const {
  std::vector<std::int64_t> v(count_);
  for (std::size_t i = 0; i < count_; ++i) v[i] = int_at(i);
  return v;
}

std::vector<float> Value::to_f32_vector() const {
  std::vector<float> v(count_);
  if (type_ == ValueType::ARRAY && elem_ == ValueType::FLOAT32) {
    if (count_) std::memcpy(v.data(), raw_.data(), count_ * 4);
    return v;
  }
  for (std::size_t i = 0; i < count_; ++i) v[i] = static_cast<float>(float_at(i));
  return v;
}

bool Value::operator==(const Value& o) const {
  if (type_ != o.type_) return false;
  if (type_ == ValueType::STRING) return str_ == o.str_;
  if (type_ == ValueType::ARRAY) return elem_ == o.elem_ && count_ == o.count_ && strs_ == o.strs_ && raw_ == o.raw_;
  return bits_ == o.bits_;
}

static std::string quote(const std::string& s, std::size_t max_len = 60) {
  std::string r = "\"";
  for (std::size_t i = 0; i < s.size() && i < max_len; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n')
      r += "\\n";
    else if (c == '\t')
      r += "\\t";
    else if (c == '"')
      r += "\\\"";
    else if (c < 0x20)
      r += fmt::format("\\x{:02x}", c);
    else
      r += static_cast<char>(c);
  }
  if (s.size() > max_len) r += "...";
  return r + "\"";
}

static std::string scalar_display(ValueType t, std::uint64_t bits) {
  if (t == ValueType::BOOL) return bits ? "true" : "false";
  if (t == ValueType::FLOAT32) return fmt::format("{}", static_cast<float>(std::bit_cast<double>(bits)));
  if (t == ValueType::FLOAT64) return fmt::format("{}", std::bit_cast<double>(bits));
  if (is_signed_type(t)) return fmt::format("{}", static_cast<std::int64_t>(bits));
  return fmt::format("{}", bits);
}

std::string Value::to_display(std::size_t max_items) const {
  if (type_ == ValueType::STRING) return quote(str_);
  if (type_ != ValueType::ARRAY) return scalar_display(type_, bits_);
  std::string r = fmt::format("[{} × {}", value_type_name(elem_), count_);
  std::size_t n = std::min(count_, max_items);
  for (std::size_t i = 0; i < n; ++i) {
    r += i == 0 ? ": " : ", ";
    if (elem_ == ValueType::STRING)
      r += quote(strs_[i], 24);
    else
      r += scalar_display(elem_, decode_bits(elem_, raw_.data() + i * value_type_size(elem_)));
  }
  if (count_ > n) r += ", ...";
  return r + "]";
}

// ---- TensorInfo --------------------------------------------------------------------------------

std::string TensorInfo::shape_string() const {
  std::string r = "[";
  for (std::uint32_t i = 0; i < n_dims; ++i) r += (i ? ", " : "") + std::to_string(ne[i]);
  return r + "]";
}

// ---- Reader ------------------------------------------------------------------------------------

// Cursor over the file bytes. Every read is bounds-checked against the whole buffer first.
class Reader {
 public:
  Reader(std::span<const std::uint8_t> b, const std::string& name) : b_(b), name_(name) {}

  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return b_.size() - pos_; }

  [[noreturn]] void fail(const std::string& what) const { throw FormatError(name_ + ": " + what); }

  void need(std::uint64_t n, const char* what) const {
    if (n > remaining())
      fail(fmt::format("truncated file: {} needs {} bytes at offset {}, only {} left", what, n, pos_, remaining()));
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    std::uint64_t len = read<std::uint64_t>(what);
    if (len > remaining())
      fail(fmt::format("truncated file: {} of length {} at offset {} runs past the end ({} bytes left)", what, len,
                       pos_, remaining()));
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<std::size_t>(len));
    pos_ += static_cast<std::size_t>(len);
    return s;
  }

  Value read_value(ValueType t, const std::string& key, bool in_array) {
    Value v;
    v.type_ = t;
    switch (t) {
      case ValueType::STRING: v.str_ = read_string("string value"); return v;
      case ValueType::ARRAY: {
        if (in_array) fail(fmt::format("key '{}': nested arrays are not supported", key));
        std::uint32_t et = read<std::uint32_t>("array element type");
        if (!valid_value_type(et)) fail(fmt::format("key '{}': unknown array element type {}", key, et));
        auto elem = static_cast<ValueType>(et);
        if (elem == ValueType::ARRAY) fail(fmt::format("key '{}': nested arrays are not supported", key));
        std::uint64_t n = read<std::uint64_t>("array length");
        v.elem_ = elem;
        if (elem == ValueType::STRING) {
          // each string needs at least its 8-byte length
          if (n > remaining() / 8)
            fail(fmt::format("key '{}': array of {} strings cannot fit in the {} bytes left", key, n, remaining()));
          v.strs_.reserve(static_cast<std::size_t>(n));
          for (std::uint64_t i = 0; i < n; ++i) v.strs_.push_back(read_string("array string"));
        } else {
          std::size_t es = value_type_size(elem);
          if (n > remaining() / es)
            fail(fmt::format("key '{}': array of {} × {} runs past the end of the file ({} bytes left)", key, n,
                             value_type_name(elem), remaining()));
          std::size_t bytes = static_cast<std::size_t>(n) * es;
          v.raw_.assign(b_.data() + pos_, b_.data() + pos_ + bytes);
          pos_ += bytes;
          if (elem == ValueType::BOOL) {
            for (std::uint8_t c : v.raw_)
              if (c > 1) fail(fmt::format("key '{}': bool array element {} (expected 0 or 1)", key, c));
          }
        }
        v.count_ = static_cast<std::size_t>(n);
        return v;
      }
      default: {
        std::size_t es = value_type_size(t);
        need(es, "scalar value");
        v.bits_ = decode_bits(t, b_.data() + pos_);
        pos_ += es;
        if (t == ValueType::BOOL && v.bits_ > 1)
          fail(fmt::format("key '{}': bool value {} (expected 0 or 1)", key, v.bits_));
        return v;
      }
    }
  }

  void parse(File& f) {
    if (b_.size() < 8) fail(fmt::format("truncated file: {} bytes is shorter than the 8-byte GGUF header", b_.size()));
    std::uint32_t magic = read<std::uint32_t>("magic");
    if (magic != kMagic) {
      char m[4];
      std::memcpy(m, &magic, 4);
      std::string shown;
      for (char c : m)
        shown += (c >= 0x20 && c < 0x7f) ? std::string(1, c) : fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
      fail(fmt::format("not a GGUF file: bad magic \"{}\" (expected \"GGUF\")", shown));
    }
    f.version_ = read<std::uint32_t>("version");
    if (f.version_ == 0x03000000u || f.version_ == 0x02000000u) fail("big-endian GGUF is not supported");
    if (f.version_ == 1) fail("unsupported GGUF version 1 (expected 2 or 3)");
    if (f.version_ < 2 || f.version_ > 3)
      fail(fmt::format("unsupported GGUF version {} (expected 2 or 3)", f.version_));
    std::uint64_t n_tensors = read<std::uint64_t>("tensor count");
    std::uint64_t n_kv = read<std::uint64_t>("metadata count");
    // Smallest KV: 8 (key len) + 1 (key) + 4 (type) + 1 (u8). Smallest tensor info: 8+1+4+8+4+8.
    if (n_kv > remaining() / 14)
      fail(fmt::format("truncated file or absurd metadata count: {} entries cannot fit in the {} bytes left", n_kv,
                       remaining()));
    if (n_tensors > remaining() / 33)
      fail(fmt::format("truncated file or absurd tensor count: {} tensor infos cannot fit in the {} bytes left",
                       n_tensors, remaining()));

    f.kvs_.reserve(static_cast<std::size_t>(n_kv));
    for (std::uint64_t i = 0; i < n_kv; ++i) {
      std::string key = read_string("metadata key");
      if (key.empty()) fail(fmt::format("metadata entry {} has an empty key", i));
      std::uint32_t t = read<std::uint32_t>("value type");
      if (!valid_value_type(t)) fail(fmt::format("key '{}': unknown value type {}", key, t));
      Value v = read_value(static_cast<ValueType>(t), key, false);
      if (f.kv_index_.count(key)) fail(fmt::format("duplicate key '{}'", key));
      f.kv_index_.emplace(key, f.kvs_.size());
      f.kvs_.push_back({std::move(key), std::move(v)});
    }

    f.alignment_ = kDefaultAlignment;
    if (const Value* a = f.find("general.alignment")) {
      if (a->type() != ValueType::UINT32)
        fail(fmt::format("general.alignment has type {} (expected u32)", value_type_name(a->type())));
      std::uint64_t al = a->as_u64();
      if (al == 0 || (al & (al - 1)) != 0) fail(fmt::format("general.alignment {} is not a power of two", al));
      f.alignment_ = static_cast<std::uint32_t>(al);
    }

    f.tensors_.reserve(static_cast<std::size_t>(n_tensors));
    for (std::uint64_t i = 0; i < n_tensors; ++i) {
      TensorInfo t;
      t.name = read_string("tensor name");
      if (t.name.empty()) fail(fmt::format("tensor {} has an empty name", i));
      if (t.name.size() >= 64)
        fail(fmt::format("tensor name '{}...' is {} bytes (at most 63)", t.name.substr(0, 32), t.name.size()));
      t.n_dims = read<std::uint32_t>("tensor dimension count");
      if (t.n_dims == 0 || t.n_dims > kMaxDims)
        fail(fmt::format("tensor '{}': {} dimensions (expected 1 to {})", t.name, t.n_dims, kMaxDims));
      for (std::uint32_t d = 0; d < t.n_dims; ++d) {
        std::uint64_t ne = read<std::uint64_t>("tensor dimension");
        if (ne == 0) fail(fmt::format("tensor '{}': dimension {} is zero", t.name, d));
        if (ne > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          fail(fmt::format("tensor '{}': dimension {} = {} overflows int64", t.name, d, ne));
        t.ne[d] = static_cast<std::int64_t>(ne);
      }
      std::uint32_t type_id = read<std::uint32_t>("tensor type");
      auto traits = ggml_type_traits(type_id);
      if (!traits) fail(fmt::format("tensor '{}': unknown tensor type {}", t.name, type_id));
      t.type = static_cast<GgmlType>(type_id);
      t.offset = read<std::uint64_t>("tensor offset");
      // element count and byte size, every product guarded
      std::uint64_t nel = 1;
      for (int d = 0; d < kMaxDims; ++d) {
        auto ne = static_cast<std::uint64_t>(t.ne[d]);
        if (nel > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / ne)
          fail(fmt::format("tensor '{}': shape {} overflows the element count", t.name, t.shape_string()));
        nel *= ne;
      }
      if (static_cast<std::uint64_t>(t.ne[0]) % traits->block_size != 0)
        fail(fmt::format("tensor '{}': row length {} is not a multiple of the {} block size {}", t.name, t.ne[0],
                         traits->name, traits->block_size));
      std::uint64_t blocks = nel / traits->block_size;
      if (blocks > std::numeric_limits<std::uint64_t>::max() / traits->type_size)
        fail(fmt::format("tensor '{}': byte size overflows", t.name));
      t.n_bytes = blocks * traits->type_size;
      if (f.tensor_index_.count(t.name)) fail(fmt::format("duplicate tensor name '{}'", t.name));
      f.tensor_index_.emplace(t.name, f.tensors_.size());
      f.tensors_.push_back(std::move(t));
    }

    // Data section: header end padded to the alignment.
    std::uint64_t hdr_end = pos_;
    std::uint64_t data_off = (hdr_end + f.alignment_ - 1) / f.alignment_ * f.alignment_;
    f.data_offset_ = data_off;
    if (!f.tensors_.empty() && data_off > b_.size())
      fail(fmt::format("truncated file: data section starts at {} but the file has {} bytes", data_off, b_.size()));

    std::uint64_t data_size = b_.size() > data_off ? b_.size() - data_off : 0;
    std::vector<std::size_t> order(f.tensors_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (auto& t : f.tensors_) {
      if (t.offset % f.alignment_ != 0)
        fail(fmt::format("tensor '{}': offset {} is not a multiple of the alignment {}", t.name, t.offset,
                         f.alignment_));
      if (t.offset > data_size || t.n_bytes > data_size - t.offset)
        fail(fmt::format("tensor '{}': data [{}, +{}) lies outside the file's {}-byte data section", t.name, t.offset,
                         t.n_bytes, data_size));
      t.data = b_.data() + data_off + t.offset;
    }
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return f.tensors_[a].offset < f.tensors_[b].offset; });
    for (std::size_t i = 1; i < order.size(); ++i) {
      const auto& prev = f.tensors_[order[i - 1]];
      const auto& cur = f.tensors_[order[i]];
      if (cur.offset < prev.offset + prev.n_bytes)
        fail(fmt::format("tensors '{}' and '{}' overlap (offsets {} and {}, {} bytes)", prev.name, cur.name,
                         prev.offset, cur.offset, prev.n_bytes));
    }
  }

 private:
  std::span<const std::uint8_t> b_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

// ---- File --------------------------------------------------------------------------------------

std::unique_ptr<File> File::open(const std::string& path) {
  std::unique_ptr<File> f(new File());
  f->map_ = MappedFile(path);
  f->bytes_ = f->map_.bytes();
  f->name_ = path;
  f->parse_all();
  return f;
}

std::unique_ptr<File> File::parse(std::span<const std::uint8_t> bytes, const std::string& name) {
  std::unique_ptr<File> f(new File());
  f->bytes_ = bytes;
  f->name_ = name;
  f->parse_all();
  return f;
}

void File::parse_all() {
  Reader r(bytes_, name_);
  r.parse(*this);
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

template <typename F>
static auto typed(const File& f, std::string_view key, F&& get)
    -> std::optional<decltype(get(std::declval<const Value&>()))> {
  const Value* v = f.find(key);
  if (!v) return std::nullopt;
  try {
    return get(*v);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(fmt::format("{}: key '{}': {}", f.path(), key, e.what()));
  }
}

std::optional<std::int64_t> File::get_int(std::string_view key) const {
  return typed(*this, key, [](const Value& v) { return v.as_i64(); });
}
std::optional<double> File::get_float(std::string_view key) const {
  return typed(*this, key, [](const Value& v) { return v.as_f64(); });
}
std::optional<bool> File::get_bool(std::string_view key) const {
  return typed(*this, key, [](const Value& v) { return v.as_bool(); });
}
std::optional<std::string> File::get_str(std::string_view key) const {
  return typed(*this, key, [](const Value& v) { return v.as_str(); });
}

std::int64_t File::require_int(std::string_view key) const {
  auto v = get_int(key);
  if (!v) throw FormatError(fmt::format("{}: missing key '{}'", name_, key));
  return *v;
}
double File::require_float(std::string_view key) const {
  auto v = get_float(key);
  if (!v) throw FormatError(fmt::format("{}: missing key '{}'", name_, key));
  return *v;
}
std::string File::require_str(std::string_view key) const {
  auto v = get_str(key);
  if (!v) throw FormatError(fmt::format("{}: missing key '{}'", name_, key));
  return *v;
}

std::string File::architecture() const { return get_str("general.architecture").value_or(""); }

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

// ---- Writer ------------------------------------------------------------------------------------

Writer::Writer(std::uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw InvalidArgument(fmt::format("GGUF alignment {} is not a power of two", alignment));
  if (alignment != kDefaultAlignment) set("general.alignment", Value::u32(alignment));
}

Writer Writer::copy_of(const File& in) {
  Writer w(in.alignment());
  for (const auto& kv : in.kvs()) w.set(kv.key, kv.value);
  for (const auto& t : in.tensors())
    w.add_tensor(t.name, t.type, std::span<const std::int64_t>(t.ne.data(), t.n_dims),
                 std::span<const std::uint8_t>(t.data, t.n_bytes));
  return w;
}

void Writer::set(const std::string& key, Value v) {
  if (key.empty()) throw InvalidArgument("GGUF metadata key is empty");
  for (auto& kv : kvs_) {
    if (kv.key == key) {
      kv.value = std::move(v);
      return;
    }
  }
  kvs_.push_back({key, std::move(v)});
}

void Writer::remove(const std::string& key) {
  kvs_.erase(std::remove_if(kvs_.begin(), kvs_.end(), [&](const KeyValue& kv) { return kv.key == key; }), kvs_.end());
}

Writer::PendingTensor Writer::make_pending(const std::string& name, GgmlType type,
                                           std::span<const std::int64_t> ne) const {
  if (name.empty() || name.size() >= 64)
    throw InvalidArgument(fmt::format("tensor name '{}' must be 1 to 63 bytes", name));
  for (const auto& t : tensors_)
    if (t.info.name == name) throw InvalidArgument(fmt::format("duplicate tensor name '{}'", name));
  if (ne.empty() || ne.size() > static_cast<std::size_t>(kMaxDims))
    throw InvalidArgument(fmt::format("tensor '{}': {} dimensions (expected 1 to 4)", name, ne.size()));
  PendingTensor p;
  p.info.name = name;
  p.info.type = type;
  p.info.n_dims = static_cast<std::uint32_t>(ne.size());
  for (std::size_t i = 0; i < ne.size(); ++i) {
    if (ne[i] <= 0) throw InvalidArgument(fmt::format("tensor '{}': dimension {} is {}", name, i, ne[i]));
    p.info.ne[i] = ne[i];
  }
  const auto& tr = type_traits(type);
  if (p.info.ne[0] % tr.block_size != 0)
    throw InvalidArgument(fmt::format("tensor '{}': row length {} is not a multiple of the {} block size {}", name,
                                      p.info.ne[0], tr.name, tr.block_size));
  p.info.n_bytes = static_cast<std::uint64_t>(p.info.n_elements()) / tr.block_size * tr.type_size;
  return p;
}

void Writer::add_tensor(const std::string& name, GgmlType type, std::span<const std::int64_t> ne,
                        std::span<const std::uint8_t> data) {
  PendingTensor p = make_pending(name, type, ne);
  if (p.info.n_bytes != data.size())
    throw InvalidArgument(fmt::format("tensor '{}': {} {} needs {} bytes, got {}", name, type_name(type),
                                      p.info.shape_string(), p.info.n_bytes, data.size()));
  p.data.assign(data.begin(), data.end());
  tensors_.push_back(std::move(p));
}

void Writer::add_tensor_streamed(const std::string& name, GgmlType type, std::span<const std::int64_t> ne) {
  PendingTensor p = make_pending(name, type, ne);
  p.streamed = true;
  tensors_.push_back(std::move(p));
}

namespace {
template <typename T>
void put(std::vector<std::uint8_t>& out, T v) {
  std::uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}
void put_str(std::vector<std::uint8_t>& out, const std::string& s) {
  put<std::uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}
void pad_to(std::vector<std::uint8_t>& out, std::size_t align) {
  while (out.size() % align) out.push_back(0);
}
}  // namespace

std::vector<std::uint8_t> Writer::header_bytes() const {
  std::vector<std::uint8_t> out;
  put<std::uint32_t>(out, kMagic);
  put<std::uint32_t>(out, 3);
  put<std::uint64_t>(out, tensors_.size());
  put<std::uint64_t>(out, kvs_.size());
  for (const auto& kv : kvs_) {
    put_str(out, kv.key);
    const Value& v = kv.value;
    put<std::uint32_t>(out, static_cast<std::uint32_t>(v.type()));
    if (v.type() == ValueType::STRING) {
      put_str(out, v.as_str());
    } else if (v.type() == ValueType::ARRAY) {
      put<std::uint32_t>(out, static_cast<std::uint32_t>(v.elem_type()));
      put<std::uint64_t>(out, v.size());
      if (v.elem_type() == ValueType::STRING) {
        for (const auto& s : v.strings()) put_str(out, s);
      } else {
        auto raw = v.raw();
        out.insert(out.end(), raw.begin(), raw.end());
      }
    } else {
      std::uint64_t bits;
      if (v.is_float())
        bits = std::bit_cast<std::uint64_t>(v.as_f64());
      else if (v.type() == ValueType::BOOL)
        bits = v.as_bool() ? 1 : 0;
      else
        bits = static_cast<std::uint64_t>(v.is_integer() && v.type() != ValueType::UINT64 ? v.as_i64() : v.as_u64());
      encode_bits(v.type(), bits, out);
    }
  }
  std::uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_str(out, t.info.name);
    put<std::uint32_t>(out, t.info.n_dims);
    for (std::uint32_t d = 0; d < t.info.n_dims; ++d) put<std::uint64_t>(out, static_cast<std::uint64_t>(t.info.ne[d]));
    put<std::uint32_t>(out, static_cast<std::uint32_t>(t.info.type));
    put<std::uint64_t>(out, offset);
    offset += (t.info.n_bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  pad_to(out, alignment_);
  return out;
}

std::vector<std::uint8_t> Writer::to_bytes() const {
  for (const auto& t : tensors_)
    if (t.streamed)
      throw InvalidArgument(fmt::format("tensor '{}' is streamed: write it with write(path, fill)", t.info.name));
  std::vector<std::uint8_t> out = header_bytes();
  for (const auto& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    pad_to(out, alignment_);
  }
  return out;
}

void Writer::write(const std::string& path) const { write_file_atomic(path, to_bytes()); }

namespace {
// A file under `path.tmp.<pid>` that is removed unless commit() renamed it over `path`.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp." + std::to_string(::getpid())) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(fmt::format("cannot create {}: {}", tmp_, std::strerror(errno)));
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  void put(const std::uint8_t* p, std::size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw IoError(fmt::format("cannot write {}: {}", tmp_, std::strerror(errno)));
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }
  void commit() {
    int rc = ::fsync(fd_);
    rc |= ::close(fd_);
    fd_ = -1;
    if (rc != 0) throw IoError(fmt::format("cannot flush {}: {}", tmp_, std::strerror(errno)));
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      throw IoError(fmt::format("cannot rename {} to {}: {}", tmp_, path_, std::strerror(errno)));
    committed_ = true;
  }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};
}  // namespace

void Writer::write(const std::string& path, const TensorFill& fill) const {
  TempFile f(path);
  const std::vector<std::uint8_t> header = header_bytes();
  f.put(header.data(), header.size());
  std::vector<std::uint8_t> buf;
  static const std::uint8_t kZeros[256] = {};
  for (const auto& t : tensors_) {
    std::span<const std::uint8_t> bytes = t.data;
    if (t.streamed) {
      buf.resize(t.info.n_bytes);
      fill(t.info, std::span<std::uint8_t>(buf.data(), buf.size()));
      bytes = buf;
    }
    f.put(bytes.data(), bytes.size());
    const std::size_t pad = (alignment_ - bytes.size() % alignment_) % alignment_;
    for (std::size_t left = pad; left > 0;) {
      const std::size_t n = std::min(left, sizeof(kZeros));
      f.put(kZeros, n);
      left -= n;
    }
  }
  f.commit();
}

}  // namespace g2c::gguf
