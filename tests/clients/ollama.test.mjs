// The official `ollama` npm client (ollama-js, pinned in package.json) against `g2c serve`.
// api-compat.md §2, §3 and §8 are the contract.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Ollama } from 'ollama';

import {
  BASE_URL, MODEL, MODEL_TAG, N_EMBD, OTHER_MODEL_TAG, PROMPT, SERVE_CTX, TEST_TIMEOUT, TOOLS, TOOL_MODEL,
  assertOllamaMetrics, metrics, norm, stopwatch, tokenize, waitForIdle,
} from './lib.mjs';

const ollama = new Ollama({ host: BASE_URL });
const greedy = (n) => ({ temperature: 0, num_predict: n });

// Runs `fn`, which must throw ollama-js's ResponseError with `status` and a message matching `re`
// (0.6.4 does not export the class: it is told by its name).
async function rejectsWith(fn, status, re) {
  await assert.rejects(fn, (e) => {
    assert.equal(e?.name, 'ResponseError', `a ResponseError, got ${e?.name}: ${e?.message}`);
    assert.equal(e.status_code, status, `status ${status} (message: ${e.message})`);
    assert.match(e.message, re);
    assert.equal(e.error, e.message);
    return true;
  });
}

// Collects a stream: the chunks, the concatenated text (`pick` reads a chunk's piece) and the last chunk.
async function collect(stream, pick) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return { chunks, text: chunks.map(pick).join(''), last: chunks[chunks.length - 1] };
}

describe('ollama-js', { timeout: TEST_TIMEOUT }, () => {
  test('version is a semver >= 0.6.4', async () => {
    const { version } = await ollama.version();
    const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
    assert.ok(m, `semver, got ${JSON.stringify(version)}`);
    const [maj, min, pat] = m.slice(1).map(Number);
    assert.ok(maj > 0 || min > 6 || (min === 6 && pat >= 4), `>= 0.6.4, got ${version}`);
  });

  test('list: both models, named NAME:latest, with the tags fields', async () => {
    const { models } = await ollama.list();
    assert.ok(Array.isArray(models));
    const names = models.map((m) => m.name);
    assert.ok(names.includes(MODEL_TAG), `${MODEL_TAG} in ${names}`);
    assert.ok(names.includes(OTHER_MODEL_TAG), `${OTHER_MODEL_TAG} in ${names}`);
    const m = models.find((x) => x.name === MODEL_TAG);
    assert.equal(m.model, MODEL_TAG);
    assert.match(m.digest, /^[0-9a-f]{64}$/);
    assert.equal(m.size, 1185376);
    assert.ok(!Number.isNaN(Date.parse(m.modified_at)), `modified_at ${m.modified_at} is a date`);
    assert.equal(m.details.format, 'gguf');
    assert.equal(m.details.family, 'llama');
  });

  test('show: model_info with the architecture keys, capabilities array', async () => {
    const r = await ollama.show({ model: MODEL });
    assert.ok(Array.isArray(r.capabilities), `capabilities is an array: ${JSON.stringify(r.capabilities)}`);
    assert.ok(r.capabilities.includes('completion'));
    const info = r.model_info;
    assert.equal(info['general.architecture'], 'llama');
    assert.equal(info[`${info['general.architecture']}.embedding_length`], N_EMBD);
    assert.equal(info['llama.context_length'], 2048);
    assert.ok(Number.isInteger(info['general.parameter_count']) && info['general.parameter_count'] > 0);
    assert.equal(r.details.format, 'gguf');
    assert.equal(typeof r.template, 'string');
    assert.equal(typeof r.parameters, 'string');
  });

  test('generate, not streamed: text, done, the six metrics in ns, eval_count tokens', async () => {
    const wall = stopwatch();
    const r = await ollama.generate({ model: MODEL, prompt: PROMPT, stream: false, options: greedy(16) });
    const wall_ns = wall();
    assert.equal(r.model, MODEL);
    assert.equal(r.done, true);
    assert.equal(typeof r.response, 'string');
    assert.ok(r.response.length > 0);
    assertOllamaMetrics(r, wall_ns);
    // Greedy stories260K does not end its story within 16 tokens.
    assert.equal(r.done_reason, 'length');
    assert.equal(r.eval_count, 16);
    assert.equal(r.prompt_eval_count, (await tokenize(MODEL, PROMPT)).length);
    assert.ok(Array.isArray(r.context), 'context: the token ids of prompt and answer');
    assert.equal(r.context.length, r.prompt_eval_count + r.eval_count);
  });

  test('generate with logprobs: one entry per generated token', async () => {
    const r = await ollama.generate({ model: MODEL, prompt: PROMPT, stream: false, logprobs: true,
      options: greedy(12) });
    assert.ok(Array.isArray(r.logprobs), 'logprobs is an array');
    assert.equal(r.logprobs.length, r.eval_count);
    assert.equal(r.logprobs.map((l) => l.token).join(''), r.response);
    for (const l of r.logprobs) assert.ok(l.logprob <= 0);
  });

  test('generate, streamed: ends with done:true and the metrics; the same text as not streamed', async () => {
    const once = await ollama.generate({ model: MODEL, prompt: PROMPT, stream: false, options: greedy(24) });
    const wall = stopwatch();
    const s = await collect(
      await ollama.generate({ model: MODEL, prompt: PROMPT, stream: true, options: greedy(24) }), (c) => c.response);
    const wall_ns = wall();
    assert.ok(s.chunks.length >= 2, `${s.chunks.length} chunks`);
    for (const c of s.chunks.slice(0, -1)) {
      assert.equal(c.done, false);
      assert.equal(c.model, MODEL);
      assert.ok(!Number.isNaN(Date.parse(c.created_at)));
    }
    assert.equal(s.last.done, true);
    assert.equal(s.last.done_reason, 'length');
    assertOllamaMetrics(s.last, wall_ns);
    assert.equal(s.last.eval_count, 24);
    // Every token with text is one chunk.
    assert.ok(s.chunks.length - 1 <= s.last.eval_count);
    assert.equal(s.text, once.response);
  });

  test('generate, streamed with logprobs: the chunks carry eval_count tokens', async () => {
    const s = await collect(
      await ollama.generate({ model: MODEL, prompt: PROMPT, stream: true, logprobs: true, options: greedy(20) }),
      (c) => c.response);
    const tokens = s.chunks.flatMap((c) => c.logprobs ?? []);
    assert.equal(tokens.length, s.last.eval_count);
    assert.equal(tokens.map((t) => t.token).join(''), s.text);
  });

  test('greedy generate is deterministic', async () => {
    const a = await ollama.generate({ model: MODEL, prompt: 'The cat', stream: false, options: greedy(32) });
    const b = await ollama.generate({ model: MODEL, prompt: 'The cat', stream: false, options: greedy(32) });
    assert.equal(a.response, b.response);
    assert.ok(a.response.length > 0);
  });

  test('six concurrent streams on four sequences: all finish, with the greedy text of one alone', async () => {
    const alone = await ollama.generate({ model: MODEL, prompt: PROMPT, stream: false, options: greedy(32) });
    // One client per stream: ollama.abort() elsewhere must not touch these.
    const runs = Array.from({ length: 6 }, async () => {
      const client = new Ollama({ host: BASE_URL });
      return collect(await client.generate({ model: MODEL, prompt: PROMPT, stream: true, options: greedy(32) }),
        (c) => c.response);
    });
    for (const s of await Promise.all(runs)) {
      assert.equal(s.last.done, true);
      assert.equal(s.last.eval_count, 32);
      assert.equal(s.text, alone.response);
    }
    await waitForIdle(MODEL_TAG, 2000);
    const m = await metrics();
    assert.equal(m.g2c_queue_depth?.[MODEL_TAG], 0, 'g2c_queue_depth is 0 once all are done');
  });

  test('ps after a generate: the model is loaded with the served context length', async () => {
    await ollama.generate({ model: MODEL, prompt: PROMPT, stream: false, options: greedy(4) });
    const { models } = await ollama.ps();
    assert.ok(Array.isArray(models));
    const m = models.find((x) => x.name === MODEL_TAG);
    assert.ok(m, `${MODEL_TAG} in ps: ${JSON.stringify(models.map((x) => x.name))}`);
    assert.equal(m.model, MODEL_TAG);
    assert.equal(m.context_length, SERVE_CTX);
    assert.ok(Number.isInteger(m.size) && m.size > 0);
    assert.ok(!Number.isNaN(Date.parse(m.expires_at)), `expires_at ${m.expires_at} is a date`);
  });

  test('chat, not streamed and streamed: same greedy reply, stream ends done:true with metrics', async () => {
    const messages = [{ role: 'user', content: 'Tell me a story about a dog.' }];
    const wall = stopwatch();
    const r = await ollama.chat({ model: MODEL, messages, stream: false, options: greedy(16) });
    const wall_ns = wall();
    assert.equal(r.done, true);
    assert.equal(r.message.role, 'assistant');
    assert.equal(typeof r.message.content, 'string');
    assert.ok(['stop', 'length'].includes(r.done_reason), `done_reason ${r.done_reason}`);
    assertOllamaMetrics(r, wall_ns);
    assert.ok(r.eval_count <= 16);

    const s = await collect(await ollama.chat({ model: MODEL, messages, stream: true, options: greedy(16) }),
      (c) => c.message.content);
    for (const c of s.chunks) assert.equal(c.message.role, 'assistant');
    assert.equal(s.last.done, true);
    assert.equal(s.last.done_reason, r.done_reason);
    assertOllamaMetrics(s.last);
    assert.equal(s.last.eval_count, r.eval_count);
    assert.equal(s.last.prompt_eval_count, r.prompt_eval_count);
    assert.equal(s.text, r.message.content);
  });

  test('embed: a string and an array give unit-length vectors of n_embd', async () => {
    const one = await ollama.embed({ model: MODEL, input: 'a little dog' });
    assert.equal(one.model, MODEL);
    assert.equal(one.embeddings.length, 1);
    assert.equal(one.embeddings[0].length, N_EMBD);
    assert.ok(Math.abs(norm(one.embeddings[0]) - 1) < 1e-4, `norm ${norm(one.embeddings[0])}`);
    assert.ok(Number.isInteger(one.prompt_eval_count) && one.prompt_eval_count > 0);
    assert.ok(Number.isInteger(one.total_duration));

    const two = await ollama.embed({ model: MODEL, input: ['a little dog', 'the big red ball'] });
    assert.equal(two.embeddings.length, 2);
    for (const v of two.embeddings) {
      assert.equal(v.length, N_EMBD);
      assert.ok(Math.abs(norm(v) - 1) < 1e-4, `norm ${norm(v)}`);
    }
    // The same text gives the same vector alone or in a batch; different texts differ.
    for (let i = 0; i < N_EMBD; i++) assert.ok(Math.abs(two.embeddings[0][i] - one.embeddings[0][i]) < 1e-5);
    assert.notDeepEqual(two.embeddings[0], two.embeddings[1]);
  });

  test('embeddings (legacy): one vector of n_embd', async () => {
    const r = await ollama.embeddings({ model: MODEL, prompt: 'a little dog' });
    assert.ok(Array.isArray(r.embedding));
    assert.equal(r.embedding.length, N_EMBD);
    assert.ok(r.embedding.every(Number.isFinite));
    assert.ok(norm(r.embedding) > 0);
  });

  test('pull an available model, not streamed and streamed', async () => {
    assert.deepEqual(await ollama.pull({ model: MODEL, stream: false }), { status: 'success' });
    const s = await collect(await ollama.pull({ model: MODEL_TAG, stream: true }), (c) => '');
    assert.equal(s.last.status, 'success');
  });

  test('pull a model the server does not have: ResponseError 404', async () => {
    await rejectsWith(() => ollama.pull({ model: 'no-such-model', stream: false }), 404, /no-such-model/);
    await rejectsWith(() => ollama.pull({ model: 'no-such-model', stream: true }), 404, /no-such-model/);
  });

  test('copy, use the copy, then delete it (in the temporary models dir)', async () => {
    const copy = 'g2c-clients-copy';
    assert.deepEqual(await ollama.copy({ source: MODEL, destination: copy }), { status: 'success' });
    let names = (await ollama.list()).models.map((m) => m.name);
    assert.ok(names.includes(`${copy}:latest`), `the copy is listed: ${names}`);
    assert.ok(names.includes(MODEL_TAG), 'the source is still listed');
    const a = await ollama.generate({ model: copy, prompt: PROMPT, stream: false, options: greedy(8) });
    const b = await ollama.generate({ model: MODEL, prompt: PROMPT, stream: false, options: greedy(8) });
    assert.equal(a.response, b.response, 'the copy is the same model');

    assert.deepEqual(await ollama.delete({ model: copy }), { status: 'success' });
    names = (await ollama.list()).models.map((m) => m.name);
    assert.ok(!names.includes(`${copy}:latest`), `the copy is gone: ${names}`);
    assert.ok(names.includes(MODEL_TAG), 'the source is still listed');
    await rejectsWith(() => ollama.delete({ model: copy }), 404, new RegExp(copy));
    await rejectsWith(() => ollama.copy({ source: 'no-such-model', destination: 'x2' }), 404, /no-such-model/);
  });

  test('unknown model: ResponseError 404 with the message, on generate, chat, show, embed', async () => {
    const re = /model 'no-such-model' not found/;
    await rejectsWith(() => ollama.generate({ model: 'no-such-model', prompt: 'hi', stream: false }), 404, re);
    await rejectsWith(() => ollama.generate({ model: 'no-such-model', prompt: 'hi', stream: true }), 404, re);
    await rejectsWith(() => ollama.chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
      404, re);
    await rejectsWith(() => ollama.show({ model: 'no-such-model' }), 404, re);
    await rejectsWith(() => ollama.embed({ model: 'no-such-model', input: 'hi' }), 404, re);
  });

  test('bad request: ResponseError 400 with the message', async () => {
    await rejectsWith(() => ollama.generate({ model: '', prompt: 'hi', stream: false }), 400, /model is required/);
    await rejectsWith(
      () => ollama.generate({ model: MODEL, prompt: 'hi', stream: false, options: { num_predict: 'many' } }), 400,
      /num_predict/);
    await rejectsWith(() => ollama.embed({ model: MODEL, input: 42 }), 400, /input/);
  });

  test('ollama.abort() mid-stream frees the sequence', async () => {
    const before = await metrics();
    const canceled0 = before.g2c_requests_canceled_total?.[MODEL_TAG] ?? 0;
    // As long a generation as the context allows: it is still running when the client goes.
    const stream = await ollama.generate({ model: MODEL, prompt: PROMPT, stream: true,
      options: { temperature: 0, num_predict: 100000 } });
    let n = 0;
    await assert.rejects(async () => {
      for await (const c of stream) {
        assert.equal(c.done, false, 'the generation was still running when aborted');
        if (++n === 2) ollama.abort();
      }
    }, (e) => e.name === 'AbortError');
    const after = await waitForIdle(MODEL_TAG, 2000);
    assert.ok((after.g2c_requests_canceled_total?.[MODEL_TAG] ?? 0) > canceled0,
      'g2c_requests_canceled_total grew: the server canceled the generation');
  });

  test('breaking out of the for-await mid-stream frees the sequence', async () => {
    const stream = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Tell me a long story.' }],
      stream: true, options: { temperature: 0, num_predict: 100000 } });
    let n = 0;
    for await (const c of stream) {
      assert.equal(c.done, false);
      if (++n === 2) break;
    }
    stream.abort();
    await waitForIdle(MODEL_TAG, 2000);
  });

  test('structured outputs: format with a JSON Schema (generate and chat) and format "json"', async () => {
    const schema = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 10 }, legs: { type: 'integer' }, pet: { type: 'boolean' } },
  required: ['name', 'legs', 'pet'],
  additionalProperties: false,
};
    const g = await ollama.generate({
      model: MODEL, prompt: PROMPT, format: schema, stream: false, options: { seed: 11, num_predict: 300 },
    });
    assert.equal(g.done_reason, 'stop');
    const doc = JSON.parse(g.response);
    assert.deepEqual(Object.keys(doc).sort(), ['legs', 'name', 'pet']);
    assert.equal(typeof doc.name, 'string');
    assert.ok(Number.isInteger(doc.legs));
    assert.equal(typeof doc.pet, 'boolean');
    const c = await ollama.chat({
      model: MODEL, messages: [{ role: 'user', content: 'Describe a cat' }], format: schema, stream: false,
      options: { seed: 12, num_predict: 300 },
    });
    assert.ok(Number.isInteger(JSON.parse(c.message.content).legs));
    const j = await ollama.generate({ model: MODEL, prompt: PROMPT, format: 'json', options: { seed: 13, num_predict: 8 } });
    assert.equal(j.response[0], '{');
    assert.equal(j.done_reason, 'length');  // cut before the object closed, returned as is
  });

  test('structured outputs: an unsupported schema keyword is a ResponseError 400 naming it', async () => {
    await rejectsWith(
      () => ollama.generate({ model: MODEL, prompt: PROMPT, format: { type: 'string', pattern: '^a' } }), 400,
      /unsupported keyword\(s\): pattern/);
  });

  // The tool round trip (api-compat.md §3): tools, the model's call sent back as an assistant message
  // with tool_calls (arguments an object), the result as a tool message named by tool_name, the next
  // turn rendered. The model's text is random, so a call is not expected of it: what is checked is that
  // each turn renders (the prompt grows by the call and the result), the reply shapes, and the 400s.
  test('tools: the round trip renders each turn; a model without a tool format says 400', async () => {
    const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const first = await ollama.chat({ model: TOOL_MODEL, messages, tools: TOOLS, stream: false, options: greedy(6) });
    assert.equal(first.message.role, 'assistant');
    assert.equal(typeof first.message.content, 'string');
    for (const c of first.message.tool_calls ?? []) assert.equal(typeof c.function.arguments, 'object');
    const noTools = await ollama.chat({ model: TOOL_MODEL, messages, stream: false, options: greedy(2) });
    assert.ok(first.prompt_eval_count > noTools.prompt_eval_count + 20,
      `the tool definitions are in the prompt (${first.prompt_eval_count} vs ${noTools.prompt_eval_count} tokens)`);
    messages.push({ role: 'assistant', content: '',
      tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] });
    messages.push({ role: 'tool', content: '11 degrees and sunny', tool_name: 'get_weather' });
    const second = await ollama.chat({ model: TOOL_MODEL, messages, tools: TOOLS, stream: false, options: greedy(6) });
    assert.equal(second.message.role, 'assistant');
    assert.ok(second.prompt_eval_count > first.prompt_eval_count + 10,
      `the call and its result are in the prompt (${second.prompt_eval_count} vs ${first.prompt_eval_count})`);
    const streamed = await collect(
      await ollama.chat({ model: TOOL_MODEL, messages, tools: TOOLS, stream: true, options: greedy(6) }),
      (c) => c.message.content);
    assert.equal(streamed.last.done, true);
    assert.equal(streamed.last.prompt_eval_count, second.prompt_eval_count);
    await rejectsWith(() => ollama.chat({ model: MODEL, messages, tools: TOOLS, stream: false }), 400,
      /stories260K does not support tools/);
  });
});
