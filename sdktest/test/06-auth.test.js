'use strict';
// Authentication: the bearer token the SDK's credential hands out is what the server checks.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/helpers');

const T = { timeout: 60_000 };

test('the right token is accepted (control)', T, h.traced(async () => {
  const client = h.makeClient();
  const page = await client.computeOperations.list(h.RG, h.WS).byPage().next();
  assert.ok(Array.isArray(page.value), 'list did not return a page');
}));

test('a wrong token is refused with 401 in the error envelope', T, h.traced(async () => {
  const client = h.makeClient(`not-${h.TOKEN}-valid`);
  const mark = h.transcript.length;
  const err = await h.rejection(client.computeOperations.get(h.RG, h.WS, h.uniqueName('u')), 'get with a wrong token');
  h.assertRestError(err, 401, 'get with a wrong token');
  const env = h.lastErrorEnvelope(mark, 401);
  assert.equal(err.code, env.code);
  assert.equal(err.message, env.message);

  const err2 = await h.rejection((async () => {
    for await (const c of client.computeOperations.list(h.RG, h.WS)) void c;
  })(), 'list with a wrong token');
  h.assertRestError(err2, 401, 'list with a wrong token');

  const err3 = await h.rejection(
    client.computeOperations.beginCreateOrUpdateAndWait(h.RG, h.WS, h.uniqueName('u'), h.instanceBody()), 'create with a wrong token');
  h.assertRestError(err3, 401, 'create with a wrong token');
}));

test('a wrong token does not reveal whether a compute exists', T, h.traced(async () => {
  // 401 for a name that exists and for one that does not alike: authentication comes first.
  const good = h.makeClient();
  const name = h.uniqueName('u');
  try {
    await h.createInstance(good, name);
    const bad = h.makeClient('wrong-token');
    const e1 = await h.rejection(bad.computeOperations.get(h.RG, h.WS, name), 'get existing with a wrong token');
    h.assertRestError(e1, 401, 'get existing with a wrong token');
    const e2 = await h.rejection(bad.computeOperations.beginDeleteAndWait(h.RG, h.WS, name, 'Delete'), 'delete with a wrong token');
    h.assertRestError(e2, 401, 'delete with a wrong token');
    const still = await good.computeOperations.get(h.RG, h.WS, name);
    assert.equal(still.properties.properties.state, 'Running');
  } finally {
    await h.cleanup(good, [name]);
  }
}));
