'use strict';
// Errors reach the SDK user as RestErrors carrying the server's status, code and message
// from the {"error":{code,message}} envelope.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/helpers');

const T = { timeout: 180_000 };
const ACTIVE_OP = 'There is already an active operation submitted';

describe('errors as the SDK surfaces them', () => {
  const client = h.makeClient();
  const running = h.uniqueName('e');

  before(async () => {
    const c = await h.createInstance(client, running);
    assert.equal(c.properties.properties.state, 'Running');
  }, T);
  after(() => h.cleanup(client));

  test('get of a missing compute: 404 ResourceNotFound', T, h.traced(async () => {
    const missing = h.uniqueName('m');
    const mark = h.transcript.length;
    const err = await h.rejection(client.computeOperations.get(h.RG, h.WS, missing), 'get missing');
    h.assertRestError(err, 404, 'get missing');
    const env = h.lastErrorEnvelope(mark, 404);
    assert.equal(env.code, 'ResourceNotFound');
    assert.equal(err.code, 'ResourceNotFound');
    assert.equal(err.message, env.message, 'the SDK must surface the server message');
  }));

  test('starting a Running instance is refused with 409 and the server message', T, h.traced(async () => {
    const mark = h.transcript.length;
    const err = await h.rejection(client.computeOperations.beginStartAndWait(h.RG, h.WS, running), 'start of a running instance');
    h.assertRestError(err, 409, 'start of a running instance');
    const env = h.lastErrorEnvelope(mark, 409);
    assert.equal(err.code, env.code);
    assert.equal(err.message, env.message, 'the SDK must surface the server message');
    assert.ok(!err.message.includes(ACTIVE_OP), `a plain start of a Running instance is not an in-flight conflict: ${err.message}`);
    // Refusing must not have changed anything.
    const got = await client.computeOperations.get(h.RG, h.WS, running);
    assert.equal(got.properties.properties.state, 'Running');
    assert.equal(got.properties.provisioningState, 'Succeeded');
  }));

  test('a second operation while one is in flight is refused: "There is already an active operation submitted"', T, h.traced(async () => {
    // Send a restart and a stop at the same moment on a Running instance; both are valid
    // alone, so whichever the server takes second finds the first one in flight. Should both
    // be accepted (the first done before the second arrived), put it back Running and retry.
    let refusal;
    const attempts = [];
    for (let attempt = 1; attempt <= 4 && !refusal; attempt++) {
      const mark = h.transcript.length;
      const results = await Promise.allSettled([
        client.computeOperations.beginRestart(h.RG, h.WS, running),
        client.computeOperations.beginStop(h.RG, h.WS, running),
      ]);
      const accepted = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
      const rejected = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
      attempts.push(`attempt ${attempt}: ${accepted.length} accepted, ${rejected.length} refused` +
        rejected.map((e) => ` [${e.statusCode} ${e.code}: ${e.message}]`).join(''));
      assert.ok(accepted.length >= 1, `neither operation was accepted: ${attempts.join('; ')}`);
      for (const p of accepted) await p.pollUntilDone();
      if (rejected.length === 1) {
        refusal = rejected[0];
        h.assertRestError(refusal, 409, 'second operation in flight');
        const env = h.lastErrorEnvelope(mark, 409);
        assert.equal(refusal.message, env.message);
        assert.equal(refusal.code, env.code);
        assert.ok(refusal.message.includes(ACTIVE_OP), `409 message lacks "${ACTIVE_OP}": ${refusal.message}`);
      }
      // Back to Running for the next attempt (and for the next tests).
      const got = await client.computeOperations.get(h.RG, h.WS, running);
      if (got.properties.properties.state === 'Stopped') {
        await client.computeOperations.beginStartAndWait(h.RG, h.WS, running);
      }
    }
    assert.ok(refusal, `no second operation was ever refused: ${attempts.join('; ')}`);
    const got = await client.computeOperations.get(h.RG, h.WS, running);
    assert.equal(got.properties.provisioningState, 'Succeeded');
    assert.equal(got.properties.properties.state, 'Running');
  }));

  test('a name ending in hyphen+digits is refused with 400 and nothing is created', T, h.traced(async () => {
    const bad = `sdk-bad-${Date.now() % 100000}`;
    const mark = h.transcript.length;
    const err = await h.rejection(
      client.computeOperations.beginCreateOrUpdateAndWait(h.RG, h.WS, bad, h.instanceBody()), 'create with a bad name');
    h.created.add(bad);
    h.assertRestError(err, 400, 'create with a bad name');
    const env = h.lastErrorEnvelope(mark, 400);
    assert.equal(err.message, env.message);
    const err2 = await h.rejection(client.computeOperations.get(h.RG, h.WS, bad), 'get of the refused name');
    h.assertRestError(err2, 404, 'get of the refused name');
  }));

  test('an unknown VM size is refused with 400 and nothing is created', T, h.traced(async () => {
    const name = h.uniqueName('v');
    const mark = h.transcript.length;
    const err = await h.rejection(
      h.createInstance(client, name, 'Standard_Nope_v99'), 'create with an unknown VM size');
    h.assertRestError(err, 400, 'create with an unknown VM size');
    const env = h.lastErrorEnvelope(mark, 400);
    assert.equal(err.message, env.message);
    const err2 = await h.rejection(client.computeOperations.get(h.RG, h.WS, name), 'get of the refused instance');
    h.assertRestError(err2, 404, 'get of the refused instance');
  }));

  test('a long-running operation on a missing compute is 404 before any polling', T, h.traced(async () => {
    const missing = h.uniqueName('m');
    const mark = h.transcript.length;
    const err = await h.rejection(client.computeOperations.beginStopAndWait(h.RG, h.WS, missing), 'stop of a missing compute');
    h.assertRestError(err, 404, 'stop of a missing compute');
    assert.equal(err.code, 'ResourceNotFound');
    assert.equal(h.since(mark).length, 1, 'the client should have sent exactly one request');
  }));
});
