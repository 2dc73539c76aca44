#!/usr/bin/env bash
# The main job of `make run`: what g2c does today on the default model.
#   1. complete a prompt with the default model, in-process (`g2c run`);
#   2. benchmark local backends side by side (`g2c bench-backends`): the same 260K model as GGUF and as a
#      llama2.c .bin (two containers, one set of weights), and the 656K Q8_0 GGUF; the table goes to stdout,
#      JSON / CSV / SVG to build/bench-backends.*. Served backends (ollama:, openai:) join once a server runs.
#      One thread: these models are 64-128 wide, so a second thread only adds synchronisation, and on a busy
#      machine a descheduled worker stalls every step (p99 jumps by 100x).
set -euo pipefail
G2C="$1"
MODEL="$2"
if [ ! -f "$MODEL" ]; then
  echo "make run: default model $MODEL not found (set G2C_MODELS_DIR)" >&2
  exit 1
fi
MODELS="$(dirname "$MODEL")"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${G2C_BENCH_OUT:-$ROOT/build/bench-backends}"

PROMPT="Once upon a time, there was a little dog"
echo "== g2c run: greedy completion with $(basename "$MODEL") (the prompt, then the model's text)"
printf '%s' "$PROMPT"
"$G2C" run --model "$MODEL" --temp 0 -n 64 "$PROMPT"
echo

echo "== g2c bench-backends: local backends, $(grep -cv '^\s*\(#\|$\)' "$ROOT/bench/prompts/stories.txt") prompts x 10 runs, 64 tokens"
BACKENDS=(--backend "local:$MODELS/stories260K.gguf" --backend "local:$MODELS/stories260K.bin")
if [ -f "$MODELS/TinyStories-656K-Q8_0.gguf" ]; then
  BACKENDS+=(--backend "local:$MODELS/TinyStories-656K-Q8_0.gguf")
fi
"$G2C" bench-backends "${BACKENDS[@]}" --prompts "$ROOT/bench/prompts/stories.txt" -n 64 --runs 10 --seed 42 -t 1 \
  --out "$OUT"
