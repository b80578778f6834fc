'use strict';
// Delete through the SDK's long-running DELETE (underlyingResourceAction=Delete).
const { describe, test, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/helpers');

const T = { timeout: 180_000 };

describe('delete a compute instance', () => {
  const client = h.makeClient();
  const name = h.uniqueName('d');
  let deleted = false;

  after(() => h.cleanup(client));

  test('beginDeleteAndWait removes it; a later get is 404', T, h.traced(async () => {
    await h.createInstance(client, name);
    const mark = h.transcript.length;
    await client.computeOperations.beginDeleteAndWait(h.RG, h.WS, name, 'Delete');
    deleted = true;

    const ex = h.since(mark);
    const del = ex[0];
    assert.equal(del.method, 'DELETE');
    assert.equal(new URL(del.url).searchParams.get('underlyingResourceAction'), 'Delete');
    assert.equal(del.status, 202, 'delete of an existing instance must answer 202');
    const asyncUrl = del.responseHeaders['azure-asyncoperation'];
    assert.ok(asyncUrl, 'delete answer has no Azure-AsyncOperation header');
    assert.ok(del.responseHeaders.location, 'delete answer has no Location header');
    const polls = ex.filter((e) => e.method === 'GET' && e.url.split('?')[0] === asyncUrl.split('?')[0]);
    assert.ok(polls.length >= 1, 'the client never polled the delete status document');
    assert.equal(polls[polls.length - 1].responseBody.status.toLowerCase(), 'succeeded');

    const err = await h.rejection(client.computeOperations.get(h.RG, h.WS, name), 'get after delete');
    h.assertRestError(err, 404, 'get after delete');
    assert.equal(err.code, 'ResourceNotFound');
  }));

  test('the deleted instance is gone from the list', T, h.traced(async () => {
    assert.ok(deleted, 'delete did not succeed');
    const names = [];
    for await (const c of client.computeOperations.list(h.RG, h.WS)) names.push(c.name);
    assert.ok(!names.includes(name), `${name} is still listed: ${JSON.stringify(names)}`);
  }));

  test('deleting it again succeeds with 204', T, h.traced(async () => {
    assert.ok(deleted, 'delete did not succeed');
    const mark = h.transcript.length;
    await client.computeOperations.beginDeleteAndWait(h.RG, h.WS, name, 'Delete');
    const del = h.since(mark)[0];
    assert.equal(del.method, 'DELETE');
    assert.equal(del.status, 204, 'delete of a missing compute must answer 204');
  }));

  test('the name can be used again after delete', T, h.traced(async () => {
    assert.ok(deleted, 'delete did not succeed');
    const again = await h.createInstance(client, name);
    assert.equal(again.properties.provisioningState, 'Succeeded');
    assert.equal(again.properties.properties.state, 'Running');
  }));
});
