#!/usr/bin/env bash
# The main job of `make run`: what g2c does today on the default model.
set -euo pipefail
G2C="$1"
MODEL="$2"
if [ ! -f "$MODEL" ]; then
  echo "make run: default model $MODEL not found (set G2C_MODELS_DIR)" >&2
  exit 1
fi
"$G2C" info "$MODEL"
