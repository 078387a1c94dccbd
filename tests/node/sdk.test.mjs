// End-to-end tests of the gateway with the official Node SDK (the npm
// package openai, pinned in package.json). TestNodeSDK in
// ../node_sdk_test.go starts the real gateway and a test upstream, and runs
// this file with `node --test`; everything the tests need (URLs, keys,
// model ids, the upstream's fixed answers) comes in REGATE_NODE_E2E.
//
// The upstream records each call under the request's X-Test-Case header and
// reports them on GET /__calls?case=NAME, so a test can check what reached
// it (the model the gateway rewrote, stream_options, a cancelled request).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, {
  AuthenticationError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
} from 'openai';

const raw = process.env.REGATE_NODE_E2E;
if (!raw) {
  throw new Error('REGATE_NODE_E2E is not set: run these tests with `go test ./tests/ -run TestNodeSDK`');
}
const env = JSON.parse(raw);
const up = env.upstream;
const TIMEOUT = { timeout: 15_000 };

// client is an SDK client for key without retries, so every status reaches
// the test as the gateway sent it; testCase tags the upstream's record.
function client(key, testCase) {
  return new OpenAI({
    apiKey: key,
    baseURL: `${env.gateway_url}/v1`,
    maxRetries: 0,
    timeout: 10_000,
    defaultHeaders: testCase ? { 'X-Test-Case': testCase } : {},
  });
}

// upstreamCalls returns what the upstream saw of the calls tagged testCase.
async function upstreamCalls(testCase) {
  const res = await fetch(`${env.upstream_url}/__calls?case=${encodeURIComponent(testCase)}`);
  assert.equal(res.status, 200, 'GET /__calls on the test upstream');
  return res.json();
}

// oneUpstreamCall checks that exactly one call tagged testCase reached the
// upstream and returns it.
async function oneUpstreamCall(testCase) {
  const calls = await upstreamCalls(testCase);
  assert.equal(calls.length, 1, `upstream calls for ${testCase}: ${JSON.stringify(calls)}`);
  assert.equal(calls[0].provider_key, true, 'the upstream got the provider key, not the client key');
  return calls[0];
}

// apiError awaits promise, which must reject with an instance of Class
// carrying status and an OpenAI error envelope of type and code; it
// returns the error.
async function apiError(promise, Class, status, type, code) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `want ${Class.name}, the call succeeded`);
  assert.ok(err instanceof Class, `want ${Class.name}, got ${err.constructor.name}: ${err.message}`);
  assert.equal(err.status, status, 'status');
  assert.deepEqual(Object.keys(err.error).sort(), ['code', 'message', 'param', 'type'], `envelope ${JSON.stringify(err.error)}`);
  assert.equal(err.type, type, `type of ${JSON.stringify(err.error)}`);
  assert.equal(err.code, code, `code of ${JSON.stringify(err.error)}`);
  assert.equal(typeof err.error.message, 'string');
  assert.ok(err.error.message.length > 0, 'message is empty');
  assert.ok(err.requestID, 'no x-request-id on the error answer');
  return err;
}

const notFoundMessage = (model) => `The model \`${model}\` does not exist or you do not have access to it.`;

const hi = [{ role: 'user', content: 'hi' }];
const ordinary = env.keys.ordinary;

test('chat.completions.create', TIMEOUT, async () => {
  const { data: res, response } = await client(ordinary, 'chat')
    .chat.completions.create({ model: env.chat_model, messages: hi })
    .withResponse();
  assert.equal(response.status, 200);
  assert.ok(response.headers.get('x-request-id'), 'no x-request-id');
  assert.equal(res.id, up.chat_id);
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.choices.length, 1);
  assert.equal(res.choices[0].message.role, 'assistant');
  assert.equal(res.choices[0].message.content, up.chat_reply);
  assert.equal(res.choices[0].finish_reason, 'stop');
  assert.deepEqual(res.usage, up.usage);
  const call = await oneUpstreamCall('chat');
  assert.equal(call.model, 'gpt-4o-mini', 'the upstream model is the deployment\'s, without the provider');
  assert.equal(call.stream, false);
});

// streamChat collects a streamed chat answer.
async function streamChat(testCase, extra) {
  const stream = await client(ordinary, testCase).chat.completions.create({
    model: env.chat_model,
    messages: hi,
    stream: true,
    ...extra,
  });
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
  }
  return chunks;
}

const text = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');

test('chat stream without stream_options.include_usage', TIMEOUT, async () => {
  const chunks = await streamChat('stream-plain', {});
  // role, one chunk per part, finish: the upstream's stream without its
  // usage chunk, which the gateway asked for and keeps to itself.
  assert.equal(chunks.length, up.stream_parts.length + 2, `chunks: ${JSON.stringify(chunks)}`);
  assert.equal(text(chunks), up.stream_parts.join(''));
  for (const c of chunks) {
    assert.equal(c.id, up.chat_id);
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.choices.length, 1, `chunk without choices: ${JSON.stringify(c)}`);
    assert.equal(c.usage ?? null, null, `usage reached a client that did not ask: ${JSON.stringify(c)}`);
  }
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  const call = await oneUpstreamCall('stream-plain');
  assert.equal(call.stream, true);
  assert.equal(call.include_usage, true, 'the gateway asks the upstream for usage');
});

test('chat stream with stream_options.include_usage', TIMEOUT, async () => {
  const chunks = await streamChat('stream-usage', { stream_options: { include_usage: true } });
  assert.equal(chunks.length, up.stream_parts.length + 3, `chunks: ${JSON.stringify(chunks)}`);
  assert.equal(text(chunks), up.stream_parts.join(''));
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, up.usage);
  for (const c of chunks.slice(0, -1)) {
    assert.equal(c.usage ?? null, null);
  }
  const call = await oneUpstreamCall('stream-usage');
  assert.equal(call.include_usage, true);
});

test('models.list and models.retrieve with / and : in ids', TIMEOUT, async () => {
  const c = client(ordinary);
  const page = await c.models.list();
  const ids = page.data.map((m) => m.id);
  assert.deepEqual([...ids].sort(), [...env.visible].sort());
  assert.ok(ids.includes('openrouter/qwen/qwen3.5-flash-02-23'));
  for (const listed of page.data) {
    assert.equal(listed.object, 'model');
    // The SDK sends the id %2F-encoded; the gateway decodes it once.
    const got = await c.models.retrieve(listed.id);
    assert.deepEqual(got, listed, `models.retrieve(${JSON.stringify(listed.id)})`);
  }
});

test('models.retrieve and chat of a forbidden or missing model: NotFoundError', TIMEOUT, async () => {
  const c = client(ordinary, 'not-found');
  const messages = [];
  for (const model of [env.forbidden, env.missing]) {
    const err = await apiError(c.models.retrieve(model), NotFoundError, 404, 'invalid_request_error', 'model_not_found');
    assert.equal(err.error.message, notFoundMessage(model));
    assert.equal(err.param ?? null, null);
    messages.push(err.error.message.replace(model, 'M'));
    const chatErr = await apiError(
      c.chat.completions.create({ model, messages: hi }),
      NotFoundError, 404, 'invalid_request_error', 'model_not_found',
    );
    assert.equal(chatErr.error.message, notFoundMessage(model));
  }
  assert.equal(messages[0], messages[1], 'a forbidden and a missing model answer alike');
  assert.deepEqual(await upstreamCalls('not-found'), [], 'a refused call reached the upstream');
});

test('embeddings.create, base64 (the SDK default) and float', TIMEOUT, async () => {
  const input = ['first', 'second'];
  const want = input.map((_, i) => [up.vector[0] * (i + 1), ...up.vector.slice(1)]);
  for (const [testCase, format] of [['emb-default', undefined], ['emb-float', 'float']]) {
    const res = await client(ordinary, testCase).embeddings.create({
      model: env.embedding_model,
      input,
      ...(format ? { encoding_format: format } : {}),
    });
    assert.equal(res.object, 'list');
    assert.equal(res.data.length, 2);
    assert.deepEqual(res.data.map((d) => d.index), [0, 1]);
    assert.deepEqual(res.data.map((d) => d.embedding), want, `${testCase}: embeddings`);
    const call = await oneUpstreamCall(testCase);
    assert.equal(call.model, 'text-embedding-3-small');
    assert.equal(call.encoding_format, format ?? 'base64');
  }
});

test('responses.create, plain and streamed', TIMEOUT, async () => {
  const res = await client(ordinary, 'responses').responses.create({ model: env.chat_model, input: 'hi' });
  assert.equal(res.id, up.response_id);
  assert.equal(res.object, 'response');
  assert.equal(res.status, 'completed');
  assert.equal(res.output_text, up.response_parts.join(''));
  assert.equal(res.usage.input_tokens, up.usage.prompt_tokens);
  assert.equal(res.usage.output_tokens, up.usage.completion_tokens);
  const call = await oneUpstreamCall('responses');
  assert.ok(call.path.endsWith('/responses'), call.path);
  assert.equal(call.model, 'gpt-4o-mini');

  const stream = await client(ordinary, 'responses-stream').responses.create({
    model: env.chat_model,
    input: 'hi',
    stream: true,
  });
  const types = [];
  let deltas = '';
  let completed;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') deltas += ev.delta;
    if (ev.type === 'response.completed') completed = ev.response;
  }
  assert.deepEqual(types, [
    'response.created',
    ...up.response_parts.map(() => 'response.output_text.delta'),
    'response.output_text.done',
    'response.completed',
  ]);
  assert.equal(deltas, up.response_parts.join(''));
  assert.equal(completed.id, up.response_id);
  assert.equal(completed.usage.output_tokens, up.usage.completion_tokens);
  assert.equal((await oneUpstreamCall('responses-stream')).stream, true);
});

test('invalid key: AuthenticationError 401 invalid_api_key', TIMEOUT, async () => {
  const key = env.keys.invalid;
  for (const call of [
    (c) => c.chat.completions.create({ model: env.chat_model, messages: hi }),
    (c) => c.models.list(),
    (c) => c.models.retrieve(env.chat_model),
  ]) {
    const err = await apiError(call(client(key, 'invalid-key')), AuthenticationError, 401, 'invalid_request_error', 'invalid_api_key');
    assert.ok(err.error.message.includes(key.slice(-4)), `message ${err.error.message} names the key's last 4 characters`);
    assert.ok(!err.error.message.includes(key.slice(0, -4)), `message ${err.error.message} shows the key`);
  }
  assert.deepEqual(await upstreamCalls('invalid-key'), []);
});

test('PermissionDeniedError 403: a key of a blocked team, models.delete', TIMEOUT, async () => {
  await apiError(
    client(env.keys.blocked, 'blocked').chat.completions.create({ model: env.chat_model, messages: hi }),
    PermissionDeniedError, 403, 'invalid_request_error', 'permission_denied',
  );
  assert.deepEqual(await upstreamCalls('blocked'), []);
  // DELETE /v1/models/openai%2Fgpt-4o-mini: models come from the config.
  await apiError(client(ordinary).models.delete(env.chat_model), PermissionDeniedError, 403, 'invalid_request_error', 'permission_denied');
});

test('rpm limit: RateLimitError 429 rate_limit_exceeded', TIMEOUT, async () => {
  const c = client(env.keys.rpm, 'rpm');
  const { response } = await c.chat.completions.create({ model: env.chat_model, messages: hi }).withResponse();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-ratelimit-limit-requests'), '1');
  assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '0');
  const err = await apiError(
    c.chat.completions.create({ model: env.chat_model, messages: hi }),
    RateLimitError, 429, 'requests', 'rate_limit_exceeded',
  );
  const retry = Number(err.headers.get('retry-after'));
  assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `retry-after ${err.headers.get('retry-after')}`);
  assert.match(err.error.message, /key/);
  assert.equal((await upstreamCalls('rpm')).length, 1, 'the refused call reached the upstream');
});

test('a stream the client aborts cancels the upstream request', TIMEOUT, async () => {
  const controller = new AbortController();
  const stream = await client(ordinary, 'abort').chat.completions.create(
    { model: env.slow_model, messages: hi, stream: true },
    { signal: controller.signal },
  );
  const chunks = [];
  // The upstream sends one chunk and then waits; aborting ends the loop.
  for await (const chunk of stream) {
    chunks.push(chunk);
    controller.abort();
  }
  assert.equal(chunks.length, 1);
  assert.equal(chunks[0].choices[0].delta.content, 'first');
  const deadline = Date.now() + 10_000;
  let calls;
  for (;;) {
    calls = await upstreamCalls('abort');
    if (calls.length === 1 && calls[0].cancelled) break;
    assert.ok(Date.now() < deadline, `the upstream request was not cancelled within 10 s: ${JSON.stringify(calls)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
});
