#pragma once
// Goldens that several test files check against, written once.
#include <cstdint>
#include <string>
#include <vector>

namespace g2c::test {

// ../shared/models/README.md, "Reference outputs": stories260K's greedy ids after BOS = 1 (65 ids, an
// independent float64 forward pass) and the text they decode to (also llama2.c's doc/stories260K.md),
// as a completion after BOS reads it (SPM's leading space of the first word dropped).
inline const std::vector<std::int32_t> kStories260KGreedyIds = {
    403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408,
    419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426,
    338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310, 439};
inline const std::string kStories260KGreedyText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
    "she saw a big, red ball. She wanted to play with it, but it was too high.\nLily'";

}  // namespace g2c::test
