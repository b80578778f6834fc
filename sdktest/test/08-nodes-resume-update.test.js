'use strict';
// More of what SDK users do: list an instance's nodes, resume a long-running operation from a
// serialized poller in a fresh client, and try to change an immutable property with a PUT.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/helpers');

const T = { timeout: 180_000 };
const NODE_STATES = ['idle', 'running', 'preparing', 'unusable', 'leaving', 'preempted'];

async function nodesOf(client, name) {
  const nodes = [];
  for await (const n of client.computeOperations.listNodes(h.RG, h.WS, name)) nodes.push(n);
  return nodes;
}

describe('nodes, resumed pollers and immutable settings', () => {
  const client = h.makeClient();
  const name = h.uniqueName('n');

  before(async () => {
    const c = await h.createInstance(client, name, 'Standard_DS1_v2');
    assert.equal(c.properties.properties.state, 'Running');
  }, T);
  after(() => h.cleanup(client));

  test('listNodes of a Running instance is its one node', T, h.traced(async () => {
    const nodes = await nodesOf(client, name);
    assert.equal(nodes.length, 1, `expected 1 node, got ${JSON.stringify(nodes)}`);
    const [n] = nodes;
    assert.equal(typeof n.nodeId, 'string');
    assert.ok(n.nodeId.length > 0, 'empty nodeId');
    assert.equal(typeof n.privateIpAddress, 'string');
    assert.ok(n.privateIpAddress.length > 0, 'empty privateIpAddress');
    assert.ok(NODE_STATES.includes(n.nodeState), `nodeState ${n.nodeState} is not one of ${NODE_STATES}`);
  }));

  test('a stop resumed from a serialized poller in a new client completes; a Stopped instance has no nodes', T, h.traced(async () => {
    const poller = await client.computeOperations.beginStop(h.RG, h.WS, name);
    const saved = poller.toString();
    const other = h.makeClient();
    await other.computeOperations.beginStopAndWait(h.RG, h.WS, name, { resumeFrom: saved });
    const got = await other.computeOperations.get(h.RG, h.WS, name);
    assert.equal(got.properties.properties.state, 'Stopped');
    assert.equal(got.properties.properties.lastOperation.operationName, 'Stop');
    assert.deepEqual(await nodesOf(client, name), []);
    await client.computeOperations.beginStartAndWait(h.RG, h.WS, name);
    assert.equal((await nodesOf(client, name)).length, 1);
  }));

  test('a PUT that changes vmSize is refused (immutable) and changes nothing', T, h.traced(async () => {
    const mark = h.transcript.length;
    const err = await h.rejection(
      client.computeOperations.beginCreateOrUpdateAndWait(h.RG, h.WS, name, h.instanceBody('Standard_D3_v2')), 'vmSize change');
    assert.equal(err.name, 'RestError');
    assert.ok([400, 409].includes(err.statusCode), `expected 400 or 409, got ${err.statusCode}: ${err.message}`);
    const env = h.lastErrorEnvelope(mark, err.statusCode);
    assert.equal(err.message, env.message);
    const got = await client.computeOperations.get(h.RG, h.WS, name);
    assert.equal(got.properties.properties.vmSize.toLowerCase(), 'standard_ds1_v2');
    assert.equal(got.properties.properties.state, 'Running');
  }));
});
