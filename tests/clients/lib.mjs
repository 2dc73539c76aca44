// What the client tests share: the server's address (set by run.sh), the models it serves, and the
// /metrics helpers that tell whether a generation's sequence was freed.
import assert from 'node:assert/strict';

export const BASE_URL = process.env.G2C_BASE_URL;
if (!BASE_URL) {
  throw new Error('G2C_BASE_URL is not set: run these tests through tests/clients/run.sh G2C_BINARY');
}
// The --ctx run.sh gave `g2c serve`.
export const SERVE_CTX = Number(process.env.G2C_SERVE_CTX ?? 512);

export const MODEL = 'stories260K';
export const MODEL_TAG = 'stories260K:latest';
export const OTHER_MODEL_TAG = 'TinyStories-656K-Q8_0:latest';
// stories260K with Qwen 2.5's chat template (run.sh writes it): the model of the tool round trips.
export const TOOL_MODEL = 'qwen-tools';
export const TOOLS = [{
  type: 'function',
  function: {
    name: 'get_weather', description: 'Get the weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];
export const N_EMBD = 64; // stories260K's llama.embedding_length
export const PROMPT = 'Once upon a time';
export const TEST_TIMEOUT = 30_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every `name{model="..."} value` sample of /metrics, as {name: {model: value}}.
export async function metrics() {
  const res = await fetch(`${BASE_URL}/metrics`);
  assert.equal(res.status, 200, '/metrics answers 200');
  const text = await res.text();
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{model="([^"]*)"\} (\S+)$/.exec(line);
    if (!m) continue;
    (out[m[1]] ??= {})[m[2]] = Number(m[3]);
  }
  return out;
}

// Polls /metrics until g2c_active_sequences for `model` is 0; fails after `within_ms`.
// Returns the last metrics read.
export async function waitForIdle(model = MODEL_TAG, within_ms = 2000) {
  const t0 = Date.now();
  let last;
  for (;;) {
    last = await metrics();
    const active = last.g2c_active_sequences?.[model];
    assert.notEqual(active, undefined, `/metrics has g2c_active_sequences{model="${model}"}`);
    if (active === 0) return last;
    if (Date.now() - t0 > within_ms) {
      assert.fail(`g2c_active_sequences{model="${model}"} is still ${active} ${within_ms} ms after the abort`);
    }
    await sleep(25);
  }
}

// The six Ollama metrics of a final chunk: present, integers, nanoseconds.
export function assertOllamaMetrics(r, wall_ns) {
  for (const k of ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_count',
    'eval_duration']) {
    assert.ok(Number.isInteger(r[k]), `${k} is an integer (got ${JSON.stringify(r[k])})`);
    assert.ok(r[k] >= 0, `${k} >= 0 (got ${r[k]})`);
  }
  assert.ok(r.prompt_eval_count > 0, 'prompt_eval_count > 0');
  assert.ok(r.eval_count > 0, 'eval_count > 0');
  // Nanoseconds, not ms or µs: a generated token takes well over 1 µs, and the server's total is
  // inside the client's wall time.
  assert.ok(r.eval_duration / r.eval_count > 1000, `eval_duration ${r.eval_duration} is in ns`);
  assert.ok(r.prompt_eval_duration / r.prompt_eval_count > 1000,
    `prompt_eval_duration ${r.prompt_eval_duration} is in ns`);
  assert.ok(r.total_duration >= r.eval_duration + r.prompt_eval_duration,
    `total_duration ${r.total_duration} >= prompt_eval_duration + eval_duration`);
  if (wall_ns !== undefined) {
    assert.ok(r.total_duration <= wall_ns, `total_duration ${r.total_duration} ns <= the client's wall ${wall_ns} ns`);
  }
}

export function norm(v) {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

// A stopwatch in ns (the client's wall time around a request).
export function stopwatch() {
  const t0 = performance.now();
  return () => Math.ceil((performance.now() - t0) * 1e6);
}

// Token ids of `content` by the server's /tokenize (with BOS when add_special).
export async function tokenize(model, content, add_special = true) {
  const res = await fetch(`${BASE_URL}/tokenize`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, content, add_special }),
  });
  assert.equal(res.status, 200, '/tokenize answers 200');
  const j = await res.json();
  assert.ok(Array.isArray(j.tokens), '/tokenize returns tokens');
  return j.tokens;
}
