// The official `openai` npm client (openai-node, pinned in package.json) against `g2c serve`'s /v1.
// api-compat.md §4 and §8 are the contract.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import OpenAI from 'openai';

import {
  BASE_URL, MODEL, MODEL_TAG, N_EMBD, PROMPT, TEST_TIMEOUT, TOOLS, TOOL_MODEL, metrics, norm, tokenize, waitForIdle,
} from './lib.mjs';

// No retries: a failure shows at once, and a 5xx is not hidden by a second try.
const client = new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: 'g2c-test-key', maxRetries: 0, timeout: 20_000 });
const messages = [{ role: 'user', content: 'Tell me a story about a cat.' }];

async function rejectsWith(fn, cls, status, re) {
  await assert.rejects(fn, (e) => {
    assert.ok(e instanceof cls, `a ${cls.name}, got ${e?.constructor?.name}: ${e?.message}`);
    assert.equal(e.status, status);
    assert.match(e.message, re);
    assert.equal(typeof e.error?.message, 'string', 'the error envelope has error.message');
    assert.match(e.error.message, re);
    assert.equal(typeof e.type, 'string', 'the error envelope has error.type');
    return true;
  });
}

function assertUsage(u) {
  assert.ok(u, 'usage is present');
  for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
    assert.ok(Number.isInteger(u[k]) && u[k] >= 0, `usage.${k} is an integer (got ${u[k]})`);
  }
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  assert.ok(u.prompt_tokens > 0 && u.completion_tokens > 0);
}

async function chatStream(extra) {
  const stream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 16, temperature: 0,
    stream: true, ...extra });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

describe('openai-node', { timeout: TEST_TIMEOUT }, () => {
  test('models.list and models.retrieve', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.object, 'model');
      assert.ok(Number.isInteger(m.created));
      ids.push(m.id);
    }
    assert.ok(ids.includes(MODEL_TAG), `${MODEL_TAG} in ${ids}`);
    const m = await client.models.retrieve(MODEL_TAG);
    assert.equal(m.id, MODEL_TAG);
    assert.equal(m.object, 'model');
    assert.equal(typeof m.owned_by, 'string');
    await rejectsWith(() => client.models.retrieve('no-such-model:latest'), OpenAI.NotFoundError, 404,
      /no-such-model/);
  });

  test('chat.completions.create, not streamed', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 16, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.model, MODEL);
    assert.ok(Number.isInteger(r.created) && Math.abs(r.created - Date.now() / 1000) < 600, 'created: unix seconds');
    assert.equal(r.choices.length, 1);
    const c = r.choices[0];
    assert.equal(c.index, 0);
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.ok(['stop', 'length'].includes(c.finish_reason), `finish_reason ${c.finish_reason}`);
    assertUsage(r.usage);
    assert.ok(r.usage.completion_tokens <= 16);
  });

  test('chat.completions.create, streamed without and with include_usage', async () => {
    const once = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 16, temperature: 0 });

    const plain = await chatStream({});
    assert.equal(plain[0].choices[0].delta.role, 'assistant', 'the first delta has the role');
    const ids = new Set(plain.map((c) => c.id));
    assert.equal(ids.size, 1, 'one id on every chunk');
    for (const c of plain) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.ok(Array.isArray(c.choices));
      assert.ok(c.usage == null, 'no usage unless asked');
    }
    const finish = plain.filter((c) => c.choices[0]?.finish_reason);
    assert.equal(finish.length, 1, 'one finish chunk');
    assert.equal(finish[0], plain[plain.length - 1], 'the finish chunk is last');
    assert.equal(finish[0].choices[0].finish_reason, once.choices[0].finish_reason);
    const text = plain.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, once.choices[0].message.content, 'streamed greedy text = not streamed');

    const withUsage = await chatStream({ stream_options: { include_usage: true } });
    const last = withUsage[withUsage.length - 1];
    assert.deepEqual(last.choices, [], 'the usage chunk has no choices');
    assertUsage(last.usage);
    assert.deepEqual(
      { p: last.usage.prompt_tokens, c: last.usage.completion_tokens },
      { p: once.usage.prompt_tokens, c: once.usage.completion_tokens });
    const beforeLast = withUsage[withUsage.length - 2];
    assert.equal(beforeLast.choices[0].finish_reason, once.choices[0].finish_reason, 'finish, then usage');
    for (const c of withUsage.slice(0, -1)) assert.ok(c.usage == null, 'usage only on the last chunk');
    assert.equal(withUsage.map((c) => c.choices[0]?.delta?.content ?? '').join(''), text);
  });

  test('chat.completions.stream() helper and finalChatCompletion()', async () => {
    const once = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 16, temperature: 0 });
    const stream = client.chat.completions.stream({ model: MODEL, messages, max_tokens: 16, temperature: 0 });
    let deltas = '';
    stream.on('content', (delta) => { deltas += delta; });
    const final = await stream.finalChatCompletion();
    assert.equal(final.choices[0].message.role, 'assistant');
    assert.equal(final.choices[0].message.content, once.choices[0].message.content);
    assert.equal(final.choices[0].finish_reason, once.choices[0].finish_reason);
    assert.equal(deltas, final.choices[0].message.content);
  });

  test('chat logprobs with top_logprobs', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 8, temperature: 0,
      logprobs: true, top_logprobs: 3 });
    const content = r.choices[0].logprobs?.content;
    assert.ok(Array.isArray(content), 'choices[0].logprobs.content is an array');
    assert.equal(content.length, r.usage.completion_tokens);
    for (const t of content) {
      assert.equal(typeof t.token, 'string');
      assert.ok(t.logprob <= 0);
      assert.equal(t.top_logprobs.length, 3);
      // Greedy: the chosen token is the most likely one.
      assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-6);
    }
    assert.equal(content.map((t) => t.token).join(''), r.choices[0].message.content);
  });

  test('completions.create with echo and logprobs', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 0,
      echo: true, logprobs: 1 });
    assert.equal(r.object, 'text_completion');
    const c = r.choices[0];
    assert.ok(c.text.startsWith(PROMPT), `echo: ${JSON.stringify(c.text)} starts with the prompt`);
    assert.ok(c.text.length > PROMPT.length);
    assertUsage(r.usage);
    assert.equal(r.usage.prompt_tokens, (await tokenize(MODEL, PROMPT)).length);
    const lp = c.logprobs;
    const n = r.usage.prompt_tokens + r.usage.completion_tokens;
    assert.equal(lp.tokens.length, n, 'a logprob entry for each prompt and generated token');
    assert.equal(lp.token_logprobs.length, n);
    assert.equal(lp.text_offset.length, n);
    assert.equal(lp.token_logprobs[0], null, "the first prompt token has no logprob");
    for (const x of lp.token_logprobs.slice(1)) assert.ok(typeof x === 'number' && x <= 0, `logprob ${x}`);
    for (const x of lp.top_logprobs.slice(r.usage.prompt_tokens)) {
      assert.equal(Object.keys(x).length, 1, 'logprobs: 1 gives one alternative');
    }
  });

  test('completions.create streamed with echo (with and without logprobs): the prompt comes first', async () => {
    const once = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 0,
      echo: true, logprobs: 1 });
    for (const logprobs of [undefined, 1]) {
      const stream = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 0,
        echo: true, logprobs, stream: true, stream_options: { include_usage: true } });
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      const text = chunks.map((c) => c.choices[0]?.text ?? '').join('');
      assert.equal(text, once.choices[0].text, `logprobs ${logprobs}: the streamed text is the prompt, then the completion`);
      const usage = chunks[chunks.length - 1].usage;
      assertUsage(usage);
      if (logprobs) {
        const tokens = chunks.flatMap((c) => c.choices[0]?.logprobs?.tokens ?? []);
        const lps = chunks.flatMap((c) => c.choices[0]?.logprobs?.token_logprobs ?? []);
        assert.deepEqual(tokens, once.choices[0].logprobs.tokens, 'the tokens in order: prompt, then completion');
        assert.equal(lps.length, usage.prompt_tokens + usage.completion_tokens);
        assert.equal(lps[0], null);
      }
    }
  });

  test('embeddings.create without encoding_format (base64) = the float request', async () => {
    const input = ['a little dog', 'the big red ball'];
    const b64 = await client.embeddings.create({ model: MODEL, input });
    const flt = await client.embeddings.create({ model: MODEL, input, encoding_format: 'float' });
    assert.equal(b64.object, 'list');
    assert.equal(b64.data.length, 2);
    for (let i = 0; i < 2; i++) {
      const a = Array.from(b64.data[i].embedding);
      const f = flt.data[i].embedding;
      assert.equal(b64.data[i].index, i);
      assert.equal(a.length, N_EMBD, 'the SDK decoded n_embd floats');
      assert.equal(f.length, N_EMBD);
      assert.ok(Math.abs(norm(a) - 1) < 1e-4, `norm ${norm(a)}`);
      for (let k = 0; k < N_EMBD; k++) assert.ok(Math.abs(a[k] - f[k]) <= 1e-6 * Math.max(1, Math.abs(f[k])));
    }
    assert.ok(Number.isInteger(b64.usage.prompt_tokens) && b64.usage.prompt_tokens > 0);
    const one = await client.embeddings.create({ model: MODEL, input: 'a little dog' });
    assert.equal(one.data.length, 1);
    assert.deepEqual(Array.from(one.data[0].embedding), Array.from(b64.data[0].embedding));
  });

  test('errors: NotFoundError and BadRequestError with the message', async () => {
    await rejectsWith(
      () => client.chat.completions.create({ model: 'no-such-model', messages, max_tokens: 4 }),
      OpenAI.NotFoundError, 404, /model 'no-such-model' not found/);
    await rejectsWith(
      () => client.completions.create({ model: 'no-such-model', prompt: 'x', max_tokens: 4 }),
      OpenAI.NotFoundError, 404, /no-such-model/);
    await rejectsWith(
      () => client.embeddings.create({ model: 'no-such-model', input: 'x' }), OpenAI.NotFoundError, 404,
      /no-such-model/);
    await rejectsWith(() => client.chat.completions.create({ model: MODEL, messages: [], max_tokens: 4 }),
      OpenAI.BadRequestError, 400, /messages/);
    await rejectsWith(
      () => client.chat.completions.create({ model: MODEL, messages, max_tokens: 4, temperature: 'hot' }),
      OpenAI.BadRequestError, 400, /temperature/);
    await rejectsWith(
      () => client.embeddings.create({ model: MODEL, input: 'x', encoding_format: 'int8' }),
      OpenAI.BadRequestError, 400, /encoding_format/);
  });

  test('stream.controller.abort() mid-stream frees the sequence', async () => {
    const before = await metrics();
    const canceled0 = before.g2c_requests_canceled_total?.[MODEL_TAG] ?? 0;
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true, temperature: 0,
      max_tokens: 100000 });
    let n = 0;
    for await (const c of stream) {
      assert.equal(c.choices[0].finish_reason, null, 'the generation was still running when aborted');
      if (++n === 3) stream.controller.abort();  // the SDK then ends the iteration without throwing
    }
    const after = await waitForIdle(MODEL_TAG, 2000);
    assert.ok((after.g2c_requests_canceled_total?.[MODEL_TAG] ?? 0) > canceled0,
      'g2c_requests_canceled_total grew: the server canceled the generation');
  });

  test('structured outputs: response_format json_schema and json_object', async () => {
    const schema = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 10 }, legs: { type: 'integer' }, pet: { type: 'boolean' } },
  required: ['name', 'legs', 'pet'],
  additionalProperties: false,
};
    const r = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'Describe a cat' }], seed: 21, max_tokens: 300,
      response_format: { type: 'json_schema', json_schema: { name: 'animal', schema, strict: true } },
    });
    assert.equal(r.choices[0].finish_reason, 'stop');
    const doc = JSON.parse(r.choices[0].message.content);
    assert.deepEqual(Object.keys(doc).sort(), ['legs', 'name', 'pet']);
    assert.ok(Number.isInteger(doc.legs));
    const o = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'x' }], seed: 22, max_tokens: 6,
      response_format: { type: 'json_object' },
    });
    assert.equal(o.choices[0].message.content[0], '{');
    assert.equal(o.choices[0].finish_reason, 'length');
    await assert.rejects(
      () => client.chat.completions.create({
        model: MODEL, messages: [{ role: 'user', content: 'x' }],
        response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'number', minimum: 0 } } },
      }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && /unsupported keyword\(s\): minimum/.test(e.message));
  });

  // The tool round trip with openai-node: the call sent back with arguments as a JSON string and an
  // id, the result by tool_call_id, tool_choice honoured (none drops the tools; required is a 400 until
  // constrained decoding exists). The model's text is random: the prompt and the shapes are checked.
  test('tools: the round trip renders each turn; tool_choice none / required', async () => {
    const msgs = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const first = await client.chat.completions.create({ model: TOOL_MODEL, messages: msgs, tools: TOOLS,
      max_tokens: 6, temperature: 0 });
    const choice = first.choices[0];
    assert.equal(choice.message.role, 'assistant');
    assert.ok(['stop', 'length', 'tool_calls'].includes(choice.finish_reason), choice.finish_reason);
    for (const c of choice.message.tool_calls ?? []) assert.equal(typeof c.function.arguments, 'string');
    const none = await client.chat.completions.create({ model: TOOL_MODEL, messages: msgs, tools: TOOLS,
      tool_choice: 'none', max_tokens: 2 });
    const bare = await client.chat.completions.create({ model: TOOL_MODEL, messages: msgs, max_tokens: 2 });
    assert.equal(none.usage.prompt_tokens, bare.usage.prompt_tokens, 'tool_choice none leaves the tools out');
    assert.ok(first.usage.prompt_tokens > bare.usage.prompt_tokens + 20, 'the tool definitions are in the prompt');
    msgs.push({ role: 'assistant', content: null, tool_calls: [{ id: 'call_k3x9q2ab', type: 'function',
      function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] });
    msgs.push({ role: 'tool', tool_call_id: 'call_k3x9q2ab', content: '11 degrees and sunny' });
    const second = await client.chat.completions.create({ model: TOOL_MODEL, messages: msgs, tools: TOOLS,
      max_tokens: 6, temperature: 0 });
    assert.equal(second.choices[0].message.role, 'assistant');
    assert.ok(second.usage.prompt_tokens > first.usage.prompt_tokens + 10, 'the call and its result are in the prompt');
    const stream = await client.chat.completions.create({ model: TOOL_MODEL, messages: msgs, tools: TOOLS,
      max_tokens: 6, stream: true });
    let finish = null;
    for await (const c of stream) finish = c.choices[0]?.finish_reason ?? finish;
    assert.ok(['stop', 'length', 'tool_calls'].includes(finish), `a finish_reason ends the stream: ${finish}`);
    await rejectsWith(() => client.chat.completions.create({ model: TOOL_MODEL, messages: msgs, tools: TOOLS,
      tool_choice: 'required' }), OpenAI.BadRequestError, 400, /tool_choice "required" is not supported/);
    await rejectsWith(() => client.chat.completions.create({ model: MODEL, messages: msgs, tools: TOOLS }),
      OpenAI.BadRequestError, 400, /does not support tools/);
  });
});
