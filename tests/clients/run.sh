#!/usr/bin/env bash
# tests/clients/run.sh G2C_BINARY: the official `ollama` and `openai` npm clients, then g2c's own Ollama and
# OpenAI backends (`g2c bench-backends`), against one `g2c serve` on a temporary copy of the test models.
#   1. copies stories260K and TinyStories-656K into a temporary models dir (copy/delete run there), and
#      writes qwen-tools.gguf: stories260K with Qwen 2.5's chat template (`g2c template --write-gguf`),
#      the model of the tool round trips;
#   2. starts `g2c serve --port 0` and reads the port from its one stdout line;
#   3. node --test (ollama.test.mjs, openai.test.mjs, protocol.test.mjs) with G2C_BASE_URL set;
#   4. g2c bench-backends: one local row and two served rows (ollama:, openai:), three results asserted;
#   5. SIGTERM: the server must exit 0 within a few seconds.
# A failed step 3 or 4 does not skip the later steps; the script exits non-zero at the end.
# Needs node_modules: `npm ci --prefix tests/clients` (the Makefile's clients-deps target).
set -euo pipefail

die() { echo "clients: FAIL: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 G2C_BINARY"
G2C=$(readlink -f "$1")
[ -x "$G2C" ] || die "no g2c binary at $1 (build the g2c target first)"
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${G2C_SHARED_DIR:-$HERE/../../../shared}
CTX=1024  # the tool round trips (Qwen 2.5 template, tools, a call and its result) need ~700 of these tiny-vocabulary tokens
START_TIMEOUT_S=20
STOP_TIMEOUT_S=5

command -v node >/dev/null || die "node is not installed (Debian 12: apt-get install nodejs npm)"
for pkg in ollama openai; do
  [ -f "$HERE/node_modules/$pkg/package.json" ] ||
    die "tests/clients/node_modules/$pkg is missing: run \`npm ci --prefix tests/clients\` (or \`make clients-deps\`)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/g2c-clients.XXXXXX")
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
server_log() {
  echo "--- g2c serve stderr (last 40 lines) ---" >&2
  tail -n 40 "$TMP/serve.err" >&2 || true
}
fail() { echo "clients: FAIL: $*" >&2; server_log; exit 1; }
# A failed step that does not stop the later ones (they still run against the same server).
FAILED=()
failed_step() { echo "clients: FAIL: $*" >&2; FAILED+=("$*"); }

# 1. The models, copied: delete/copy must not touch the shared folder.
mkdir -p "$TMP/models"
for f in stories260K.gguf TinyStories-656K-Q8_0.gguf; do
  [ -f "$SHARED/models/$f" ] || die "no $SHARED/models/$f (set G2C_SHARED_DIR)"
  cp "$SHARED/models/$f" "$TMP/models/"
done
"$G2C" template --template-file "$HERE/../tokenizer/data/templates/Qwen-Qwen2.5-7B-Instruct.jinja" \
  --write-gguf "$SHARED/models/stories260K.gguf" -o "$TMP/models/qwen-tools.gguf" ||
  die "g2c template --write-gguf failed"


# 2. The server, on a port the kernel picks; its first stdout line says which.
"$G2C" serve --port 0 --models-dir "$TMP/models" --parallel 4 --ctx "$CTX" >"$TMP/serve.out" 2>"$TMP/serve.err" &
SERVER_PID=$!
deadline=$((SECONDS + START_TIMEOUT_S))
line=""
while :; do
  if [ -s "$TMP/serve.out" ] && IFS= read -r line <"$TMP/serve.out" && [ -n "$line" ]; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || fail "g2c serve exited before printing its address"
  [ $SECONDS -lt $deadline ] || fail "g2c serve printed no address within ${START_TIMEOUT_S} s"
  sleep 0.05
done
[[ "$line" =~ ^g2c\ serve:\ listening\ on\ (http://127\.0\.0\.1:([0-9]+))$ ]] ||
  fail "unexpected first line from g2c serve: '$line'"
URL=${BASH_REMATCH[1]}
[ "${BASH_REMATCH[2]}" != 0 ] || fail "g2c serve reported port 0"
echo "clients: g2c serve (pid $SERVER_PID) at $URL"

# 3. The npm clients. One test file at a time: the abort tests read per-model gauges.
t0=$SECONDS
(cd "$HERE" && G2C_BASE_URL="$URL" G2C_SERVE_CTX="$CTX" \
  node --test --test-concurrency=1 --test-reporter=spec ollama.test.mjs openai.test.mjs protocol.test.mjs) &&
  echo "clients: node --test passed in $((SECONDS - t0)) s" ||
  failed_step "node --test failed (see above), after $((SECONDS - t0)) s"

# 4. g2c's own backends against the same server, beside a local row.
t0=$SECONDS
printf '%s\n' 'Once upon a time' 'The little dog' >"$TMP/prompts.txt"
rc=0
"$G2C" bench-backends --prompts "$TMP/prompts.txt" -n 8 --runs 1 --temp 0 --ctx "$CTX" --timeout 30 \
  --out "$TMP/bench" \
  --backend "local:$TMP/models/stories260K.gguf" \
  --backend "ollama:stories260K@$URL" \
  --backend "openai:stories260K@$URL/v1" >"$TMP/bench.out" 2>"$TMP/bench.err" || rc=$?
cat "$TMP/bench.out"
if [ $rc -ne 0 ]; then
  cat "$TMP/bench.err" >&2
  failed_step "g2c bench-backends exited $rc"
elif node "$HERE/check_bench.mjs" "$TMP/bench.json" 2; then
  echo "clients: bench-backends passed in $((SECONDS - t0)) s"
else
  failed_step "the bench-backends report is not three rows with the same greedy completions"
fi

# 5. SIGTERM: exit 0, promptly, and still only the one stdout line.
kill -TERM "$SERVER_PID"
deadline=$((SECONDS + STOP_TIMEOUT_S))
while kill -0 "$SERVER_PID" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || fail "g2c serve still running ${STOP_TIMEOUT_S} s after SIGTERM"
  sleep 0.05
done
set +e
wait "$SERVER_PID"
rc=$?
set -e
SERVER_PID=""
[ $rc -eq 0 ] || fail "g2c serve exited $rc after SIGTERM (expected 0)"
n_lines=$(wc -l <"$TMP/serve.out")
[ "$n_lines" -eq 1 ] || fail "g2c serve printed $n_lines stdout lines (expected exactly 1): $(cat "$TMP/serve.out")"
echo "clients: g2c serve exited 0 on SIGTERM"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "clients: ${#FAILED[@]} step(s) failed:" >&2
  printf '  %s\n' "${FAILED[@]}" >&2
  server_log
  exit 1
fi
echo "clients: all passed"
