#pragma once
// sha256 hex digest (OpenSSL EVP), for comparing tensors with the hashes in quant-goldens.
#include <cstddef>
#include <string>

namespace g2c::test {
std::string sha256_hex(const void* data, std::size_t n);
}
