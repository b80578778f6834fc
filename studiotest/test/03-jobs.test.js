'use strict';
// Jobs in Studio (alice, Contributor, on her own instance): a job submitted with the CLI (chub job
// create) shows in the instance's Jobs tab and goes Running → Completed live, the instance reads
// JobRunning meanwhile; the job's page shows its log (followed live while it runs), exit code and
// outputs, also from a fresh load of its address and of the Studio link the API gives; Cancel on
// a long job turns it Canceled; the workspace's Jobs page lists both and shows archived jobs apart;
// a Reader (bob) follows a running job but is offered no Cancel.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const s = require('../lib/studio');

const NAME = 'st-jobs1';
const tag = crypto.randomBytes(3).toString('hex');
const JOB1 = 'st-hello-' + tag;
const JOB2 = 'st-long-' + tag;
const JOB3 = 'st-reader-' + tag;
// The first job waits for a file that the test makes (through chub exec) once it has seen the
// job Running, so that Running is on screen for as long as the test needs, whatever the timing;
// it gives up after about two minutes, so nothing hangs.
const GATE = `/tmp/studio-gate-${tag}`;
const JOB1_CMD = `echo started; echo to-stderr >&2; i=0; while [ ! -e ${GATE} ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done; echo done`;
const JOB2_CMD = 'echo waiting-for-cancel; sleep 600; echo not-canceled';
let browser, page, alice;

const jobRow = (p, table, name) => p.locator(`#${table} tr[data-name="${name}"]`);
const rowStatus = (p, table, name) => jobRow(p, table, name).locator('[data-col=status] .state');
const headStatus = (p) => p.locator('.instance-head > .state');

// statuses waits until a status locator shows want, and returns the statuses it saw on the way.
async function statuses(what, loc, want, timeoutMs = 150000) {
  const seen = [];
  await s.waitFor(what, async () => {
    const v = await loc.getAttribute('data-state', { timeout: 1000 }).catch(() => null);
    if (v && seen[seen.length - 1] !== v) seen.push(v);
    return v === want;
  }, timeoutMs);
  return seen;
}

// submit sends a job with the CLI as alice.
function submit(name, command) {
  const out = s.chub(['job', 'create', '--compute', NAME, '--name', name, '--experiment-name', 'studio', '--display-name', `studio ${name}`, '--', 'sh', '-c', command], alice);
  assert.match(out, new RegExp(`Job ${name} submitted to ${NAME}`));
}

test.before(async () => {
  browser = await s.launch();
  alice = s.userToken('alice');
  await s.as(alice, 'PUT', s.computePath(NAME), { location: 'local', properties: { computeType: 'ComputeInstance', properties: { vmSize: 'Standard_B2s' } } });
  await s.waitFor(`${NAME} Running`, async () => {
    const c = await s.as(alice, 'GET', s.computePath(NAME));
    return c.properties.properties.state === 'Running';
  }, 180000);
});
test.after(async () => {
  if (browser) await browser.close();
  await s.deleteCompute(NAME);
});

test('a job submitted with the CLI shows in the instance\'s Jobs tab and goes Running → Completed', async () => {
  page = await s.newPage(browser);
  await s.signIn(page, 'alice');
  await page.goto(`/ui/compute/instances/${NAME}?tab=jobs`);
  await page.getByRole('tab', { name: 'Jobs' }).waitFor();
  assert.equal(await page.getByRole('tab', { name: 'Jobs' }).getAttribute('aria-selected'), 'true');
  await page.getByText(`No jobs on ${NAME} yet.`).waitFor();
  assert.match(await page.locator('#job-slots').textContent(), /Runs up to 2 jobs at a time/);

  submit(JOB1, JOB1_CMD);
  await jobRow(page, 'instance-jobs', JOB1).waitFor({ timeout: 30000 });
  const seen = await statuses(`${JOB1} Running`, rowStatus(page, 'instance-jobs', JOB1), 'Running');
  const row = jobRow(page, 'instance-jobs', JOB1);
  assert.equal(await row.locator('[data-col=display]').textContent(), `studio ${JOB1}`);
  assert.equal(await row.locator('[data-col=experiment]').textContent(), 'studio');
  // While the job runs the instance is JobRunning, shown as running (its applications stay).
  const state = headStatus(page);
  await s.waitFor('the instance JobRunning', async () => (await state.getAttribute('data-state')) === 'JobRunning', 30000);
  assert.equal(await state.textContent(), 'Running jobs');
  assert.match(await state.getAttribute('class'), /state-ok/);
  await s.screenshot(page, 'instance-jobs-running.png');

  s.chub(['computetarget', 'computeinstance', 'exec', '-n', NAME, '--', 'touch', GATE], alice);
  seen.push(...await statuses(`${JOB1} Completed`, rowStatus(page, 'instance-jobs', JOB1), 'Completed'));
  const order = seen.filter((v, i) => v !== seen[i - 1]);
  assert.ok(order.indexOf('Running') >= 0 && order.indexOf('Running') < order.lastIndexOf('Completed'), `statuses seen: ${order}`);
  assert.match(await row.locator('[data-col=duration]').textContent(), /^\d+(s|m \d\ds)$/);
  await s.waitFor('the instance Running again', async () => (await state.getAttribute('data-state')) === 'Running', 60000);
  await s.screenshot(page, 'instance-jobs.png');
});

test('the job page shows the log with "done", the exit code and a download of the outputs', async () => {
  await jobRow(page, 'instance-jobs', JOB1).getByRole('link', { name: JOB1 }).click();
  await page.waitForURL(`**/ui/jobs/${JOB1}?ws=default`);
  assert.equal(await page.title(), `${JOB1} · ComputeHub Studio`);
  await s.waitFor('Completed on the job page', async () => (await headStatus(page).getAttribute('data-state')) === 'Completed', 30000);
  const logs = page.locator('#job-logs');
  await s.waitFor('the log with "done"', async () => /^done$/m.test(await logs.textContent()), 30000);
  assert.match(await logs.textContent(), /^started$/m);
  assert.match(await logs.textContent(), /^to-stderr$/m);
  // One stream alone: stderr has only what went there.
  await page.getByLabel('Stream', { exact: true }).selectOption('stderr');
  await s.waitFor('the stderr log', async () => /^to-stderr$/m.test(await logs.textContent()), 30000);
  assert.doesNotMatch(await logs.textContent(), /started|done/);
  await page.getByLabel('Stream', { exact: true }).selectOption('std_log');
  await s.waitFor('the whole log again', async () => /^done$/m.test(await logs.textContent()), 30000);
  assert.equal(await page.locator('#job-exit-code').textContent(), '0');
  assert.ok((await page.locator('#job-command').textContent()).includes(JOB1_CMD), 'the command is shown');
  assert.equal(await page.locator('#job-compute').textContent(), NAME);
  assert.equal(await page.locator('#job-cancel').isVisible(), false, 'Cancel offered on an ended job');
  const download = page.locator('#job-download');
  assert.equal(await download.isVisible(), true);
  const res = await page.request.get(await download.getAttribute('href'));
  assert.equal(res.status(), 200, await res.text());
  assert.match(res.headers()['content-type'], /gzip/);
  const body = await res.body();
  assert.deepEqual([body[0], body[1]], [0x1f, 0x8b], 'the outputs are a gzip stream');
  await s.screenshot(page, 'job-completed.png');
  assert.deepEqual(page.errors, []);
});

test('a fresh load of the job\'s address, and of the Studio link the API gives, opens the job page', async () => {
  const fresh = await s.newPage(browser);
  await fresh.goto(`/ui/jobs/${JOB1}?ws=default`);
  await fresh.getByLabel('User name').fill('alice');
  await fresh.getByLabel('Password').fill(s.PASSWORD);
  await fresh.getByRole('button', { name: 'Sign in', exact: true }).click();
  await fresh.locator('#job-details').waitFor();
  assert.equal(await fresh.title(), `${JOB1} · ComputeHub Studio`);
  await s.waitFor('the log', async () => /^done$/m.test(await fresh.locator('#job-logs').textContent()), 30000);

  const job = await s.as(alice, 'GET', `${s.WS}/jobs/${JOB1}`);
  const link = job.properties.services && job.properties.services.Studio && job.properties.services.Studio.endpoint;
  assert.ok(link, `no services.Studio.endpoint in ${JSON.stringify(job.properties.services)}`);
  await fresh.goto(link);
  await fresh.locator('#job-details').waitFor();
  assert.equal(new URL(fresh.url()).pathname, `/ui/jobs/${JOB1}`);
  assert.equal(await fresh.locator('.instance-head h1').textContent(), JOB1);
  await s.waitFor('the log', async () => /^done$/m.test(await fresh.locator('#job-logs').textContent()), 30000);
  assert.deepEqual(fresh.errors, []);
  await fresh.context().close();
});

test('the log of a running job streams live; Cancel turns it Canceled', async () => {
  submit(JOB2, JOB2_CMD);
  await page.goto(`/ui/compute/instances/${NAME}?tab=jobs`);
  await jobRow(page, 'instance-jobs', JOB2).getByRole('link', { name: JOB2 }).click();
  await page.waitForURL(`**/ui/jobs/${JOB2}?ws=default`);
  await statuses(`${JOB2} Running`, headStatus(page), 'Running');
  const logs = page.locator('#job-logs');
  await s.waitFor('the first line, live', async () => /^waiting-for-cancel$/m.test(await logs.textContent()), 60000);
  assert.equal(await logs.getAttribute('data-streaming'), 'true');
  assert.equal((await s.as(alice, 'GET', `${s.WS}/jobs/${JOB2}`)).properties.status, 'Running', 'the line came while the job ran');
  assert.match(await page.locator('#job-elapsed').textContent(), /^running for \d+s/);
  await s.screenshot(page, 'job-running.png');

  await page.locator('#job-cancel').click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Cancel job' }).click();
  const seen = await statuses(`${JOB2} Canceled`, headStatus(page), 'Canceled', 90000);
  assert.ok(!seen.includes('Completed') && !seen.includes('Failed'), `statuses seen: ${seen}`);
  await page.locator('#job-cancel').waitFor({ state: 'hidden' });
  await page.locator('#job-download').waitFor();
  await s.waitFor('the log stream to end', async () => (await logs.getAttribute('data-ended')) === 'Canceled', 30000);
  assert.match(await logs.textContent(), /^waiting-for-cancel$/m);
  assert.doesNotMatch(await logs.textContent(), /not-canceled/);
  await s.screenshot(page, 'job-canceled.png');
  assert.deepEqual(page.errors, []);
});

test('the workspace\'s Jobs page lists both with their status; a job archived from its page shows under Archived', async () => {
  await page.locator('#topnav a[data-nav=jobs]').click();
  await page.waitForURL('**/ui/jobs');
  assert.equal(await page.title(), 'Jobs · ComputeHub Studio');
  await s.waitFor(`${JOB1} Completed`, async () => (await rowStatus(page, 'jobs', JOB1).getAttribute('data-state')) === 'Completed', 30000);
  await s.waitFor(`${JOB2} Canceled`, async () => (await rowStatus(page, 'jobs', JOB2).getAttribute('data-state')) === 'Canceled', 30000);
  assert.equal(await jobRow(page, 'jobs', JOB1).locator('[data-col=compute]').textContent(), NAME);
  // Newest first.
  const names = await page.locator('#jobs tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.name));
  assert.ok(names.indexOf(JOB2) < names.indexOf(JOB1), `order: ${names}`);
  await s.screenshot(page, 'jobs-page.png');

  // Archive (Azure's delete of a job) from the job's page: the job leaves the default view.
  await jobRow(page, 'jobs', JOB1).getByRole('link', { name: JOB1 }).click();
  await page.waitForURL(`**/ui/jobs/${JOB1}?ws=default`);
  await page.locator('#job-archive').click();
  await page.locator('#job-archived').waitFor({ timeout: 30000 });
  await page.locator('#job-archive').waitFor({ state: 'hidden' });
  assert.equal((await s.as(alice, 'GET', `${s.WS}/jobs/${JOB1}`)).properties.isArchived, true);
  await page.locator('#topnav a[data-nav=jobs]').click();
  await jobRow(page, 'jobs', JOB2).waitFor();
  assert.equal(await jobRow(page, 'jobs', JOB1).count(), 0, 'an archived job in the default view');
  await page.getByLabel('Show', { exact: true }).selectOption('archived');
  await jobRow(page, 'jobs', JOB1).waitFor();
  assert.equal(await jobRow(page, 'jobs', JOB2).count(), 0);
  assert.match(page.url(), /\/ui\/jobs\?view=archived$/);
  await page.getByLabel('Show', { exact: true }).selectOption('all');
  await jobRow(page, 'jobs', JOB2).waitFor();
  assert.equal(await jobRow(page, 'jobs', JOB1).count(), 1);
  assert.deepEqual(page.errors, []);
});

test('a Reader sees a running job and its log but no Cancel; the CLI cancels it', async () => {
  submit(JOB3, 'echo reader-can-see-this; sleep 600');
  const bob = await s.newPage(browser);
  await bob.goto(`/ui/jobs/${JOB3}?ws=default`);
  await bob.getByLabel('User name').fill('bob');
  await bob.getByLabel('Password').fill(s.PASSWORD);
  await bob.getByRole('button', { name: 'Sign in', exact: true }).click();
  await statuses(`${JOB3} Running for bob`, headStatus(bob), 'Running');
  await s.waitFor('the log, for bob', async () => /^reader-can-see-this$/m.test(await bob.locator('#job-logs').textContent()), 60000);
  assert.equal(await bob.locator('#job-cancel').isVisible(), false, 'Cancel offered to a Reader');
  s.chub(['job', 'cancel', '--name', JOB3], alice);
  await statuses(`${JOB3} Canceled for bob`, headStatus(bob), 'Canceled', 90000);
  await bob.locator('#job-download').waitFor();
  assert.equal(await bob.locator('#job-archive').isVisible(), false, 'Archive offered to a Reader');
  assert.deepEqual(bob.errors, []);
  await bob.context().close();
});
