'use strict';
// Create a compute instance with the SDK's long-running create, then read it back.
const { describe, test, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/helpers');

const T = { timeout: 180_000 };

describe('create and get a compute instance', () => {
  const client = h.makeClient();
  const name = h.uniqueName('c');
  let created;

  after(() => h.cleanup(client));

  test('beginCreateOrUpdateAndWait returns it Succeeded and Running', T, h.traced(async () => {
    const mark = h.transcript.length;
    created = await h.createInstance(client, name, 'STANDARD_DS1_V2');

    assert.equal(created.name, name);
    assert.equal(created.id.toLowerCase(), h.computeId(name).toLowerCase());
    assert.equal(created.type, 'Microsoft.MachineLearningServices/workspaces/computes');
    assert.equal(created.location, h.LOCATION);
    assert.equal(created.properties.computeType, 'ComputeInstance');
    assert.equal(created.properties.provisioningState, 'Succeeded');
    assert.equal(created.properties.properties.state, 'Running');
    assert.equal(created.properties.properties.vmSize.toLowerCase(), 'standard_ds1_v2');
    const lastOp = created.properties.properties.lastOperation;
    assert.ok(lastOp, 'properties.properties.lastOperation missing');
    assert.equal(lastOp.operationName, 'Create');
    assert.equal(lastOp.operationStatus, 'Succeeded');

    // The wire, as the facts describe it: PUT -> 201 + Azure-AsyncOperation, body "Creating";
    // the client polls the status document until a terminal status, then GETs the resource.
    const ex = h.since(mark);
    const put = ex[0];
    assert.equal(put.method, 'PUT');
    assert.equal(put.requestBody.properties.computeType, 'ComputeInstance');
    assert.equal(put.status, 201, 'create must answer 201');
    const asyncUrl = put.responseHeaders['azure-asyncoperation'];
    assert.ok(asyncUrl, 'create answer has no Azure-AsyncOperation header');
    assert.equal(new URL(asyncUrl).origin, new URL(h.SERVER_URL).origin, 'Azure-AsyncOperation must point at this server');
    assert.equal(put.responseBody.properties.provisioningState, 'Creating');
    const polls = ex.filter((e) => e.method === 'GET' && e.url.split('?')[0] === asyncUrl.split('?')[0]);
    assert.ok(polls.length >= 1, 'the client never polled the Azure-AsyncOperation URL');
    for (const p of polls) {
      assert.equal(p.status, 200, `status document answered ${p.status}`);
      assert.equal(typeof p.responseBody.status, 'string', 'status document has no string status');
    }
    assert.equal(polls[polls.length - 1].responseBody.status.toLowerCase(), 'succeeded');
    const last = ex[ex.length - 1];
    assert.equal(last.method, 'GET');
    assert.equal(new URL(last.url).pathname.toLowerCase(), h.computeId(name).toLowerCase(), 'final GET was not the resource URL');
    assert.equal(last.status, 200);
  }));

  test('get returns the same instance', T, h.traced(async () => {
    assert.ok(created, 'create did not succeed');
    const got = await client.computeOperations.get(h.RG, h.WS, name);
    assert.equal(got.name, name);
    assert.equal(got.id, created.id);
    assert.equal(got.type, created.type);
    assert.equal(got.location, created.location);
    assert.equal(got.properties.computeType, 'ComputeInstance');
    assert.equal(got.properties.provisioningState, 'Succeeded');
    assert.equal(got.properties.properties.state, 'Running');
    assert.equal(got.properties.properties.vmSize, created.properties.properties.vmSize);
    assert.deepEqual(got.properties.createdOn, created.properties.createdOn);
    assert.ok(got.properties.createdOn instanceof Date && !isNaN(got.properties.createdOn), 'createdOn is not a date');
  }));

  test('list shows the new instance exactly once', T, h.traced(async () => {
    assert.ok(created, 'create did not succeed');
    const names = [];
    for await (const c of client.computeOperations.list(h.RG, h.WS)) names.push(c.name);
    assert.equal(names.filter((n) => n === name).length, 1, `expected ${name} once in the list, got ${JSON.stringify(names)}`);
  }));

  test('a second PUT of the same body updates in place (200) and leaves it Running', T, h.traced(async () => {
    assert.ok(created, 'create did not succeed');
    const mark = h.transcript.length;
    const again = await client.computeOperations.beginCreateOrUpdateAndWait(h.RG, h.WS, name, h.instanceBody('STANDARD_DS1_V2'));
    const put = h.since(mark)[0];
    assert.equal(put.method, 'PUT');
    assert.equal(put.status, 200, 'a PUT of an existing compute must answer 200 (update), not 201');
    assert.equal(again.name, name);
    assert.equal(again.properties.provisioningState, 'Succeeded');
    const got = await client.computeOperations.get(h.RG, h.WS, name);
    assert.equal(got.properties.properties.state, 'Running');
    assert.deepEqual(got.properties.createdOn, created.properties.createdOn);
  }));
});
