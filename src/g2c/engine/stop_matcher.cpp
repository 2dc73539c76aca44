#include "g2c/engine/stop_matcher.hpp"

#include <algorithm>
#include <utility>

namespace g2c::engine {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (std::string& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

std::string StopMatcher::push(std::string_view text) {
  if (stopped_) return {};
  held_.append(text);
  if (stops_.empty()) return std::exchange(held_, {});

  // The earliest complete stop string wins; at equal positions the longer one (it covers the shorter).
  std::size_t stop_at = std::string::npos;
  for (const std::string& s : stops_) {
    const std::size_t pos = held_.find(s);
    if (pos == std::string::npos) continue;
    if (pos < stop_at || (pos == stop_at && s.size() > matched_.size())) {
      stop_at = pos;
      matched_ = s;
    }
  }
  if (stop_at != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, stop_at);
    held_.clear();
    return out;
  }

  // No complete stop: hold the longest suffix that is a proper prefix of some stop string. Any stop that
  // will later complete must start inside that suffix, because earlier starts were ruled out above. A
  // suffix that equals a prefix of valid UTF-8 starts at a character boundary, so the split is UTF-8 safe.
  std::size_t keep = 0;
  for (const std::string& s : stops_) {
    const std::size_t max_len = std::min(s.size() - 1, held_.size());
    for (std::size_t len = max_len; len > keep; --len) {
      if (std::string_view(held_).substr(held_.size() - len) == std::string_view(s).substr(0, len)) {
        keep = len;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  if (stopped_) return {};
  return std::exchange(held_, {});
}

}  // namespace g2c::engine
