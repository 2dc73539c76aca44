#!/usr/bin/env bash
# Runs the GGUF reader fuzzer for $FUZZ_SECONDS (default 60) seeded with the ../shared GGUF files.
set -euo pipefail
BUILD="${1:-build/fuzz}"
cmake --build "$BUILD" --target gguf_fuzz
CORPUS="$BUILD/gguf_corpus"
mkdir -p "$CORPUS"
SHARED="$(cd "$(dirname "$0")/../.." && pwd)/shared"
find "$SHARED" -name '*.gguf' -size -3M -exec cp -n {} "$CORPUS/" \; 2>/dev/null || true
"$BUILD/fuzz/gguf_fuzz" "$CORPUS" -max_total_time="${FUZZ_SECONDS:-60}" -max_len=4194304 -rss_limit_mb=4096 -print_final_stats=1
