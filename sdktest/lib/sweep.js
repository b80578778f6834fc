'use strict';
// Run by run.sh before it stops the throw-away server: deletes every compute the tests left
// behind (names starting with "sdk-"), so that no instance outlives the run.
const h = require('./helpers');

(async () => {
  const client = h.makeClient();
  const names = [];
  for await (const c of client.computeOperations.list(h.RG, h.WS)) {
    if (c.name && c.name.startsWith('sdk-')) names.push(c.name);
  }
  if (names.length) process.stderr.write(`sdktest: sweeping ${names.length} leftover instance(s): ${names.join(', ')}\n`);
  await h.cleanup(client, names);
})().catch((err) => {
  process.stderr.write(`sdktest: sweep failed: ${err && err.message}\n`);
  process.exit(1);
});
