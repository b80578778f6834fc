'use strict';
// The client under test is the official package, at the pinned version, unchanged, built the
// way an Azure user builds it with only the endpoint changed.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/helpers');

test('the official @azure/arm-machinelearning is installed at exactly 2.1.1', () => {
  const main = require.resolve('@azure/arm-machinelearning');
  const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(main), '..', 'package.json'), 'utf8'));
  assert.equal(pkg.name, '@azure/arm-machinelearning');
  assert.equal(pkg.version, '2.1.1');
  const ours = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
  assert.equal(ours.dependencies['@azure/arm-machinelearning'], '2.1.1', 'dependency must be pinned exactly');
});

test('requests go to the configured endpoint over https with a bearer token and the SDK user agent', { timeout: 60_000 }, h.traced(async () => {
  const client = h.makeClient();
  const mark = h.transcript.length;
  const list = [];
  for await (const c of client.computeOperations.list(h.RG, h.WS)) list.push(c);
  const sent = h.since(mark);
  assert.ok(sent.length >= 1, 'the list call sent no request');
  const first = sent[0];
  assert.equal(new URL(first.url).origin, new URL(h.SERVER_URL).origin, 'request did not go to CHUB_SERVER');
  assert.equal(new URL(first.url).protocol, 'https:');
  assert.equal(first.requestHeaders.authorization, 'Bearer <redacted>', 'no bearer token was sent');
  assert.match(first.requestHeaders['user-agent'], /azsdk-js-arm-machinelearning\/2\.1\.1/);
  assert.equal(
    new URL(first.url).pathname,
    `/subscriptions/${h.SUB}/resourceGroups/${h.RG}/providers/Microsoft.MachineLearningServices/workspaces/${h.WS}/computes`,
  );
  assert.ok(new URL(first.url).searchParams.get('api-version'), 'api-version query parameter missing');
  assert.equal(first.status, 200);
  assert.ok(Array.isArray(first.responseBody.value), 'list answer has no value array');
}));
