'use strict';
// Shared plumbing for the SDK proof tests: a client built exactly as an Azure user builds it
// (only the endpoint changes), a wire recorder (a pipeline policy added through the SDK's public
// API; the package itself stays unchanged) so failures show what was sent and answered,
// unique compute names, and cleanup.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const ml = require('@azure/arm-machinelearning');

// @azure/arm-machinelearning 2.1.1 exports its client as `AzureMachineLearningWorkspaces`;
// the name `AzureMachineLearningServicesManagementClient` only exists from 3.0.0 on.
// Same constructor shape: (credential, subscriptionId, options).
const AzureMachineLearningServicesManagementClient =
  ml.AzureMachineLearningServicesManagementClient || ml.AzureMachineLearningWorkspaces;

const SERVER_URL = process.env.CHUB_SERVER;
const TOKEN = process.env.CHUB_TOKEN;
const SUB = process.env.CHUB_SUBSCRIPTION || '00000000-0000-0000-0000-000000000000';
const RG = process.env.CHUB_RESOURCE_GROUP || 'default';
const WS = process.env.CHUB_WORKSPACE || 'default';
const LOCATION = process.env.CHUB_LOCATION || 'local';

function requireEnv() {
  assert.ok(SERVER_URL, 'CHUB_SERVER is not set: run these tests through sdktest/run.sh');
  assert.ok(TOKEN, 'CHUB_TOKEN is not set: run these tests through sdktest/run.sh');
  assert.match(SERVER_URL, /^https:\/\//, 'CHUB_SERVER must be an https:// URL');
}

// Every HTTP exchange of every client made here, closest to the wire (after the Sign phase).
const transcript = [];

function redactHeaders(h) {
  const out = {};
  for (const [k, v] of Object.entries(h)) {
    out[k] = k.toLowerCase() === 'authorization' ? v.replace(/^(Bearer)\s+.*/i, '$1 <redacted>') : v;
  }
  return out;
}

function parseMaybeJSON(text) {
  if (text === undefined || text === null || text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const recorderPolicy = {
  name: 'chubSdktestRecorder',
  async sendRequest(request, next) {
    const entry = {
      at: new Date().toISOString(),
      method: request.method,
      url: request.url,
      requestHeaders: redactHeaders(request.headers.toJSON()),
      requestBody: typeof request.body === 'string' ? parseMaybeJSON(request.body) : undefined,
    };
    transcript.push(entry);
    try {
      const response = await next(request);
      entry.status = response.status;
      entry.responseHeaders = response.headers.toJSON();
      entry.responseBody = parseMaybeJSON(response.bodyAsText);
      return response;
    } catch (e) {
      entry.error = String(e && e.message);
      throw e;
    }
  },
};

function makeCredential(token) {
  return {
    getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600e3 }),
  };
}

function makeClient(token = TOKEN) {
  requireEnv();
  const client = new AzureMachineLearningServicesManagementClient(makeCredential(token), SUB, {
    endpoint: SERVER_URL,
  });
  client.pipeline.addPolicy(recorderPolicy, { afterPhase: 'Sign' });
  return client;
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
function randomLetters(n) {
  const bytes = crypto.randomBytes(n);
  let s = '';
  for (const b of bytes) s += LETTERS[b % LETTERS.length];
  return s;
}

// 3-24 chars, starts with a letter, letters/digits/hyphens, never ends in hyphen+digits.
const NAME_RE = /^[a-zA-Z](?![a-zA-Z0-9-]*-\d+$)[a-zA-Z0-9-]{2,23}$/;
function uniqueName(tag = 'a') {
  const name = `sdk-${tag}${randomLetters(8)}`;
  assert.match(name, NAME_RE, `generated name ${name} is not a valid compute name`);
  return name;
}

function instanceBody(vmSize = 'STANDARD_DS1_V2') {
  return {
    location: LOCATION,
    properties: { computeType: 'ComputeInstance', properties: { vmSize } },
  };
}

function computeId(name) {
  return (
    `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.MachineLearningServices` +
    `/workspaces/${WS}/computes/${name}`
  );
}

// Exchanges recorded since `mark` (a transcript length taken before the call).
function since(mark) {
  return transcript.slice(mark);
}

function formatExchange(e) {
  const lines = [`${e.at} ${e.method} ${e.url} -> ${e.status ?? 'ERR ' + e.error}`];
  if (e.requestBody !== undefined) lines.push(`  sent: ${JSON.stringify(e.requestBody)}`);
  if (e.responseHeaders) {
    const interesting = ['azure-asyncoperation', 'location', 'retry-after', 'content-type', 'www-authenticate'];
    const hs = interesting.filter((k) => e.responseHeaders[k] !== undefined).map((k) => `${k}: ${e.responseHeaders[k]}`);
    if (hs.length) lines.push(`  headers: ${hs.join(' | ')}`);
  }
  if (e.responseBody !== undefined) {
    let b = JSON.stringify(e.responseBody);
    if (b.length > 1500) b = b.slice(0, 1500) + '...';
    lines.push(`  answered: ${b}`);
  }
  return lines.join('\n');
}

// Wraps a test body: on failure, the wire exchanges of this test are appended to the error.
function traced(fn) {
  return async function tracedTest(t) {
    const mark = transcript.length;
    try {
      return await fn(t);
    } catch (err) {
      const ex = since(mark).slice(-25).map(formatExchange).join('\n');
      const note = `\n--- HTTP exchanges of this test (last 25) ---\n${ex || '(none)'}\n---`;
      try {
        err.message = `${err.message}${note}`;
      } catch {
        t.diagnostic(note);
      }
      throw err;
    }
  };
}

// Calls fn, asserts it rejects, returns the error.
async function rejection(promise, what) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail(`${what}: expected the call to fail, but it succeeded`);
}

function assertRestError(err, statusCode, what) {
  assert.equal(err.name, 'RestError', `${what}: expected a RestError, got ${err.name}: ${err.message}`);
  assert.equal(err.statusCode, statusCode, `${what}: expected HTTP ${statusCode}, got ${err.statusCode}: ${err.message}`);
}

// The error envelope the server actually sent with an error response (from the recorder).
function lastErrorEnvelope(mark, status) {
  const hits = since(mark).filter((e) => e.status === status);
  assert.ok(hits.length > 0, `no HTTP ${status} answer was recorded`);
  const body = hits[hits.length - 1].responseBody;
  assert.ok(body && typeof body === 'object' && body.error && typeof body.error === 'object',
    `HTTP ${status} answer is not the {"error":{...}} envelope: ${JSON.stringify(body)}`);
  assert.equal(typeof body.error.code, 'string', 'error.code must be a string');
  assert.ok(body.error.code.length > 0, 'error.code must not be empty');
  assert.equal(typeof body.error.message, 'string', 'error.message must be a string');
  assert.ok(body.error.message.length > 0, 'error.message must not be empty');
  return body.error;
}

// Registry of what the tests created, so that `after` hooks delete it.
const created = new Set();

async function createInstance(client, name, vmSize) {
  created.add(name);
  return client.computeOperations.beginCreateOrUpdateAndWait(RG, WS, name, instanceBody(vmSize));
}

async function deleteQuietly(client, name) {
  try {
    await client.computeOperations.beginDeleteAndWait(RG, WS, name, 'Delete');
  } catch (err) {
    if (err && err.statusCode === 404) return;
    // One retry: the instance may still have an operation in flight.
    await new Promise((r) => setTimeout(r, 2000));
    try {
      await client.computeOperations.beginDeleteAndWait(RG, WS, name, 'Delete');
    } catch (err2) {
      if (err2 && err2.statusCode === 404) return;
      process.stderr.write(`cleanup: could not delete ${name}: ${err2 && err2.message}\n`);
    }
  }
}

async function cleanup(client, names = [...created]) {
  for (const n of names) {
    await deleteQuietly(client, n);
    created.delete(n);
  }
}

// CHUB_SDKTEST_TRACE=FILE appends every recorded exchange to FILE (one JSON object a line).
if (process.env.CHUB_SDKTEST_TRACE) {
  const fs = require('node:fs');
  const file = process.env.CHUB_SDKTEST_TRACE;
  process.on('exit', () => {
    const lines = transcript.map((e) => JSON.stringify({ file: require.main && require.main.filename, ...e }));
    if (lines.length) fs.appendFileSync(file, lines.join('\n') + '\n');
  });
}

// A test of something the facts require but the server does not do yet. It runs and reports
// its failure, marked TODO so it does not fail the suite; CHUB_SDKTEST_STRICT=1 makes it count.
// Remove the mark once the server does it.
function gap(reason, opts = {}) {
  if (process.env.CHUB_SDKTEST_STRICT === '1') return opts;
  return { ...opts, todo: `server gap: ${reason}` };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// waitFor calls fn every half second until it returns something truthy (returned), or throws
// after timeoutMs with the last value or error.
async function waitFor(what, fn, timeoutMs = 120_000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last && (last.message || JSON.stringify(last))})`);
}

// raw calls the server without the SDK, for ComputeHub's extensions (job logs, outputs, code
// uploads) and operations 2.1.1 does not have. path is absolute or starts with /; the
// api-version is added unless the URL has one (or opts.apiVersion is null).
async function raw(method, path, opts = {}) {
  requireEnv();
  const url = new URL(path, SERVER_URL);
  const v = opts.apiVersion === undefined ? '2024-04-01' : opts.apiVersion;
  if (v && !url.searchParams.has('api-version')) url.searchParams.set('api-version', v);
  const headers = { ...(opts.headers || {}) };
  if (opts.token !== null) headers.Authorization = 'Bearer ' + (opts.token || TOKEN);
  let body = opts.body;
  if (body !== undefined && !(body instanceof Uint8Array) && typeof body !== 'string') {
    body = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  const entry = { at: new Date().toISOString(), method, url: url.href, requestHeaders: redactHeaders(headers),
    requestBody: typeof body === 'string' ? parseMaybeJSON(body) : body === undefined ? undefined : `<${body.length} bytes>` };
  transcript.push(entry);
  const res = await fetch(url, { method, headers, body });
  entry.status = res.status;
  entry.responseHeaders = Object.fromEntries(res.headers);
  const buf = Buffer.from(await res.arrayBuffer());
  const type = res.headers.get('content-type') || '';
  const text = /json|text/.test(type) ? buf.toString('utf8') : undefined;
  entry.responseBody = text === undefined ? `<${buf.length} bytes ${type}>` : parseMaybeJSON(text);
  return { status: res.status, headers: res.headers, buffer: buf, text, json: /json/.test(type) ? parseMaybeJSON(text) : undefined };
}

// workspaceId is the ARM id of the workspace the tests use.
function workspaceId() {
  return `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.MachineLearningServices/workspaces/${WS}`;
}

module.exports = {
  AzureMachineLearningServicesManagementClient,
  SERVER_URL,
  TOKEN,
  SUB,
  RG,
  WS,
  LOCATION,
  NAME_RE,
  makeClient,
  makeCredential,
  uniqueName,
  instanceBody,
  computeId,
  transcript,
  since,
  formatExchange,
  traced,
  rejection,
  assertRestError,
  lastErrorEnvelope,
  created,
  createInstance,
  deleteQuietly,
  cleanup,
  gap,
  sleep,
  waitFor,
  raw,
  workspaceId,
};
