'use strict';
// Listing across pages: run.sh starts the server with --page-size 2 (exported as CHUB_PAGE_SIZE),
// so three instances need at least two pages, which the SDK must follow through nextLink.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { getContinuationToken } = require('@azure/arm-machinelearning');
const h = require('../lib/helpers');

const T = { timeout: 300_000 };
const PAGE_SIZE = Number(process.env.CHUB_PAGE_SIZE || 0);

function isListUrl(url) {
  return new URL(url).pathname.toLowerCase().endsWith(`/workspaces/${h.WS}/computes`.toLowerCase());
}

describe('list computes across more than one page', () => {
  const client = h.makeClient();
  const names = [h.uniqueName('l'), h.uniqueName('l'), h.uniqueName('l')];

  before(async () => {
    for (const n of names) await h.createInstance(client, n);
  }, T);
  after(() => h.cleanup(client));

  test('the server runs with a small page size', () => {
    assert.ok(PAGE_SIZE > 0 && PAGE_SIZE < names.length, `CHUB_PAGE_SIZE must be set below ${names.length} (run.sh sets 2), is ${PAGE_SIZE}`);
  });

  test('for await over list sees every instance once, following nextLink', T, h.traced(async () => {
    const mark = h.transcript.length;
    const seen = [];
    for await (const c of client.computeOperations.list(h.RG, h.WS)) seen.push(c);
    const seenNames = seen.map((c) => c.name);
    for (const n of names) assert.ok(seenNames.includes(n), `${n} missing from list ${JSON.stringify(seenNames)}`);
    assert.equal(new Set(seen.map((c) => c.id.toLowerCase())).size, seen.length, `duplicate ids across pages: ${JSON.stringify(seenNames)}`);
    for (const c of seen) {
      assert.equal(c.type, 'Microsoft.MachineLearningServices/workspaces/computes');
      assert.ok(c.properties && c.properties.computeType, `${c.name} has no computeType`);
    }
    for (const n of names) {
      const c = seen.find((x) => x.name === n);
      assert.equal(c.properties.computeType, 'ComputeInstance');
      assert.equal(c.properties.provisioningState, 'Succeeded');
      assert.equal(c.properties.properties.state, 'Running');
    }

    const pages = h.since(mark).filter((e) => e.method === 'GET' && isListUrl(e.url));
    assert.ok(pages.length >= 2, `expected the SDK to fetch at least 2 pages, it fetched ${pages.length}`);
    // ceil(n/size) pages; one more (empty) page is tolerated when n is a multiple of the size.
    const want = Math.ceil(seen.length / PAGE_SIZE);
    const allowed = seen.length % PAGE_SIZE === 0 ? [want, want + 1] : [want];
    assert.ok(allowed.includes(pages.length), `${seen.length} items in pages of ${PAGE_SIZE} took ${pages.length} page requests`);
    for (const [i, p] of pages.entries()) {
      assert.equal(p.status, 200, `page ${i} answered ${p.status}`);
      assert.ok(Array.isArray(p.responseBody.value), `page ${i} has no value array`);
      assert.ok(p.responseBody.value.length <= PAGE_SIZE, `page ${i} has ${p.responseBody.value.length} items, page size is ${PAGE_SIZE}`);
      const isLast = i === pages.length - 1;
      if (!isLast) {
        assert.equal(typeof p.responseBody.nextLink, 'string', `page ${i} of ${pages.length} has no nextLink`);
        assert.equal(new URL(p.responseBody.nextLink).origin, new URL(h.SERVER_URL).origin, 'nextLink must be an absolute URL on this server');
      } else {
        assert.ok(!p.responseBody.nextLink, `last page still has a nextLink: ${p.responseBody.nextLink}`);
      }
    }
  }));

  test('byPage pages are at most the page size, and resuming from a continuation token gives the rest', T, h.traced(async () => {
    const all = [];
    const pages = [];
    for await (const page of client.computeOperations.list(h.RG, h.WS).byPage()) {
      pages.push(page);
      all.push(...page.map((c) => c.name));
    }
    assert.ok(pages.length >= 2, `expected at least 2 pages, got ${pages.length}`);
    for (const p of pages) assert.ok(p.length <= PAGE_SIZE, `a page has ${p.length} items`);
    assert.equal(pages[0].length, PAGE_SIZE, 'the first page must be full');
    const token = getContinuationToken(pages[0]);
    assert.equal(typeof token, 'string', 'the first page carries no continuation token (nextLink)');

    const resumed = [];
    for await (const page of client.computeOperations.list(h.RG, h.WS).byPage({ continuationToken: token })) {
      resumed.push(...page.map((c) => c.name));
    }
    assert.deepEqual([...pages[0].map((c) => c.name), ...resumed].sort(), [...all].sort());
  }));

  test('the $skip of a nextLink, passed as the skip option, gives the same next page', T, h.traced(async () => {
    const iter = client.computeOperations.list(h.RG, h.WS).byPage();
    const first = (await iter.next()).value;
    const second = (await iter.next()).value;
    assert.ok(first && second, 'expected two pages');
    const nextLink = getContinuationToken(first);
    assert.equal(typeof nextLink, 'string', 'the first page has no nextLink');
    const skip = new URL(nextLink).searchParams.get('$skip');
    assert.ok(skip, `nextLink has no $skip parameter: ${nextLink}`);
    const mark = h.transcript.length;
    const viaSkip = [];
    for await (const page of client.computeOperations.list(h.RG, h.WS, { skip }).byPage()) {
      viaSkip.push(page.map((c) => c.name));
      break;
    }
    const req = h.since(mark)[0];
    assert.equal(new URL(req.url).searchParams.get('$skip'), skip, 'the SDK did not send $skip');
    assert.deepEqual(viaSkip[0], second.map((c) => c.name));
  }));
});
