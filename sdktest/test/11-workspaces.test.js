'use strict';
// The bootstrapped workspace as the SDK's workspaces operations see it, and computes of a
// workspace that does not exist.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/helpers');

const T = { timeout: 60_000 };
const WS_ID = `/subscriptions/${h.SUB}/resourceGroups/${h.RG}/providers/Microsoft.MachineLearningServices/workspaces/${h.WS}`;

test('workspaces.get returns the bootstrapped workspace', T, h.traced(async () => {
  const client = h.makeClient();
  const w = await client.workspaces.get(h.RG, h.WS);
  assert.equal(w.name, h.WS);
  assert.equal(w.id.toLowerCase(), WS_ID.toLowerCase());
  assert.equal(w.type, 'Microsoft.MachineLearningServices/workspaces');
  assert.equal(w.location, h.LOCATION);
  assert.equal(w.provisioningState, 'Succeeded');
}));

test('workspaces.listByResourceGroup and listBySubscription include it', T, h.traced(async () => {
  const client = h.makeClient();
  const byRg = [];
  for await (const w of client.workspaces.listByResourceGroup(h.RG)) byRg.push(w.name);
  assert.ok(byRg.includes(h.WS), `listByResourceGroup: ${JSON.stringify(byRg)}`);
  const bySub = [];
  for await (const w of client.workspaces.listBySubscription()) bySub.push(w.id.toLowerCase());
  assert.ok(bySub.includes(WS_ID.toLowerCase()), `listBySubscription: ${JSON.stringify(bySub)}`);
}));

test('computes of a missing workspace: 404 ResourceNotFound for get and list', T, h.traced(async () => {
  const client = h.makeClient();
  const ws = `nows${h.uniqueName('w').slice(4)}`;
  const e1 = await h.rejection(client.computeOperations.get(h.RG, ws, h.uniqueName('w')), 'get in a missing workspace');
  h.assertRestError(e1, 404, 'get in a missing workspace');
  assert.equal(e1.code, 'ResourceNotFound');
  const e2 = await h.rejection((async () => {
    for await (const c of client.computeOperations.list(h.RG, ws)) void c;
  })(), 'list of a missing workspace');
  h.assertRestError(e2, 404, 'list of a missing workspace');
  assert.equal(e2.code, 'ResourceNotFound');
  const e3 = await h.rejection(
    client.computeOperations.beginCreateOrUpdateAndWait(h.RG, ws, h.uniqueName('w'), h.instanceBody()), 'create in a missing workspace');
  h.assertRestError(e3, 404, 'create in a missing workspace');
}));
