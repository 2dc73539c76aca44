#pragma once
// Read-only memory map of a whole file. Weights stay in the page cache and are shared between
// processes; nothing is copied at load.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace g2c {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws IoError naming `path` when it cannot be opened or mapped. An empty file maps to an empty span.
  explicit MappedFile(const std::string& path);
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  ~MappedFile();

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  void release();
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::string path_;
};

// Reads a whole (small) file into a string; IoError naming the path on failure.
std::string read_file(const std::string& path);
// Writes `data` to `path` through `path.tmp.<pid>` and rename(), so a crash never leaves a half file.
void write_file_atomic(const std::string& path, std::span<const std::uint8_t> data);

}  // namespace g2c
