'use strict';
// Quota as SDK users see it: usages count an instance's vCPUs against its VM family and the
// regional total; stopping keeps them (so it can always start again), deleting gives them back;
// quotas.update lowers a family limit and creation beyond it is refused.
const { describe, test, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/helpers');

const T = { timeout: 180_000 };
const SIZE = 'Standard_DS1_v2';

async function sizeInfo(client) {
  const res = await client.virtualMachineSizes.list(h.LOCATION);
  const s = res.value.find((x) => x.name.toLowerCase() === SIZE.toLowerCase());
  assert.ok(s, `${SIZE} is not in the catalog`);
  return s;
}

async function usage(client, family) {
  const all = [];
  for await (const u of client.usages.list(h.LOCATION)) all.push(u);
  const fam = all.find((u) => u.name && u.name.value === family);
  const total = all.find((u) => /totalCores/i.test(u.type || '') || /\/totalCores$/i.test(u.id || ''));
  assert.ok(fam, `no usage for family ${family}: ${JSON.stringify(all.map((u) => u.name && u.name.value))}`);
  assert.ok(total, 'no regional total cores usage');
  return { family: fam.currentValue, total: total.currentValue };
}

async function quotaOf(client, family) {
  const all = [];
  for await (const q of client.quotas.list(h.LOCATION)) all.push(q);
  const q = all.find((x) => (x.name && x.name.value === family) || /\/quotas\/(.*)$/.exec(x.id || '')?.[1] === family);
  assert.ok(q, `no quota for family ${family}: ${JSON.stringify(all.map((x) => x.id))}`);
  return q;
}

describe('quota and usages', () => {
  const client = h.makeClient();
  let restore;

  after(async () => {
    await h.cleanup(client);
    if (restore) {
      try {
        await client.quotas.update(h.LOCATION, { value: [restore] });
      } catch (err) {
        process.stderr.write(`could not restore quota ${restore.id}: ${err.message}\n`);
      }
    }
  });

  test('usages: create adds the vCPUs, stop keeps them, delete gives them back', T, h.traced(async () => {
    const size = await sizeInfo(client);
    const base = await usage(client, size.family);
    const name = h.uniqueName('q');
    await h.createInstance(client, name, SIZE);
    const running = await usage(client, size.family);
    assert.equal(running.family, base.family + size.vCPUs, `family usage after create (base ${base.family})`);
    assert.equal(running.total, base.total + size.vCPUs, `total usage after create (base ${base.total})`);
    await client.computeOperations.beginStopAndWait(h.RG, h.WS, name);
    const stopped = await usage(client, size.family);
    assert.equal(stopped.family, running.family, 'stopping must not give the cores back');
    assert.equal(stopped.total, running.total, 'stopping must not give the cores back');
    await client.computeOperations.beginDeleteAndWait(h.RG, h.WS, name, 'Delete');
    const after = await usage(client, size.family);
    assert.equal(after.family, base.family, 'delete must give the family cores back');
    assert.equal(after.total, base.total, 'delete must give the total cores back');
  }));

  test('quotas.update lowers a family limit; creation beyond it is refused; a stopped instance can start again', T, h.traced(async () => {
    const size = await sizeInfo(client);
    const q = await quotaOf(client, size.family);
    assert.equal(q.unit, 'Count');
    assert.ok(Number.isInteger(q.limit) && q.limit > 0, `limit ${q.limit}`);
    const base = await usage(client, size.family);
    const original = { id: q.id, type: q.type, limit: q.limit, unit: 'Count' };

    const want = base.family + size.vCPUs; // room for exactly one more instance
    const res = await client.quotas.update(h.LOCATION, { value: [{ id: q.id, type: q.type, limit: want, unit: 'Count' }] });
    restore = original;
    assert.ok(Array.isArray(res.value) && res.value.length === 1, `update answer: ${JSON.stringify(res)}`);
    assert.equal(res.value[0].status, 'Success');
    assert.equal(res.value[0].limit, want);
    assert.equal((await quotaOf(client, size.family)).limit, want, 'the new limit is not listed');

    const first = h.uniqueName('q');
    await h.createInstance(client, first, SIZE);
    const second = h.uniqueName('q');
    const mark = h.transcript.length;
    const err = await h.rejection(h.createInstance(client, second, SIZE), 'create beyond the family quota');
    assert.equal(err.name, 'RestError', `expected a RestError, got ${err.message}`);
    assert.ok(err.statusCode >= 400 && err.statusCode < 500 && ![401, 404].includes(err.statusCode),
      `expected a 4xx refusal, got ${err.statusCode}: ${err.message}`);
    const env = h.lastErrorEnvelope(mark, err.statusCode);
    assert.equal(err.message, env.message);
    const gone = await h.rejection(client.computeOperations.get(h.RG, h.WS, second), 'get of the refused instance');
    h.assertRestError(gone, 404, 'get of the refused instance');

    // Stop keeps the cores, so the instance can start again even with the quota full.
    await client.computeOperations.beginStopAndWait(h.RG, h.WS, first);
    await client.computeOperations.beginStartAndWait(h.RG, h.WS, first);
    const got = await client.computeOperations.get(h.RG, h.WS, first);
    assert.equal(got.properties.properties.state, 'Running');

    const back = await client.quotas.update(h.LOCATION, { value: [restore] });
    assert.equal(back.value[0].status, 'Success');
    restore = undefined;
  }));
});
