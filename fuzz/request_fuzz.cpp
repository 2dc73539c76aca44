// libFuzzer target: the server's request parsing for both APIs (src/g2c/server/request_parse), JSON body
// -> typed request, without a model or a server. Every body goes through parse_body and, when it is an
// object, through every endpoint's parser (Ollama generate / chat / embed / embeddings, OpenAI
// completions / chat / embeddings) and keep_alive.
//
// Property beyond "no crash": a malformed body is refused with ApiError (a 400 naming the field), never
// with another exception (a nlohmann type_error escaping would be a 500): anything but g2c::Error aborts.
// An accepted request has sane values: finite sampling parameters and a non-empty model name.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "g2c/server/api_error.hpp"
#include "g2c/server/request_parse.hpp"

namespace {

using namespace g2c::server;

void check_sampling(const Sampling& s) {
  const auto& p = s.params.sampling;
  const std::string d = "sampling parameter out of its documented range";
  G2C_FUZZ_CHECK(p.temperature >= 0.0f && p.temperature <= 100.0f, d);
  G2C_FUZZ_CHECK(p.top_p >= 0.0f && p.top_p <= 1.0f && p.min_p >= 0.0f && p.min_p <= 1.0f, d);
  G2C_FUZZ_CHECK(std::isfinite(p.repeat_penalty) && std::isfinite(p.presence_penalty), d);
  G2C_FUZZ_CHECK(std::isfinite(p.frequency_penalty) && p.repeat_last_n >= -1, d);
  G2C_FUZZ_CHECK(!s.num_ctx || *s.num_ctx >= 1, d);
}

template <class F>
void run(F&& f) {
  try {
    f();
  } catch (const ApiError& e) {
    G2C_FUZZ_CHECK(e.status() >= 400 && e.status() < 600, e.what());
    G2C_FUZZ_CHECK(std::string(e.what()).find('\n') == std::string::npos, e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  Json j;
  try {
    j = parse_body(body);
  } catch (const ApiError&) {
    return 0;
  }
  run([&] { (void)parse_keep_alive(j); });
  run([&] {
    auto r = parse_ollama_generate(j);
    G2C_FUZZ_CHECK(!r.model.empty(), body);
    check_sampling(r.sampling);
  });
  run([&] {
    auto r = parse_ollama_chat(j);
    G2C_FUZZ_CHECK(!r.model.empty(), body);
    check_sampling(r.sampling);
  });
  run([&] { (void)parse_ollama_embed(j); });
  run([&] { (void)parse_ollama_embeddings(j); });
  run([&] {
    auto r = parse_openai_completion(j);
    G2C_FUZZ_CHECK(!r.model.empty(), body);
    check_sampling(r.sampling);
  });
  run([&] {
    auto r = parse_openai_chat(j);
    G2C_FUZZ_CHECK(!r.model.empty(), body);
    check_sampling(r.sampling);
  });
  run([&] { (void)parse_openai_embeddings(j); });
  return 0;
}
