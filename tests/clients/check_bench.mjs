// check_bench.mjs PREFIX.json N_REQUESTS: the report of run.sh's `g2c bench-backends` has three results
// (local, ollama, openai), each with N_REQUESTS answered requests; at temperature 0 the served rows give
// the local row's completions, token for token (the same engine behind the server).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const [path, nStr] = process.argv.slice(2);
const { results } = JSON.parse(readFileSync(path, 'utf8'));
const specs = results.map((r) => r.metadata?.spec);
assert.equal(results.length, 3, `three results, got ${results.length}: ${specs}`);
assert.deepEqual(specs.map((s) => s.split(':')[0]), ['local', 'ollama', 'openai']);
const n = Number(nStr);
for (const r of results) {
  assert.equal(r.n, n, `${r.metadata.spec}: ${n} requests, got ${r.n}`);
  assert.equal(r.results.length, n);
  for (const q of r.results) {
    assert.equal(typeof q.completion, 'string');
    assert.ok(q.completion.length > 0, `${r.metadata.spec}: an empty completion for ${JSON.stringify(q.prompt)}`);
  }
}
const [local, ...served] = results;
for (const r of served) {
  for (let i = 0; i < n; i++) {
    assert.equal(r.results[i].prompt, local.results[i].prompt);
    assert.equal(r.results[i].completion, local.results[i].completion,
      `${r.metadata.spec} and local differ on ${JSON.stringify(local.results[i].prompt)} at temperature 0`);
    if (r.results[i].completion_tokens != null && local.results[i].completion_tokens != null) {
      assert.equal(r.results[i].completion_tokens, local.results[i].completion_tokens);
    }
  }
}
console.log(`clients: bench-backends: ${specs.join(', ')}: ${n} requests each, the same greedy completions`);
