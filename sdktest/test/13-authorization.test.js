'use strict';
// Role-based access as the official @azure/arm-authorization 9.0.0 client drives it: role
// definitions at a scope (all, and `$filter=roleName eq '...'`), one definition by id, and a role
// assignment's whole life (create, get, listForScope, delete) for a user made for the test.
// The client sends its own Microsoft.Authorization api-version and scope-prefixed paths with a
// double slash (`{endpoint}//subscriptions/...`); the server takes both as Azure does.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { AuthorizationManagementClient } = require('@azure/arm-authorization');
const h = require('../lib/helpers');

const T = { timeout: 60_000 };
const SCOPE = h.workspaceId();
const READER_ID = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
const READER_DEF = `/providers/Microsoft.Authorization/roleDefinitions/${READER_ID}`;

// Records this client's exchanges into the shared transcript, so h.traced shows them on failure.
const recorder = {
  name: 'chubSdktestAuthzRecorder',
  async sendRequest(request, next) {
    const entry = { at: new Date().toISOString(), method: request.method, url: request.url,
      requestBody: typeof request.body === 'string' ? JSON.parse(request.body) : undefined };
    h.transcript.push(entry);
    try {
      const res = await next(request);
      entry.status = res.status;
      entry.responseHeaders = res.headers.toJSON();
      try { entry.responseBody = res.bodyAsText ? JSON.parse(res.bodyAsText) : undefined; } catch { entry.responseBody = res.bodyAsText; }
      return res;
    } catch (e) {
      entry.error = String(e && e.message);
      throw e;
    }
  },
};

function authzClient() {
  assert.ok(h.SERVER_URL && h.TOKEN, 'CHUB_SERVER/CHUB_TOKEN are not set: run these tests through sdktest/run.sh');
  const c = new AuthorizationManagementClient(h.makeCredential(h.TOKEN), h.SUB, { endpoint: h.SERVER_URL });
  c.pipeline.addPolicy(recorder, { afterPhase: 'Sign' });
  return c;
}

async function all(iter) {
  const out = [];
  for await (const x of iter) out.push(x);
  return out;
}

test('roleDefinitions.list at a workspace scope has the built-in roles', T, h.traced(async () => {
  const c = authzClient();
  const mark = h.transcript.length;
  const defs = await all(c.roleDefinitions.list(SCOPE));
  const names = defs.map((d) => d.roleName);
  for (const want of ['Owner', 'Contributor', 'Reader']) {
    assert.ok(names.includes(want), `list at ${SCOPE}: got roles ${JSON.stringify(names)}; want ${want} among them`);
  }
  const reader = defs.find((d) => d.roleName === 'Reader');
  assert.equal(reader.name, READER_ID);
  assert.equal(reader.id, READER_DEF);
  assert.equal(reader.type, 'Microsoft.Authorization/roleDefinitions');
  assert.equal(reader.roleType, 'BuiltInRole');
  assert.deepEqual(reader.permissions[0].actions, ['*/read']);
  // What went over the wire: the client's own api-version and the double-slash scope path.
  const sent = h.since(mark)[0];
  const url = new URL(sent.url);
  assert.equal(url.searchParams.get('api-version'), '2022-04-01', `api-version sent: ${sent.url}`);
  assert.ok(url.pathname.startsWith('//subscriptions/'), `path sent: got ${url.pathname}; want it to start with //subscriptions/`);
}));

test("roleDefinitions.list with $filter roleName eq 'Reader' returns only Reader", T, h.traced(async () => {
  const c = authzClient();
  const cases = [
    { filter: "roleName eq 'Reader'", want: ['Reader'] },
    { filter: "roleName eq 'Contributor'", want: ['Contributor'] },
    { filter: "roleName eq 'No Such Role'", want: [] },
  ];
  for (const tc of cases) {
    const got = (await all(c.roleDefinitions.list(SCOPE, { filter: tc.filter }))).map((d) => d.roleName);
    assert.deepEqual(got, tc.want, `$filter=${tc.filter}: got ${JSON.stringify(got)}; want ${JSON.stringify(tc.want)}`);
  }
}));

test('roleDefinitions.get returns one definition; a missing id is a 404', T, h.traced(async () => {
  const c = authzClient();
  const d = await c.roleDefinitions.get(SCOPE, READER_ID);
  assert.equal(d.roleName, 'Reader');
  assert.equal(d.name, READER_ID);
  assert.equal(d.id, READER_DEF);
  assert.ok(d.description.length > 0, 'Reader has a description');
  const err = await h.rejection(c.roleDefinitions.get(SCOPE, crypto.randomUUID()), 'get of a missing role definition');
  h.assertRestError(err, 404, 'get of a missing role definition');
}));

test('roleAssignments: create, get, listForScope, delete for a new user', T, h.traced(async () => {
  const c = authzClient();
  const user = await h.raw('POST', '/chub/v1/users', { body: { name: `sdk-authz-${crypto.randomBytes(4).toString('hex')}` } });
  assert.equal(user.status, 201, `create user: ${user.text}`);
  const principalId = user.json.objectId;
  assert.match(principalId, /^[0-9a-f-]{36}$/);

  const name = crypto.randomUUID();
  const wantId = `${SCOPE}/providers/Microsoft.Authorization/roleAssignments/${name}`;
  const created = await c.roleAssignments.create(SCOPE, name, { roleDefinitionId: READER_DEF, principalId });
  try {
    assert.equal(created.name, name);
    assert.equal(created.id.toLowerCase(), wantId.toLowerCase());
    assert.equal(created.type, 'Microsoft.Authorization/roleAssignments');
    assert.equal(created.principalId, principalId);
    assert.equal(created.roleDefinitionId, READER_DEF);
    assert.equal(created.scope, SCOPE);
    assert.equal(created.principalType, 'User');

    const got = await c.roleAssignments.get(SCOPE, name);
    assert.equal(got.name, name);
    assert.equal(got.principalId, principalId);
    assert.equal(got.roleDefinitionId, READER_DEF);
    assert.equal(got.scope, SCOPE);
    assert.ok(got.createdOn instanceof Date && !Number.isNaN(got.createdOn.getTime()), `createdOn: ${got.createdOn}`);

    const listed = await all(c.roleAssignments.listForScope(SCOPE));
    const mine = listed.filter((a) => a.name === name);
    assert.equal(mine.length, 1, `listForScope(${SCOPE}): got ${JSON.stringify(listed.map((a) => a.name))}; want ${name} once`);
    assert.equal(mine[0].principalId, principalId);

    const byPrincipal = await all(c.roleAssignments.listForScope(SCOPE, { filter: `principalId eq '${principalId}'` }));
    assert.deepEqual(byPrincipal.map((a) => a.name), [name], 'listForScope with principalId filter');
  } finally {
    await c.roleAssignments.delete(SCOPE, name);
  }

  const gone = await h.rejection(c.roleAssignments.get(SCOPE, name), 'get of a deleted assignment');
  h.assertRestError(gone, 404, 'get of a deleted assignment');
  const after = await all(c.roleAssignments.listForScope(SCOPE, { filter: `principalId eq '${principalId}'` }));
  assert.deepEqual(after, [], 'listForScope after delete');
  const del = await h.raw('DELETE', `/chub/v1/users/${principalId}`);
  assert.equal(del.status, 200, `delete user: ${del.text}`);
}));
