'use strict';
// VM size catalog and usages of the region, through the SDK's location-scoped operations.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/helpers');

const T = { timeout: 60_000 };

test('virtualMachineSizes.list lists the Azure size names with their shape', T, h.traced(async () => {
  const client = h.makeClient();
  const res = await client.virtualMachineSizes.list(h.LOCATION);
  assert.ok(Array.isArray(res.value) && res.value.length > 0, 'no VM sizes');
  const names = res.value.map((s) => s.name);
  for (const want of ['Standard_DS1_v2', 'Standard_D3_v2', 'Standard_B1s']) {
    const s = res.value.find((x) => x.name.toLowerCase() === want.toLowerCase());
    assert.ok(s, `${want} missing from ${JSON.stringify(names)}`);
    assert.equal(typeof s.family, 'string');
    assert.ok(Number.isInteger(s.vCPUs) && s.vCPUs > 0, `${want} vCPUs=${s.vCPUs}`);
    assert.ok(typeof s.memoryGB === 'number' && s.memoryGB > 0, `${want} memoryGB=${s.memoryGB}`);
  }
}));

test('usages.list reports counts per family in the region', T, h.traced(async () => {
  const client = h.makeClient();
  const usages = [];
  for await (const u of client.usages.list(h.LOCATION)) usages.push(u);
  assert.ok(usages.length > 0, 'no usages');
  for (const u of usages) {
    assert.equal(u.unit, 'Count');
    assert.equal(typeof u.name.value, 'string');
    assert.ok(Number.isInteger(u.currentValue) && u.currentValue >= 0);
    assert.ok(Number.isInteger(u.limit) && u.limit >= 0);
  }
}));
