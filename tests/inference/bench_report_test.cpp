#include "g2c/inference/bench_report.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "common/test_util.hpp"
#include "fake_backend.hpp"
#include "g2c/core/mmap.hpp"

namespace g2c::inference {
namespace {

using testing::FakeBackend;
using testing::FakeClock;

std::vector<BenchmarkResult> two_results() {
  FakeClock clock;
  BenchmarkOptions o;
  o.clock_ns = clock.fn();
  o.warmup = false;
  FakeBackend fast("local");
  fast.clock = &clock;
  fast.latencies_ms = {10, 20, 30, 40};
  FakeBackend slow("ollama");
  slow.clock = &clock;
  slow.latencies_ms = {100, 200, 300, 400};
  slow.metadata = {{"server_total_ms", 90.0}};
  std::vector<std::string> prompts = {"a", "b", "c", "d"};
  return {benchmark(fast, prompts, o), benchmark(slow, prompts, o)};
}

TEST(BenchReport, TableHasOneRowPerBackendWithItsPercentiles) {
  std::string t = format_benchmark_table(two_results());
  std::istringstream in(t);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 4u);  // header, two rows, the footnote
  EXPECT_NE(lines[0].find("p99 ms"), std::string::npos);
  EXPECT_EQ(lines[1].rfind("local:local-model", 0), 0u);
  // local: 10,20,30,40 -> p50 = 20 (rank 2), p90 = p99 = 40; 4 tokens each over 100 ms = 160 tok/s.
  EXPECT_NE(lines[1].find("20.0"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("160.0"), std::string::npos) << lines[1];
  // ollama: server 90 ms on every request, so wall - server p50 = 200 - 90.
  EXPECT_NE(lines[2].find("110.00"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find("nearest-rank"), std::string::npos);
}

TEST(BenchReport, CsvJsonSvgAndFiles) {
  std::vector<BenchmarkResult> rs = two_results();
  std::string csv = benchmark_csv(rs);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 9);  // header + 8 requests
  EXPECT_NE(csv.find("ollama,ollama-model,1,200.000,20.000,4,,,90.000,110.000\n"), std::string::npos) << csv;

  nlohmann::json j = benchmark_json(rs);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][1]["latency_ms_p50"], 200.0);

  std::string svg = latency_svg(rs);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  std::size_t circles = 0;
  for (std::size_t p = svg.find("<circle"); p != std::string::npos; p = svg.find("<circle", p + 1)) ++circles;
  EXPECT_EQ(circles, 8u);

  test::TempDir dir;
  ReportPaths p = write_benchmark_report(rs, dir.file("report"));
  EXPECT_EQ(read_file(p.csv), csv);
  EXPECT_EQ(nlohmann::json::parse(read_file(p.json)), j);
  EXPECT_EQ(read_file(p.svg), svg);
}

}  // namespace
}  // namespace g2c::inference
