'use strict';
// Stop, start and restart through the SDK's long-running POST operations.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/helpers');

const T = { timeout: 180_000 };

// The facts: POST .../{action} answers 202 + Azure-AsyncOperation; the client polls the status
// document until it is terminal (and then GETs Location if one was given).
function assertPostLro(exchanges, action, name) {
  const post = exchanges[0];
  assert.equal(post.method, 'POST');
  assert.equal(new URL(post.url).pathname.toLowerCase(), `${h.computeId(name)}/${action}`.toLowerCase());
  assert.equal(post.status, 202, `${action} must answer 202`);
  const asyncUrl = post.responseHeaders['azure-asyncoperation'];
  assert.ok(asyncUrl, `${action} answer has no Azure-AsyncOperation header`);
  assert.equal(new URL(asyncUrl).origin, new URL(h.SERVER_URL).origin);
  const ra = post.responseHeaders['retry-after'];
  if (ra !== undefined) assert.match(ra, /^\d+$/, `Retry-After must be whole seconds, is ${ra}`);
  const polls = exchanges.filter((e) => e.method === 'GET' && e.url.split('?')[0] === asyncUrl.split('?')[0]);
  assert.ok(polls.length >= 1, `the client never polled the ${action} status document`);
  assert.equal(polls[polls.length - 1].status, 200);
  assert.equal(polls[polls.length - 1].responseBody.status.toLowerCase(), 'succeeded');
  const loc = post.responseHeaders.location;
  if (loc) {
    const finals = exchanges.filter((e) => e.method === 'GET' && e.url.split('?')[0] === loc.split('?')[0]);
    assert.ok(finals.length >= 1, 'the client did not GET the Location URL');
    assert.ok(finals[finals.length - 1].status < 300 && finals[finals.length - 1].status !== 202,
      `final GET of Location answered ${finals[finals.length - 1].status}`);
  }
}

async function state(client, name) {
  const got = await client.computeOperations.get(h.RG, h.WS, name);
  return got.properties;
}

describe('stop, start and restart a compute instance', () => {
  const client = h.makeClient();
  const name = h.uniqueName('p');

  before(async () => {
    const c = await h.createInstance(client, name);
    assert.equal(c.properties.properties.state, 'Running');
  }, T);
  after(() => h.cleanup(client));

  test('beginStopAndWait leaves it Stopped', T, h.traced(async () => {
    const mark = h.transcript.length;
    await client.computeOperations.beginStopAndWait(h.RG, h.WS, name);
    assertPostLro(h.since(mark), 'stop', name);
    const p = await state(client, name);
    assert.equal(p.properties.state, 'Stopped');
    assert.equal(p.provisioningState, 'Succeeded');
    assert.equal(p.properties.lastOperation.operationName, 'Stop');
    assert.equal(p.properties.lastOperation.operationStatus, 'Succeeded');
    assert.equal(p.properties.lastOperation.operationTrigger, 'User');
  }));

  test('beginStartAndWait brings it back Running', T, h.traced(async () => {
    const mark = h.transcript.length;
    await client.computeOperations.beginStartAndWait(h.RG, h.WS, name);
    assertPostLro(h.since(mark), 'start', name);
    const p = await state(client, name);
    assert.equal(p.properties.state, 'Running');
    assert.equal(p.provisioningState, 'Succeeded');
    assert.equal(p.properties.lastOperation.operationName, 'Start');
    assert.equal(p.properties.lastOperation.operationStatus, 'Succeeded');
  }));

  test('beginRestartAndWait leaves it Running with lastOperation Restart', T, h.traced(async () => {
    const mark = h.transcript.length;
    await client.computeOperations.beginRestartAndWait(h.RG, h.WS, name);
    assertPostLro(h.since(mark), 'restart', name);
    const p = await state(client, name);
    assert.equal(p.properties.state, 'Running');
    assert.equal(p.provisioningState, 'Succeeded');
    assert.equal(p.properties.lastOperation.operationName, 'Restart');
    assert.equal(p.properties.lastOperation.operationStatus, 'Succeeded');
  }));
});
