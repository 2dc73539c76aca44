#pragma once
// GGUF v2/v3 reader and writer. Knows no model: metadata key/values and tensor infos only.
// Tensor data is the mmapped file itself (zero copy). Every size read from a file is validated
// against the file's length before use; nothing reads outside the mapping.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "g2c/core/mmap.hpp"
#include "g2c/gguf/types.hpp"

namespace g2c::gguf {

inline constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr std::uint32_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;

enum class ValueType : std::uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
const char* value_type_name(ValueType t);
// Size in bytes of a fixed-size scalar type; 0 for STRING and ARRAY.
std::size_t value_type_size(ValueType t);

// One metadata value. Scalars are held widened (integers as int64/uint64, floats as double) with
// their GGUF type kept, so a writer reproduces the exact type. Arrays hold one element type (nested
// arrays are refused, as llama.cpp does); numeric arrays keep their packed little-endian bytes.
class Value {
 public:
  Value() = default;
  static Value u8(std::uint8_t v);
  static Value i8(std::int8_t v);
  static Value u16(std::uint16_t v);
  static Value i16(std::int16_t v);
  static Value u32(std::uint32_t v);
  static Value i32(std::int32_t v);
  static Value u64(std::uint64_t v);
  static Value i64(std::int64_t v);
  static Value f32(float v);
  static Value f64(double v);
  static Value boolean(bool v);
  static Value str(std::string v);
  static Value array_str(std::vector<std::string> v);
  static Value array_f32(std::span<const float> v);
  static Value array_i32(std::span<const std::int32_t> v);
  static Value array_u32(std::span<const std::uint32_t> v);
  // A numeric array of `elem` type from its packed little-endian bytes (count = bytes / size).
  static Value array_raw(ValueType elem, std::vector<std::uint8_t> bytes);

  ValueType type() const { return type_; }
  bool is_array() const { return type_ == ValueType::ARRAY; }
  bool is_string() const { return type_ == ValueType::STRING; }
  bool is_integer() const;  // any of the 8 integer types
  bool is_float() const { return type_ == ValueType::FLOAT32 || type_ == ValueType::FLOAT64; }
  bool is_bool() const { return type_ == ValueType::BOOL; }

  // Scalar accessors. Integer accessors throw InvalidArgument if the value is not an integer or does
  // not fit; as_f64 accepts integers and floats; as_bool accepts BOOL and integers.
  std::int64_t as_i64() const;
  std::uint64_t as_u64() const;
  double as_f64() const;
  bool as_bool() const;
  const std::string& as_str() const;

  // Arrays.
  ValueType elem_type() const { return elem_; }
  std::size_t size() const;                                   // element count (arrays), string length is not it
  const std::vector<std::string>& strings() const;            // STRING arrays
  std::span<const std::uint8_t> raw() const { return raw_; }  // numeric arrays: packed LE bytes
  std::int64_t int_at(std::size_t i) const;                   // integer or bool element
  double float_at(std::size_t i) const;                       // any numeric element
  std::vector<std::int64_t> to_i64_vector() const;
  std::vector<float> to_f32_vector() const;

  bool operator==(const Value& o) const;
  // Short human form: "4096", "\"llama\"", "[str × 32000: \"<unk>\", \"<s>\", ...]".
  std::string to_display(std::size_t max_items = 8) const;

 private:
  static Value scalar(ValueType t, std::uint64_t bits);
  ValueType type_ = ValueType::UINT8;
  ValueType elem_ = ValueType::UINT8;
  std::uint64_t bits_ = 0;  // scalar payload: integer bits (sign-extended), or double bits
  std::string str_;
  std::vector<std::string> strs_;
  std::vector<std::uint8_t> raw_;
  std::size_t count_ = 0;
  friend class Reader;
};

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  std::uint32_t n_dims = 0;
  std::array<std::int64_t, kMaxDims> ne{1, 1, 1, 1};  // ne[0] is contiguous; unused dims are 1
  GgmlType type = GgmlType::F32;
  std::uint64_t offset = 0;            // relative to the data section
  std::uint64_t n_bytes = 0;           // size of the data (without alignment padding)
  const std::uint8_t* data = nullptr;  // into the mapping (reader) or caller memory (writer input)

  std::int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  std::int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  std::string shape_string() const;  // "[256, 512]"
};

// A parsed GGUF. Owns its mapping (or refers to caller bytes for parse()).
class File {
 public:
  // mmap `path` and parse; throws IoError / FormatError / UnsupportedError naming the file.
  static std::unique_ptr<File> open(const std::string& path);
  // Parse bytes the caller keeps alive (fuzzing, in-memory round trips). `name` appears in errors.
  static std::unique_ptr<File> parse(std::span<const std::uint8_t> bytes, const std::string& name = "<memory>");

  const std::string& path() const { return name_; }
  std::uint32_t version() const { return version_; }
  std::uint32_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }
  std::uint64_t file_size() const { return bytes_.size(); }

  const std::vector<KeyValue>& kvs() const { return kvs_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Typed getters: nullopt when absent; InvalidArgument naming the key when present with the wrong type.
  std::optional<std::int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_str(std::string_view key) const;
  // Required forms: FormatError "missing key 'llama.block_count' in FILE" when absent.
  std::int64_t require_int(std::string_view key) const;
  double require_float(std::string_view key) const;
  std::string require_str(std::string_view key) const;
  // general.architecture, or "" when absent.
  std::string architecture() const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

 private:
  File() = default;
  void parse_all();

  MappedFile map_;
  std::span<const std::uint8_t> bytes_;
  std::string name_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = kDefaultAlignment;
  std::uint64_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::unordered_map<std::string, std::size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, std::size_t> tensor_index_;
  friend class Reader;
};

// Builds a GGUF v3 file: metadata in insertion order, then tensors in insertion order, each aligned.
class Writer {
 public:
  explicit Writer(std::uint32_t alignment = kDefaultAlignment);
  // Every key and tensor of `in` (data copied), in its order and alignment: set() then changes a key,
  // as `g2c template --write-gguf` does to give a model another chat template.
  static Writer copy_of(const File& in);
  // Adds or replaces a key (replacing keeps the original position).
  void set(const std::string& key, Value v);
  void remove(const std::string& key);
  // Tensor data is copied. `ne` in GGUF order (ne[0] contiguous), 1..4 dims. Validates that
  // data.size() matches the type and shape (InvalidArgument otherwise) and that the name is new.
  void add_tensor(const std::string& name, GgmlType type, std::span<const std::int64_t> ne,
                  std::span<const std::uint8_t> data);
  // Declares a tensor whose bytes are produced only while writing (write(path, fill)), so writing a
  // multi-GB model holds one tensor in memory, not the whole model. Same checks as add_tensor.
  void add_tensor_streamed(const std::string& name, GgmlType type, std::span<const std::int64_t> ne);
  // Whole file in memory; InvalidArgument when a tensor was declared with add_tensor_streamed.
  std::vector<std::uint8_t> to_bytes() const;
  // Written to a temporary name and renamed. InvalidArgument when a tensor is streamed.
  void write(const std::string& path) const;
  // Fills `out` (exactly info.n_bytes bytes) with the data of a streamed tensor.
  using TensorFill = std::function<void(const TensorInfo& info, std::span<std::uint8_t> out)>;
  // Streams header and tensors to a temporary name, then renames it over `path`. `fill` is called
  // once per streamed tensor, in tensor order, into a buffer reused across tensors (peak memory: the
  // largest streamed tensor). An exception from `fill` removes the temporary file and propagates.
  void write(const std::string& path, const TensorFill& fill) const;

 private:
  struct PendingTensor {
    TensorInfo info;
    std::vector<std::uint8_t> data;
    bool streamed = false;
  };
  PendingTensor make_pending(const std::string& name, GgmlType type, std::span<const std::int64_t> ne) const;
  std::vector<std::uint8_t> header_bytes() const;  // everything before the data section, padded
  std::uint32_t alignment_;
  std::vector<KeyValue> kvs_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace g2c::gguf
