'use strict';
// Command jobs on a compute instance through the SDK's jobs operations: an environment version
// first (2.1.1 requires a command job's environmentId), then createOrUpdate (201, then
// 200 on an update), get until Completed, list (paged), beginCancel (202 + Location) until
// Canceled, beginDelete (archives); code and environment versions (codeVersions,
// environmentVersions) with the code uploaded through startPendingUpload (not in 2.1.1: sent
// raw); and what is refused (other job types, distribution, conda files) as RestError 400.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const h = require('../lib/helpers');

const T = { timeout: 240_000 };
const STATUSES = ['NotStarted', 'Queued', 'Preparing', 'Running', 'Finalizing', 'CancelRequested', 'Completed', 'Failed', 'Canceled'];
const TERMINAL = new Set(['Completed', 'Failed', 'Canceled']);
const suffix = () => crypto.randomBytes(4).toString('hex');

// The raw body the server sent for the last recorded GET of a job (ComputeHub's read-only
// extensions, exitCode and error, are read from the wire, not from what the SDK kept).
function lastJobOnWire(mark, name) {
  const hits = h.since(mark).filter((e) => e.method === 'GET' && e.status === 200 &&
    new URL(e.url).pathname.toLowerCase().endsWith('/jobs/' + name.toLowerCase()));
  assert.ok(hits.length > 0, `no GET of job ${name} was recorded`);
  return hits[hits.length - 1].responseBody;
}

describe('command jobs through the official client', () => {
  const client = h.makeClient();
  const ci = h.uniqueName('j');
  const computeId = h.computeId(ci);
  const hello = 'sdk-hello-' + suffix();
  const long = 'sdk-long-' + suffix();
  const coded = 'sdk-code-' + suffix();
  const codeName = 'sdk-code-' + suffix();
  const envName = 'sdk-env-' + suffix();
  const envPath = `${h.workspaceId()}/environments/${envName}/versions/1`;

  const commandJob = (command, extra = {}) => ({
    properties: { jobType: 'Command', command, computeId, environmentId: envPath, experimentName: 'sdk', ...extra },
  });
  async function untilTerminal(name, timeoutMs = 180_000) {
    return h.waitFor(`job ${name} to end`, async () => {
      const j = await client.jobs.get(h.RG, h.WS, name);
      return TERMINAL.has(j.properties.status) ? j : null;
    }, timeoutMs);
  }

  before(async () => {
    const c = await h.createInstance(client, ci);
    assert.equal(c.properties.properties.state, 'Running');
  }, T);
  after(() => h.cleanup(client));

  test('environmentVersions.createOrUpdate and get: the instance\'s own software', T, h.traced(async () => {
    // No image: the runtime's default, the image the instance runs.
    const mark = h.transcript.length;
    const env = await client.environmentVersions.createOrUpdate(h.RG, h.WS, envName, '1', { properties: { description: 'sdktest environment' } });
    assert.equal(h.since(mark).find((e) => e.method === 'PUT').status, 201);
    assert.equal(env.name, '1');
    assert.equal(env.type, 'Microsoft.MachineLearningServices/workspaces/environments/versions');
    const got = await client.environmentVersions.get(h.RG, h.WS, envName, '1');
    assert.equal(got.id.toLowerCase(), envPath.toLowerCase());
    assert.equal(got.properties.description, 'sdktest environment');
    const names = [];
    for await (const v of client.environmentVersions.list(h.RG, h.WS, envName)) names.push(v.name);
    assert.deepEqual(names, ['1']);
  }));

  test('createOrUpdate submits a command job: 201 with the job and its status', T, h.traced(async () => {
    const mark = h.transcript.length;
    const got = await client.jobs.createOrUpdate(h.RG, h.WS, hello, commandJob('echo hello-from-the-sdk "$GREETING" ${{inputs.n}}', {
      displayName: 'hello from the SDK',
      description: 'made by sdktest',
      environmentVariables: { GREETING: 'hi' },
      inputs: { n: { jobInputType: 'literal', value: '42' } },
      tags: { suite: 'sdk' },
    }));
    const put = h.since(mark).find((e) => e.method === 'PUT');
    assert.equal(put.status, 201, 'a new job must answer 201');
    assert.equal(got.name, hello);
    assert.equal(got.id.toLowerCase(), `${h.workspaceId()}/jobs/${hello}`.toLowerCase());
    assert.equal(got.type, 'Microsoft.MachineLearningServices/workspaces/jobs');
    const p = got.properties;
    assert.equal(p.jobType, 'Command');
    assert.ok(STATUSES.includes(p.status), `status ${p.status} is not one of Azure's`);
    assert.equal(p.computeId.toLowerCase(), computeId.toLowerCase());
    assert.equal(p.experimentName, 'sdk');
    assert.equal(p.displayName, 'hello from the SDK');
    assert.equal(p.description, 'made by sdktest');
    assert.deepEqual(p.tags, { suite: 'sdk' });
    assert.deepEqual(p.environmentVariables, { GREETING: 'hi' });
    assert.equal(p.inputs.n.jobInputType, 'literal');
    assert.equal(p.inputs.n.value, '42');
    assert.equal(p.isArchived, false);
    assert.ok(p.services && p.services.Studio && p.services.Studio.endpoint, 'services.Studio.endpoint missing');
    assert.equal(new URL(p.services.Studio.endpoint).origin, new URL(h.SERVER_URL).origin);
    assert.ok(got.systemData && got.systemData.createdAt, 'systemData.createdAt missing');
  }));

  test('get follows it to Completed, exit code 0; the log has its output', T, h.traced(async () => {
    const mark = h.transcript.length;
    const j = await untilTerminal(hello);
    const wire = lastJobOnWire(mark, hello);
    assert.equal(j.properties.status, 'Completed', `ended ${j.properties.status}: ${JSON.stringify(wire.properties.error)}`);
    assert.equal(wire.properties.exitCode, 0);
    assert.equal(wire.properties.error ?? null, null);
    assert.ok(wire.properties.startTime && wire.properties.endTime, 'startTime and endTime are set once it ended');
    assert.ok(Date.parse(wire.properties.endTime) >= Date.parse(wire.properties.startTime));
    const log = await h.raw('GET', `${h.workspaceId()}/jobs/${hello}/logs?stream=stdout`);
    assert.equal(log.status, 200);
    assert.match(log.headers.get('content-type'), /^text\/plain/);
    assert.match(log.text, /^hello-from-the-sdk hi 42$/m);
  }));

  test('list (every page, page size 2) has it; ArchivedOnly does not', T, h.traced(async () => {
    // More jobs than a page holds, so that the client follows nextLink.
    for (const n of ['sdk-page1-' + suffix(), 'sdk-page2-' + suffix()]) {
      await client.jobs.createOrUpdate(h.RG, h.WS, n, commandJob('true'));
    }
    const mark = h.transcript.length;
    const names = [];
    for await (const j of client.jobs.list(h.RG, h.WS)) names.push(j.name);
    assert.ok(names.includes(hello), `list: ${names}`);
    assert.equal(new Set(names).size, names.length, `a job listed twice: ${names}`);
    const pages = h.since(mark).filter((e) => e.method === 'GET');
    assert.ok(pages.length >= 2, `the client read ${pages.length} page(s) of ${names.length} jobs (page size 2)`);
    const archived = [];
    for await (const j of client.jobs.list(h.RG, h.WS, { listViewType: 'ArchivedOnly' })) archived.push(j.name);
    assert.ok(!archived.includes(hello), `ArchivedOnly lists an active job: ${archived}`);
  }));

  test('createOrUpdate of an existing job updates what may change (200) and refuses a new command (400)', T, h.traced(async () => {
    const body = commandJob('echo hello-from-the-sdk "$GREETING" ${{inputs.n}}', {
      displayName: 'hello again',
      description: 'changed',
      environmentVariables: { GREETING: 'hi' },
      inputs: { n: { jobInputType: 'literal', value: '42' } },
      tags: { suite: 'sdk', round: '2' },
    });
    const mark = h.transcript.length;
    const got = await client.jobs.createOrUpdate(h.RG, h.WS, hello, body);
    assert.equal(h.since(mark).find((e) => e.method === 'PUT').status, 200);
    assert.deepEqual(got.properties.tags, { suite: 'sdk', round: '2' });
    assert.equal(got.properties.description, 'changed');
    assert.equal(got.properties.displayName, 'hello again');
    assert.equal(got.properties.status, 'Completed');
    const m2 = h.transcript.length;
    const err = await h.rejection(client.jobs.createOrUpdate(h.RG, h.WS, hello,
      { properties: { ...body.properties, command: 'echo something else' } }), 'changing the command');
    h.assertRestError(err, 400, 'changing the command');
    const env = h.lastErrorEnvelope(m2, 400);
    assert.equal(err.code, env.code);
    assert.equal((await client.jobs.get(h.RG, h.WS, hello)).properties.command, body.properties.command);
  }));

  // What an SDK user writes to change a tag: get, change, createOrUpdate. The SDK sends back what
  // it read, with its own defaults filled in (resources.shmSize "2g") and the server's services.
  test('a job read with get and sent back changed (the SDK\'s round trip) is accepted', T, h.traced(async () => {
    const before = await client.jobs.get(h.RG, h.WS, hello);
    const mark = h.transcript.length;
    const got = await client.jobs.createOrUpdate(h.RG, h.WS, hello,
      { properties: { ...before.properties, tags: { suite: 'sdk', round: '3' } } });
    assert.equal(h.since(mark).find((e) => e.method === 'PUT').status, 200);
    assert.deepEqual(got.properties.tags, { suite: 'sdk', round: '3' });
    assert.equal(got.properties.command, before.properties.command);
  }));

  test('beginCancelAndWait on a running job: 202 + Location, then Canceled', T, h.traced(async () => {
    await client.jobs.createOrUpdate(h.RG, h.WS, long, commandJob('echo about-to-sleep; sleep 60; echo never'));
    await h.waitFor(`${long} Running`, async () => (await client.jobs.get(h.RG, h.WS, long)).properties.status === 'Running', 120_000);
    const mark = h.transcript.length;
    await client.jobs.beginCancelAndWait(h.RG, h.WS, long, { updateIntervalInMs: 500 });
    const post = h.since(mark).find((e) => e.method === 'POST');
    assert.match(new URL(post.url).pathname, new RegExp(`/jobs/${long}/cancel$`));
    assert.equal(post.status, 202);
    assert.ok(post.responseHeaders.location, 'cancel answered without Location');
    assert.equal(new URL(post.responseHeaders.location).pathname.toLowerCase(), `${h.workspaceId()}/jobs/${long}`.toLowerCase());
    const j = await untilTerminal(long, 60_000);
    assert.equal(j.properties.status, 'Canceled');
    const log = await h.raw('GET', `${h.workspaceId()}/jobs/${long}/logs`);
    assert.match(log.text, /about-to-sleep/, 'the log up to the cancel is kept');
    assert.doesNotMatch(log.text, /never/);
    // Canceling an ended job is accepted and changes nothing.
    await client.jobs.beginCancelAndWait(h.RG, h.WS, long);
    assert.equal((await client.jobs.get(h.RG, h.WS, long)).properties.status, 'Canceled');
  }));

  test('codeVersions: uploaded code, create, get; a job runs in it', T, h.traced(async () => {
    // The code: a tarball uploaded to the one-time URL startPendingUpload gives.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdk-code-'));
    fs.writeFileSync(path.join(dir, 'greeting.txt'), 'greetings-from-the-code\n');
    const tarball = execFileSync('tar', ['-czf', '-', '-C', dir, 'greeting.txt']);
    fs.rmSync(dir, { recursive: true, force: true });
    const codePath = `${h.workspaceId()}/codes/${codeName}/versions/1`;
    const up = await h.raw('POST', `${codePath}/startPendingUpload`, { body: { pendingUploadType: 'TemporaryBlobReference' } });
    assert.equal(up.status, 200, up.text);
    const ref = up.json.blobReferenceForConsumption;
    assert.ok(ref && ref.blobUri && ref.credential && ref.credential.sasUri, `no blob reference: ${up.text}`);
    const put = await h.raw('PUT', ref.credential.sasUri, { token: null, apiVersion: null, body: new Uint8Array(tarball), headers: { 'x-ms-blob-type': 'BlockBlob' } });
    assert.equal(put.status, 201, put.text);

    const code = await client.codeVersions.createOrUpdate(h.RG, h.WS, codeName, '1', { properties: { codeUri: ref.blobUri, description: 'sdktest code' } });
    assert.equal(code.name, '1');
    assert.equal(code.properties.codeUri, ref.blobUri);
    const gotCode = await client.codeVersions.get(h.RG, h.WS, codeName, '1');
    assert.equal(gotCode.id.toLowerCase(), codePath.toLowerCase());
    assert.equal(gotCode.properties.description, 'sdktest code');

    const sent = await client.jobs.createOrUpdate(h.RG, h.WS, coded, commandJob('cat greeting.txt', { codeId: codePath }));
    assert.equal(sent.properties.codeId.toLowerCase(), codePath.toLowerCase());
    assert.equal(sent.properties.environmentId.toLowerCase(), envPath.toLowerCase());
    const j = await untilTerminal(coded);
    assert.equal(j.properties.status, 'Completed');
    const log = await h.raw('GET', `${h.workspaceId()}/jobs/${coded}/logs?stream=stdout`);
    assert.match(log.text, /^greetings-from-the-code$/m);
  }));

  test('what is not run is refused with RestError 400 and a code', T, h.traced(async () => {
    const cases = [
      ['a Pipeline job', { properties: { jobType: 'Pipeline', computeId, jobs: {} } }],
      ['distribution', commandJob('true', { distribution: { distributionType: 'PyTorch', processCountPerInstance: 2 } })],
      ['an unknown compute', commandJob('true', { computeId: h.computeId('sdk-nosuchinstance') })],
      ['an undeclared input', commandJob('echo ${{inputs.missing}}')],
    ];
    for (const [what, body] of cases) {
      const name = 'sdk-bad-' + suffix();
      const mark = h.transcript.length;
      const err = await h.rejection(client.jobs.createOrUpdate(h.RG, h.WS, name, body), what);
      h.assertRestError(err, 400, what);
      const e = h.lastErrorEnvelope(mark, 400);
      assert.equal(err.code, e.code, `${what}: the SDK surfaces the server's code`);
      const miss = await h.rejection(client.jobs.get(h.RG, h.WS, name), `${what}: get`);
      h.assertRestError(miss, 404, `${what}: nothing was created`);
    }
    const mark = h.transcript.length;
    const err = await h.rejection(client.environmentVersions.createOrUpdate(h.RG, h.WS, envName, '2',
      { properties: { condaFile: 'dependencies: [numpy]' } }), 'a conda file');
    h.assertRestError(err, 400, 'a conda file');
    assert.equal(err.code, h.lastErrorEnvelope(mark, 400).code);
  }));

  test('beginDeleteAndWait archives the job: get shows isArchived, ArchivedOnly lists it', T, h.traced(async () => {
    await client.jobs.beginDeleteAndWait(h.RG, h.WS, hello, { updateIntervalInMs: 500 });
    const j = await client.jobs.get(h.RG, h.WS, hello);
    assert.equal(j.properties.isArchived, true);
    const archived = [];
    for await (const x of client.jobs.list(h.RG, h.WS, { listViewType: 'ArchivedOnly' })) archived.push(x.name);
    assert.ok(archived.includes(hello), `ArchivedOnly: ${archived}`);
    const active = [];
    for await (const x of client.jobs.list(h.RG, h.WS)) active.push(x.name);
    assert.ok(!active.includes(hello), `the default (ActiveOnly) list still has the archived job: ${active}`);
  }));
});
