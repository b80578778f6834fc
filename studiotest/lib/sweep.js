'use strict';
// Run by run.sh before it stops the throw-away server: deletes every compute the tests left
// behind, so that no instance outlives the run.
const { admin, WS, deleteCompute } = require('./studio');

(async () => {
  const names = [];
  let page = await admin('GET', `${WS}/computes`);
  for (;;) {
    names.push(...((page && page.value) || []).map((c) => c.name));
    if (!page || !page.nextLink) break;
    const res = await fetch(page.nextLink, { headers: { Authorization: 'Bearer ' + process.env.CHUB_TOKEN } });
    page = await res.json();
  }
  if (names.length) process.stderr.write(`studiotest: sweeping ${names.length} leftover instance(s): ${names.join(', ')}\n`);
  await Promise.all(names.map(deleteCompute));
})().catch((err) => {
  process.stderr.write(`studiotest: sweep failed: ${err && err.message}\n`);
  process.exit(1);
});
