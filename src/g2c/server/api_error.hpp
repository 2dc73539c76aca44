#pragma once
// An error answered to an HTTP client: a status and a one-line message. Each API writes it in its own
// shape (Ollama: {"error": message}; OpenAI: {"error": {"message", "type", "param", "code"}}), so the
// code that finds the problem does not need to know which API asked.
#include <string>

#include "g2c/core/error.hpp"

namespace g2c::server {

class ApiError : public Error {
 public:
  ApiError(int status, const std::string& message, std::string param = {})
      : Error(message), status_(status), param_(std::move(param)) {}
  int status() const { return status_; }
  // The request field at fault ("messages", "options.temperature"), when one is; OpenAI's `param`.
  const std::string& param() const { return param_; }

 private:
  int status_;
  std::string param_;
};

inline ApiError bad_request(const std::string& message, std::string param = {}) {
  return ApiError(400, message, std::move(param));
}

}  // namespace g2c::server
