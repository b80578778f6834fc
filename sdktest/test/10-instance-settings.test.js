'use strict';
// ComputeInstanceProperties that the 2.1.1 SDK can send and read: SSH settings, schedules,
// setup scripts, and the read-only applications / connectivity endpoints of a Running instance.
const { describe, test, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/helpers');

const T = { timeout: 180_000 };
// An OpenSSH public key (ed25519) made for these tests; its private half was thrown away.
const PUBKEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJbvUfj+Y5VpHWj9eB9sI67eEWSmNymZ1IBKzqMsBGBd sdktest';

function body(props) {
  const b = h.instanceBody();
  Object.assign(b.properties.properties, props);
  return b;
}

async function createWith(client, name, props) {
  h.created.add(name);
  return client.computeOperations.beginCreateOrUpdateAndWait(h.RG, h.WS, name, body(props));
}

async function nodesOf(client, name) {
  const nodes = [];
  for await (const n of client.computeOperations.listNodes(h.RG, h.WS, name)) nodes.push(n);
  return nodes;
}

const b64 = (s) => Buffer.from(s).toString('base64');

describe('compute instance settings through the SDK', () => {
  const client = h.makeClient();
  after(() => h.cleanup(client));

  describe('SSH', () => {
    const plain = h.uniqueName('s');
    const ssh = h.uniqueName('s');

    test('SSH is off unless asked for; the admin user is azureuser', T, h.traced(async () => {
      const c = await h.createInstance(client, plain);
      const s = c.properties.properties.sshSettings;
      assert.ok(s, 'no sshSettings');
      assert.equal(s.sshPublicAccess, 'Disabled');
      assert.equal(s.adminUserName, 'azureuser');
    }));

    test('SSH enabled with a public key round-trips', T, h.traced(async () => {
      const c = await createWith(client, ssh, { sshSettings: { sshPublicAccess: 'Enabled', adminPublicKey: PUBKEY } });
      assert.equal(c.properties.properties.state, 'Running');
      const s = (await client.computeOperations.get(h.RG, h.WS, ssh)).properties.properties.sshSettings;
      assert.equal(s.sshPublicAccess, 'Enabled');
      assert.equal(s.adminUserName, 'azureuser');
      assert.equal(s.adminPublicKey, PUBKEY);
    }));

    test('SSH enabled reports its sshPort, and listNodes gives the same port', T, h.traced(async () => {
      const s = (await client.computeOperations.get(h.RG, h.WS, ssh)).properties.properties.sshSettings;
      assert.ok(Number.isInteger(s.sshPort) && s.sshPort > 0, `sshPort is ${s.sshPort}`);
      const nodes = await nodesOf(client, ssh);
      assert.equal(nodes.length, 1);
      assert.equal(nodes[0].port, s.sshPort);
    }));

    test('SSH enabled without a public key is refused with 400 (key-only SSH)', T, h.traced(async () => {
      const name = h.uniqueName('s');
      const mark = h.transcript.length;
      const err = await h.rejection(createWith(client, name, { sshSettings: { sshPublicAccess: 'Enabled' } }), 'SSH without a key');
      h.assertRestError(err, 400, 'SSH without a key');
      assert.equal(err.message, h.lastErrorEnvelope(mark, 400).message);
      const gone = await h.rejection(client.computeOperations.get(h.RG, h.WS, name), 'get of the refused instance');
      h.assertRestError(gone, 404, 'get of the refused instance');
    }));
  });

  describe('read-only views of a Running instance', () => {
    const name = h.uniqueName('r');

    test('applications lists Jupyter, JupyterLab and Terminal with https endpoints', h.gap('applications of a Running instance lists Jupyter only (no JupyterLab, no Terminal)', T), h.traced(async () => {
      await h.createInstance(client, name);
      const apps = (await client.computeOperations.get(h.RG, h.WS, name)).properties.properties.applications || [];
      const names = apps.map((a) => a.displayName);
      for (const want of ['Jupyter', 'JupyterLab', 'Terminal']) {
        const a = apps.find((x) => x.displayName === want);
        assert.ok(a, `${want} missing from applications ${JSON.stringify(names)}`);
        assert.match(a.endpointUri, /^https:\/\//, `${want} endpointUri ${a.endpointUri}`);
      }
    }));

    test('connectivityEndpoints.privateIpAddress matches the node listNodes reports', h.gap('connectivityEndpoints.privateIpAddress is null while listNodes reports 10.0.2.15', T), h.traced(async () => {
      if (!h.created.has(name)) await h.createInstance(client, name);
      const got = await client.computeOperations.get(h.RG, h.WS, name);
      const ep = got.properties.properties.connectivityEndpoints;
      assert.ok(ep, 'no connectivityEndpoints');
      const nodes = await nodesOf(client, name);
      assert.equal(nodes.length, 1);
      assert.equal(typeof ep.privateIpAddress, 'string', `privateIpAddress is ${ep.privateIpAddress}`);
      assert.equal(ep.privateIpAddress, nodes[0].privateIpAddress);
    }));
  });

  describe('schedules', () => {
    const name = h.uniqueName('k');
    const sched = {
      computeStartStop: [
        { action: 'Stop', status: 'Enabled', triggerType: 'Cron', cron: { startTime: '2024-01-01T00:00:00', timeZone: 'UTC', expression: '0 18 * * *' } },
      ],
    };

    test('a cron stop schedule round-trips', T, h.traced(async () => {
      await createWith(client, name, { schedules: sched });
      const got = (await client.computeOperations.get(h.RG, h.WS, name)).properties.properties.schedules;
      assert.ok(got && Array.isArray(got.computeStartStop), `schedules: ${JSON.stringify(got)}`);
      assert.equal(got.computeStartStop.length, 1);
      const s = got.computeStartStop[0];
      assert.equal(s.action, 'Stop');
      assert.equal(s.status, 'Enabled');
      assert.equal(s.triggerType, 'Cron');
      assert.equal(s.cron.expression, '0 18 * * *');
      assert.equal(s.cron.timeZone, 'UTC');
    }));

    test('a schedule carries its read-only id and provisioningStatus', T, h.traced(async () => {
      if (!h.created.has(name)) await createWith(client, name, { schedules: sched });
      const s = (await client.computeOperations.get(h.RG, h.WS, name)).properties.properties.schedules.computeStartStop[0];
      assert.equal(typeof s.id, 'string', `id is ${s.id}`);
      assert.ok(s.id.length > 0);
      assert.ok(['Completed', 'Provisioning', 'Failed'].includes(s.provisioningStatus), `provisioningStatus is ${s.provisioningStatus}`);
    }));
  });

  describe('setup scripts', () => {
    test('a creation script that succeeds leaves the instance Running', T, h.traced(async () => {
      const name = h.uniqueName('x');
      const c = await createWith(client, name, {
        setupScripts: { scripts: { creationScript: { scriptSource: 'inline', scriptData: b64('#!/bin/bash\necho ok\n'), timeout: '5m' } } },
      });
      assert.equal(c.properties.provisioningState, 'Succeeded');
      assert.equal(c.properties.properties.state, 'Running');
      assert.equal(c.properties.properties.setupScripts.scripts.creationScript.scriptSource, 'inline');
    }));

    test('a creation script that fails does not end in a clean success', h.gap('a creation script that exits 3 still ends Running/Succeeded with errors []', T), h.traced(async () => {
      const name = h.uniqueName('x');
      let lroError;
      try {
        await createWith(client, name, {
          setupScripts: { scripts: { creationScript: { scriptSource: 'inline', scriptData: b64('#!/bin/bash\necho failing >&2\nexit 3\n'), timeout: '5m' } } },
        });
      } catch (err) {
        lroError = err;
      }
      if (lroError) {
        // The facts: a failed operation makes the client raise "The long-running operation has failed. <code>. <message>".
        assert.match(lroError.message, /^The long-running operation has failed\. \S+\. /);
        return;
      }
      const p = (await client.computeOperations.get(h.RG, h.WS, name)).properties.properties;
      assert.ok(['SetupFailed', 'CreateFailed'].includes(p.state), `state after a failing creation script is ${p.state}`);
      assert.ok(Array.isArray(p.errors) && p.errors.length > 0, `no errors reported: ${JSON.stringify(p.errors)}`);
    }));
  });
});
