'use strict';
// The main journey of a data scientist (alice, Contributor): sign in, create an instance from
// the form, watch it reach Running, use its terminal (and re-attach after a reload), open
// Jupyter on its own origin (a notebook cell runs), then stop, start, restart and delete it, every change shown live.
const test = require('node:test');
const assert = require('node:assert/strict');
const s = require('../lib/studio');

const NAME = 'st-alice1';
const OTHER = 'st-admin1';
let browser, page;

test.before(async () => {
  browser = await s.launch();
  // Another user's instance, for "Show only mine" (created by the administrator).
  await s.admin('PUT', s.computePath(OTHER), { location: 'local', properties: { computeType: 'ComputeInstance', properties: { vmSize: 'Standard_B1ls' } } });
});
test.after(async () => {
  if (browser) await browser.close();
});

test('signs in with user name and password; a wrong password is refused in words', async () => {
  page = await s.newPage(browser);
  await page.goto('/');
  assert.equal(await page.title(), 'Sign in · ComputeHub Studio');
  await page.getByLabel('User name').fill('alice');
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('alert').filter({ hasText: 'the user name or password is wrong' }).waitFor();
  await page.getByLabel('Password').fill(s.PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator(`tr[data-name="${OTHER}"]`).waitFor();
  assert.equal(await page.title(), 'Compute · ComputeHub Studio');
  assert.match(await page.locator('#who').textContent(), /alice/);
});

test('creates an instance from the form, the name checked as typed, and sees it reach Running live', async () => {
  await page.getByRole('link', { name: '+ New' }).click();
  assert.equal(await page.title(), 'New compute instance · ComputeHub Studio');
  const nameInput = page.getByLabel('Compute name');
  await nameInput.fill('no_underscores');
  await page.locator('#new-name-msg.bad').filter({ hasText: 'letters, digits and hyphens' }).waitFor();
  await nameInput.fill(OTHER);
  await page.locator('#new-name-msg.bad').waitFor();
  await nameInput.fill(NAME);
  await page.locator('#new-name-msg.ok').waitFor();
  await page.getByLabel('Virtual machine size').selectOption('Standard_B1s');
  assert.match(await page.locator('#new-size-info').textContent(), /1 vCPU.*1 GB RAM.*0 GPUs.*standardBSFamily quota left/);
  await page.getByLabel('Enable SSH access').check();
  await page.getByLabel('SSH public key').fill('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGn1Hm0xh8u3Q0sTl7Xn0W7iDrHbTQ3vdmVhFvFwqM8Z studio-test');
  await page.getByLabel('Description').fill('made by the Studio test');
  await page.getByLabel('Tags').fill('team=studio');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL('**/ui/compute');
  const state = s.rowState(page, NAME);
  await state.waitFor();
  const seen = new Set();
  const end = Date.now() + 150000;
  while (Date.now() < end) {
    const v = await state.getAttribute('data-state');
    seen.add(v);
    if (v === 'Running') break;
    await page.waitForTimeout(200);
  }
  assert.ok(seen.has('Running'), `states seen: ${[...seen]}`);
  const row = page.locator(`tr[data-name="${NAME}"]`);
  assert.match(await row.locator('[data-col=size]').textContent(), /Standard_B1s.*1 core, 1 GB RAM/);
  assert.equal(await row.locator('[data-col=by]').textContent(), 'alice');
  // Applications are offered to their user; the administrator's instance offers alice none.
  await row.getByRole('link', { name: 'Jupyter', exact: true }).waitFor();
  assert.equal(await row.getByRole('link', { name: 'Terminal', exact: true }).getAttribute('href'), `/ui/compute/instances/${NAME}?tab=terminal`);
  assert.equal(await page.locator(`tr[data-name="${OTHER}"] .app-link`).count(), 0);
  await s.screenshot(page, 'compute-page.png');
});

test('"Show only mine" hides another user\'s instance', async () => {
  const other = page.locator(`tr[data-name="${OTHER}"]`);
  await other.waitFor();
  await page.getByLabel('Show only mine').check();
  await other.waitFor({ state: 'detached' });
  assert.equal(await page.locator(`tr[data-name="${NAME}"]`).count(), 1);
  await page.getByLabel('Show only mine').uncheck();
  await other.waitFor();
});

test('the instance page shows details and the SSH command', async () => {
  await page.getByRole('link', { name: NAME, exact: true }).click();
  assert.equal(await page.title(), `${NAME} · ComputeHub Studio`);
  const details = page.locator('#details');
  await details.waitFor();
  const text = await details.textContent();
  assert.match(text, /Running/);
  assert.match(text, /Standard_B1s/);
  assert.match(text, /Regionlocal/);
  assert.match(text, /Created byalice/);
  assert.match(text, /made by the Studio test/);
  assert.match(text, /Create · Succeeded/);
  assert.match(await page.locator('#ssh-command').textContent(), /^ssh -p \d+ azureuser@\S+$/);
});

test('the terminal runs a command and re-attaches after a reload', async () => {
  await page.getByRole('tab', { name: 'Terminal' }).click();
  await page.waitForURL('**?tab=terminal');
  await page.locator('#term-status[data-session]').waitFor({ timeout: 30000 });
  const sid = await page.locator('#term-status').getAttribute('data-session');
  await page.locator('#terminal .xterm').click();
  await page.keyboard.type('echo hello-from-studio\n');
  const rows = page.locator('#terminal .xterm-rows');
  await s.waitFor('the echo output', async () => /^hello-from-studio$/m.test(await rows.innerText()), 20000);
  await s.screenshot(page, 'terminal.png');
  await page.reload();
  await page.locator('#term-status[data-session]').waitFor({ timeout: 30000 });
  assert.equal(await page.locator('#term-status').getAttribute('data-session'), sid);
  assert.match(await page.locator('#term-status').textContent(), /Re-attached/);
  await s.waitFor('the replayed output', async () => /^hello-from-studio$/m.test(await rows.innerText()), 20000);
  await page.locator('#terminal .xterm').click();
  await page.keyboard.type('echo again-$((6*7))\n');
  await s.waitFor('the second output', async () => /^again-42$/m.test(await rows.innerText()), 20000);
});

test('the Jupyter link opens Jupyter on its own origin, signed in by the Studio session; a notebook runs', async () => {
  await page.getByRole('tab', { name: 'Details' }).click();
  const link = page.locator('.app-list').getByRole('link', { name: 'Jupyter', exact: true });
  await link.waitFor();
  const href = await link.getAttribute('href');
  assert.doesNotMatch(href, /token=/);
  const studioHost = new URL(s.SERVER).host;
  const appHost = `${NAME}.apps.localhost:${new URL(s.SERVER).port}`;
  const [jup] = await Promise.all([page.context().waitForEvent('page'), link.click()]);
  await s.waitFor('Jupyter\'s page', async () => {
    await jup.waitForLoadState('domcontentloaded');
    // Debian's Notebook 6: "Home Page - Select or create a notebook", the Jupyter logo and tree.
    if (/\/jupyter\/tree/.test(jup.url()) && await jup.locator('#ipython_notebook, #notebook_list').count() > 0) return true;
    await jup.waitForTimeout(1500);
    await jup.reload();
    return false;
  }, 90000);
  // Its own origin: the instance's host under apps.localhost, not Studio's; no code left in the URL.
  const loc = new URL(jup.url());
  assert.equal(loc.host, appHost);
  assert.notEqual(loc.host, studioHost);
  assert.doesNotMatch(jup.url(), /code=|token=/);
  assert.equal(await jup.evaluate(() => location.origin), 'https://' + appHost);
  // Scripts there see none of ComputeHub's cookies (the session cookie is HttpOnly, Studio's are on Studio's host).
  assert.doesNotMatch(await jup.evaluate(() => document.cookie), /chub_/);
  // Jupyter's own XSRF check is on: a POST without the _xsrf token is refused...
  const bare = await jup.evaluate(async () => (await fetch('/jupyter/api/contents', { method: 'POST', body: '{"type":"notebook"}' })).status);
  assert.equal(bare, 403);
  // ...while Jupyter's own page (which repeats it) makes a notebook and runs a cell on a real kernel.
  const made = await jup.evaluate(async () => {
    const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1];
    const res = await fetch('/jupyter/api/contents', { method: 'POST', headers: { 'X-XSRFToken': decodeURIComponent(xsrf || '') }, body: '{"type":"notebook"}' });
    return { status: res.status, path: res.ok ? (await res.json()).path : await res.text() };
  });
  assert.equal(made.status, 201, JSON.stringify(made));
  await jup.goto('https://' + appHost + '/jupyter/notebooks/' + encodeURIComponent(made.path));
  await jup.locator('#kernel_indicator_icon.kernel_idle_icon').waitFor({ timeout: 90000 });
  await jup.locator('.cell .CodeMirror').first().click();
  await jup.keyboard.type('6*7');
  await jup.keyboard.press('Shift+Enter');
  await jup.locator('.output_area .output_result, .output_area pre').filter({ hasText: /^42$/ }).first().waitFor({ timeout: 60000 });
  await s.screenshot(jup, 'jupyter.png');
  // Studio itself still works in the other tab (its CSRF cookie untouched).
  await jup.close();
  await page.reload();
  await page.locator('.app-list').waitFor();
});

async function act(label, want) {
  await page.locator(`tr[data-name="${NAME}"] .row-check`).check();
  await page.locator('#action-' + label.toLowerCase()).click();
  if (label === 'Delete') {
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  }
  const state = s.rowState(page, NAME);
  const seen = [];
  await s.waitFor(`${NAME} ${want.join(' then ')}`, async () => {
    if (label === 'Delete' && await page.locator(`tr[data-name="${NAME}"]`).count() === 0) return seen.push('gone');
    const v = await state.getAttribute('data-state', { timeout: 1000 }).catch(() => null);
    if (v && seen[seen.length - 1] !== v) seen.push(v);
    if (v !== want[want.length - 1]) return false;
    if (seen.length > 1) return true;
    // The transition may be quicker than a poll: the last operation tells it happened.
    const c = await s.admin('GET', s.computePath(NAME));
    const lo = c && c.properties.properties.lastOperation;
    return lo && lo.operationName === label && lo.operationStatus === 'Succeeded';
  }, 150000);
  return seen;
}

test('stop, start, restart and delete, each reflected live', async () => {
  await page.getByRole('link', { name: 'Compute', exact: true }).first().click();
  await s.rowState(page, NAME).waitFor();
  // A button is enabled only when the action is valid: a running instance cannot be started.
  await page.locator(`tr[data-name="${NAME}"] .row-check`).check();
  assert.equal(await page.locator('#action-start').isDisabled(), true);
  assert.equal(await page.locator('#action-stop').isDisabled(), false);
  await page.locator(`tr[data-name="${NAME}"] .row-check`).uncheck();
  let seen = await act('Stop', ['Stopping', 'Stopped']);
  assert.ok(seen.includes('Stopped'), String(seen));
  seen = await act('Start', ['Starting', 'Running']);
  assert.ok(seen.includes('Running'), String(seen));
  seen = await act('Restart', ['Restarting', 'Running']);
  assert.equal(seen[seen.length - 1], 'Running', String(seen));
  seen = await act('Delete', ['Deleting', 'gone']);
  await page.locator(`tr[data-name="${NAME}"]`).waitFor({ state: 'detached', timeout: 120000 });
  assert.deepEqual(page.errors, []);
});

test('signs out', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to ComputeHub' }).waitFor();
  await page.goto('/ui/compute');
  await page.getByRole('heading', { name: 'Sign in to ComputeHub' }).waitFor();
});
