// What the SDKs depend on below their API calls (api-compat.md §1, §2.1, §8 items 1-3), read with plain
// fetch: the heartbeat, Ollama's default of streaming, content types, and CORS for the browser builds.
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';

import { BASE_URL, MODEL, TEST_TIMEOUT } from './lib.mjs';

const post = (path, body) => fetch(`${BASE_URL}${path}`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
});

describe('protocol', { timeout: TEST_TIMEOUT }, () => {
  test('HEAD / and GET /: 200 "Ollama is running"', async () => {
    const head = await fetch(`${BASE_URL}/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    const get = await fetch(`${BASE_URL}/`);
    assert.equal(get.status, 200);
    assert.equal(await get.text(), 'Ollama is running');
  });

  test('/api/chat and /api/generate stream NDJSON when stream is absent', async () => {
    for (const [path, body] of [
      ['/api/chat', { model: MODEL, messages: [{ role: 'user', content: 'Hi' }], options: { num_predict: 4 } }],
      ['/api/generate', { model: MODEL, prompt: 'Hi', options: { num_predict: 4 } }],
    ]) {
      const res = await post(path, body);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /^application\/x-ndjson/);
      const lines = (await res.text()).split('\n');
      assert.equal(lines.pop(), '', 'every line ends with \\n');
      const objs = lines.map((l) => JSON.parse(l));
      assert.ok(objs.length >= 2, `${path}: ${objs.length} lines`);
      assert.ok(objs.slice(0, -1).every((o) => o.done === false));
      const last = objs[objs.length - 1];
      assert.equal(last.done, true);
      assert.equal(last.done_reason, 'length');
      for (const k of ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_count',
        'eval_duration']) assert.ok(Number.isInteger(last[k]), `${path}: ${k}`);
    }
  });

  test('stream:false: one JSON object; errors are JSON', async () => {
    const res = await post('/api/chat', { model: MODEL, messages: [{ role: 'user', content: 'Hi' }], stream: false,
      options: { num_predict: 4 } });
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const j = await res.json();
    assert.equal(j.done, true);
    assert.equal(typeof j.message.content, 'string');
    const err = await post('/api/chat', { model: 'no-such-model', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(err.status, 404);
    assert.match(err.headers.get('content-type'), /^application\/json/);
    assert.deepEqual(await err.json(), { error: "model 'no-such-model' not found" });
  });

  test('CORS: a preflight from a local origin gets 204 and one Access-Control-Allow-Origin', async () => {
    const origin = 'http://localhost:3000';
    const pre = await fetch(`${BASE_URL}/v1/chat/completions`, { method: 'OPTIONS', headers: {
      Origin: origin, 'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'authorization,content-type,x-stainless-os' } });
    assert.equal(pre.status, 204);
    // fetch joins repeated headers with ", ": a browser refuses two values.
    assert.equal(pre.headers.get('access-control-allow-origin'), origin);
    const allowed = pre.headers.get('access-control-allow-headers').toLowerCase();
    for (const h of ['authorization', 'content-type', 'x-stainless-os']) assert.ok(allowed.includes(h), h);
    const get = await fetch(`${BASE_URL}/api/version`, { headers: { Origin: origin } });
    assert.equal(get.headers.get('access-control-allow-origin'), origin);
  });

  test('a burst of 64 new connections is served at once (no 1 s SYN retransmit from a short listen backlog)',
    async () => {
      const url = new URL(BASE_URL);
      const once = () => new Promise((resolve, reject) => {
        const t0 = performance.now();
        // agent: false: a new TCP connection for each request.
        http.get({ host: url.hostname, port: url.port, path: '/api/version', agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(performance.now() - t0));
        }).on('error', reject);
      });
      // Well under a second when every connection is accepted; a dropped SYN costs 1 s at least.
      for (let round = 0; round < 2; round++) {
        const worst = Math.max(...await Promise.all(Array.from({ length: 64 }, once)));
        assert.ok(worst < 900, `round ${round}: the slowest of 64 connections took ${worst.toFixed(0)} ms`);
      }
    });
});
