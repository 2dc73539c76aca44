#!/usr/bin/env bash
# Runs the libFuzzer targets: fuzz/run.sh BUILD [TARGET...] (default: all). Each runs $FUZZ_SECONDS
# (default 60) from its committed seed corpus (fuzz/corpus/<name>, copied to BUILD/corpus/<name>, where new
# inputs accumulate) with its dictionary and max_len. FUZZ_JOBS=2 runs two targets at a time. A crash,
# leak, timeout or property failure leaves crash-*/timeout-*/oom-* under BUILD/artifacts/<name>/ and
# makes the script fail. Build first: cmake --build BUILD --target fuzz_targets.
set -uo pipefail
BUILD="${1:-build/fuzz}"
shift || true
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ALL=(request tool_calls gbnf json_schema tokenizer jinja gguf)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
SECONDS_EACH="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-1}"

max_len() {
  case "$1" in
    gguf) echo 4096 ;;
    tokenizer | tool_calls) echo 512 ;;
    jinja | json_schema) echo 2048 ;;
    *) echo 1024 ;;
  esac
}
dict() {
  case "$1" in
    request | json_schema) echo "$ROOT/fuzz/dict/json.dict" ;;
    *) echo "$ROOT/fuzz/dict/$1.dict" ;;
  esac
}

run_one() {
  local t="$1" corpus="$BUILD/corpus/$1" art="$BUILD/artifacts/$1"
  mkdir -p "$corpus" "$art"
  cp -n "$ROOT/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null
  "$BUILD/fuzz/${t}_fuzz" "$corpus" -dict="$(dict "$t")" -max_len="$(max_len "$t")" \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$art/" ${FUZZ_FLAGS:-} >"$BUILD/artifacts/$t.log" 2>&1
  local rc=$?
  local stats
  stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$BUILD/artifacts/$t.log" | awk '{print $2}' | paste -sd' ')
  local cov
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$BUILD/artifacts/$t.log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "fuzz $t: ok (executions, exec/s: $stats; $cov)"
  else
    echo "fuzz $t: FAILED (rc $rc); $BUILD/artifacts/$t.log:"
    grep -E 'ERROR|PROPERTY|SUMMARY|Test unit written' "$BUILD/artifacts/$t.log" | head -8
  fi
  return $rc
}

fail=0
pids=()
for t in "${TARGETS[@]}"; do
  [ -x "$BUILD/fuzz/${t}_fuzz" ] || { echo "fuzz: $BUILD/fuzz/${t}_fuzz not built"; exit 1; }
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then
    wait "${pids[0]}" || fail=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
exit $fail
