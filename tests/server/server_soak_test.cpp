// A bounded soak: 16 loopback clients x 40 mixed requests (streamed, not streamed, aborted mid-stream,
// malformed) in rounds, all clients at once in each round. With a queue larger than the clients every
// status is the one its kind expects, every sequence is free at the end, and the resident memory after
// the last round is within 10% of the first round's. With a queue of 4 the extra requests get 503 and
// nothing else changes.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "serve_fixture.hpp"

namespace g2c {
namespace {

using nlohmann::json;

constexpr int kClients = 16;
constexpr int kRounds = 40;

std::int64_t rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

enum class Kind { kStream, kPlain, kAbort, kMalformed, kOpenAIStream };

struct Outcome {
  Kind kind;
  int status;
};

Outcome one_request(test::ServeFixture& srv, int client, int round) {
  const Kind kind = static_cast<Kind>((client + round) % 5);
  const json opts = {{"num_predict", 8 + (client % 4) * 4}, {"temperature", 0.7}, {"seed", client * 100 + round}};
  const std::string prompt = round % 2 ? "Once upon a time" : "The little dog";
  int status = 0;
  switch (kind) {
    case Kind::kStream: {
      const auto lines = srv.stream_lines(
          "/api/generate", {{"model", "stories260K"}, {"prompt", prompt}, {"options", opts}}, 0, &status);
      if (status == 200 && (lines.empty() || !json::parse(lines.back()).value("done", false))) status = -2;
      break;
    }
    case Kind::kPlain:
      status = srv.post("/api/chat", {{"model", "stories260K"},
                                      {"messages", json::array({{{"role", "user"}, {"content", prompt}}})},
                                      {"options", opts},
                                      {"stream", false}})
                   .status;
      break;
    case Kind::kAbort:
      srv.stream_lines("/api/generate",
                       {{"model", "stories260K"}, {"prompt", prompt}, {"options", {{"num_predict", 200}}}}, 2, &status);
      break;
    case Kind::kMalformed:
      status = srv.post_raw("/api/generate", R"({"model": "stories260K", "prompt": 42})").status;
      break;
    case Kind::kOpenAIStream: {
      const auto lines = srv.stream_lines(
          "/v1/completions", {{"model", "stories260K"}, {"prompt", prompt}, {"max_tokens", 12}, {"stream", true}}, 0,
          &status);
      if (status == 200 && (lines.empty() || lines.back() != "data: [DONE]")) status = -2;
      break;
    }
  }
  return {kind, status};
}

int expected_status(Kind k) { return k == Kind::kMalformed ? 400 : 200; }

struct SoakResult {
  std::map<int, int> unexpected;  // status -> count
  int busy = 0;                   // 503s
  std::int64_t rss_first = 0, rss_last = 0;
};

SoakResult soak(test::ServeFixture& srv) {
  SoakResult res;
  std::mutex mu;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        const Outcome o = one_request(srv, c, round);
        std::lock_guard lk(mu);
        if (o.status == 503) {
          ++res.busy;
        } else if (o.status != expected_status(o.kind)) {
          ++res.unexpected[o.status];
        }
      });
    }
    for (auto& t : clients) t.join();
    if (round == 0) res.rss_first = rss_kib();
  }
  res.rss_last = rss_kib();
  return res;
}

void expect_all_free(test::ServeFixture& srv) {
  const std::string m = "{model=\"stories260K:latest\"}";
  double active = -1;
  for (int i = 0; i < 100 && active != 0; ++i) {
    active = srv.metric("g2c_active_sequences" + m);
    if (active != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(active, 0);
  EXPECT_EQ(srv.metric("g2c_queue_depth" + m), 0);
  EXPECT_EQ(srv.metric("g2c_kv_cells_used" + m), 0);
}

TEST(ServerSoak, SixteenClientsMixedRequestsNoSurprisesNoGrowth) {
  test::ServeFixture srv({.models = {"models/stories260K.gguf"}, .parallel = 4, .ctx = 256, .queue = 64});
  const SoakResult r = soak(srv);
  EXPECT_TRUE(r.unexpected.empty()) << "first unexpected status " << r.unexpected.begin()->first << " x"
                                    << r.unexpected.begin()->second;
  EXPECT_EQ(r.busy, 0);
  expect_all_free(srv);
  std::printf("[ soak     ] %d requests, RSS after round 1: %lld KiB, after round %d: %lld KiB\n", kClients * kRounds,
              static_cast<long long>(r.rss_first), kRounds, static_cast<long long>(r.rss_last));
  EXPECT_LE(r.rss_last, r.rss_first + r.rss_first / 10);
}

TEST(ServerSoak, ASmallQueueGives503sAndNothingElse) {
  test::ServeFixture srv({.models = {"models/stories260K.gguf"}, .parallel = 4, .ctx = 256, .queue = 4});
  const SoakResult r = soak(srv);
  EXPECT_TRUE(r.unexpected.empty()) << "first unexpected status " << r.unexpected.begin()->first << " x"
                                    << r.unexpected.begin()->second;
  EXPECT_GT(r.busy, 0);
  std::printf("[ soak     ] queue 4: %d of %d requests answered 503\n", r.busy, kClients * kRounds);
  expect_all_free(srv);
}

}  // namespace
}  // namespace g2c
