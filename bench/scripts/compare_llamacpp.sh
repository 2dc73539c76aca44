#!/usr/bin/env bash
# g2c bench against llama-bench on the same file and threads, alternating g2c / llama.cpp for ROUNDS
# rounds so the machine's drift hits both alike; prints each round's tok/s and the median ratio.
#   LLAMA_BENCH=/path/to/llama-bench bench/scripts/compare_llamacpp.sh MODEL.gguf [THREADS] [ROUNDS]
# llama.cpp is not part of g2c: build it yourself (commit c392e50, GGML_NATIVE=ON) and point
# LLAMA_BENCH at its llama-bench. Both sides use llama-bench's definitions and an F16 KV cache.
set -euo pipefail
MODEL="$1"; THREADS="${2:-2}"; ROUNDS="${3:-4}"
G2C="${G2C:-build/release/apps/g2c/g2c}"
: "${LLAMA_BENCH:?set LLAMA_BENCH to a llama-bench binary}"
tmp=$(mktemp -d)
for r in $(seq 1 "$ROUNDS"); do
  "$G2C" bench -m "$MODEL" -t "$THREADS" -p 512 -n 128 -r 1 -o json 2>/dev/null > "$tmp/g2c.$r.json"
  "$LLAMA_BENCH" -m "$MODEL" -t "$THREADS" -p 512 -n 128 -r 1 -o json 2>/dev/null > "$tmp/llama.$r.json"
done
python3 - "$tmp" "$ROUNDS" "$MODEL" "$THREADS" <<'PY'
import json, statistics, sys, os
d, rounds, model, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def ts(path):
    out = {}
    for r in json.load(open(path)):
        out["pp%d" % r["n_prompt"] if r["n_prompt"] else "tg%d" % r["n_gen"]] = r["avg_ts"]
    return out
print(f"model {os.path.basename(model)}, {threads} threads, {rounds} alternating rounds")
for test in ("pp512", "tg128"):
    g = [ts(os.path.join(d, f"g2c.{i}.json"))[test] for i in range(1, rounds + 1)]
    l = [ts(os.path.join(d, f"llama.{i}.json"))[test] for i in range(1, rounds + 1)]
    ratios = [a / b for a, b in zip(g, l)]
    print(f"{test}: g2c {' '.join(f'{v:.1f}' for v in g)} | llama.cpp {' '.join(f'{v:.1f}' for v in l)} | "
          f"median g2c/llama.cpp {statistics.median(ratios):.2f}")
PY
rm -rf "$tmp"
