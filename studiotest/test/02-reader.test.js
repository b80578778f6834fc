'use strict';
// A Reader (bob) sees the instances but no action buttons and no application links; a
// refused action shows the server's own message (QuotaExceeded) next to the form.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const s = require('../lib/studio');

const OTHER = 'st-admin1'; // made by 01-compute.test.js (or here, when run alone)
let browser;

test.before(async () => {
  browser = await s.launch();
  const c = await s.admin('GET', s.computePath(OTHER));
  if (!c || !c.properties) {
    await s.admin('PUT', s.computePath(OTHER), { location: 'local', properties: { computeType: 'ComputeInstance', properties: { vmSize: 'Standard_B1ls' } } });
  }
  await s.waitFor(`${OTHER} Running`, async () => {
    const c = await s.admin('GET', s.computePath(OTHER));
    return c.properties.properties.state === 'Running';
  }, 150000);
});
test.after(async () => {
  if (browser) await browser.close();
});

test('a Reader sees no action buttons and no application links', async () => {
  const page = await s.newPage(browser);
  // A link to an instance page asks to sign in first, then shows that page.
  await page.goto(`/ui/compute/instances/${OTHER}`);
  await page.getByLabel('User name').fill('bob');
  await page.getByLabel('Password').fill(s.PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('#details').waitFor();
  assert.equal(await page.title(), `${OTHER} · ComputeHub Studio`);
  await page.getByRole('link', { name: 'Compute', exact: true }).first().click();
  const row = page.locator(`tr[data-name="${OTHER}"]`);
  await row.waitFor();
  await s.waitFor('the state', async () => (await s.rowState(page, OTHER).getAttribute('data-state')) === 'Running');
  assert.equal(await page.locator('#refresh').count(), 1);
  for (const id of ['new-compute', 'action-start', 'action-stop', 'action-restart', 'action-delete']) {
    assert.equal(await page.locator('#' + id).count(), 0, `${id} shown to a Reader`);
  }
  assert.equal(await page.locator('.app-link').count(), 0);
  await row.getByRole('link', { name: OTHER }).click();
  await page.locator('#details').waitFor();
  assert.equal(await page.locator('.app-link').count(), 0);
  assert.equal(await page.locator('#action-stop, #action-delete').count(), 0);
  await s.screenshot(page, 'reader-instance.png');
  assert.deepEqual(page.errors, []);
});

test('a create that would exceed the quota shows the server\'s QuotaExceeded message', async () => {
  const chub = (...args) => execFileSync(process.env.CHUB_BIN, args, { encoding: 'utf8' });
  const usages = await s.admin('GET', '/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.MachineLearningServices/locations/local/usages');
  const before = usages.value.find((u) => u.name.value === 'standardBSFamily').limit;
  chub('quota', 'set', '--family', 'standardBSFamily', '--limit', '0');
  try {
    const page = await s.newPage(browser, { width: 390, height: 844 }); // a phone
    await s.signIn(page, 'alice');
    await page.getByRole('link', { name: '+ New' }).click();
    await page.getByLabel('Compute name').fill('st-quota1');
    await page.getByLabel('Virtual machine size').selectOption('Standard_B1s');
    assert.match(await page.locator('#new-size-info').textContent(), /0 of standardBSFamily quota left/);
    await page.getByRole('button', { name: 'Create' }).click();
    const err = page.locator('#new-error .error');
    await err.waitFor();
    assert.match(await err.textContent(), /QuotaExceeded.*exceeding approved family standardBSFamily quota/);
    await s.screenshot(page, 'quota-exceeded-phone.png');
    assert.equal(await page.getByRole('button', { name: 'Create' }).isEnabled(), true);
  } finally {
    chub('quota', 'set', '--family', 'standardBSFamily', '--limit', String(before));
  }
});

test('an administrator signs in with an API token and creates an instance assigned to another user', async () => {
  const page = await s.newPage(browser);
  await page.goto('/');
  await page.getByRole('button', { name: 'Sign in with an API token instead' }).click();
  await page.getByLabel('API token').fill(s.TOKEN);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('#computes').waitFor();
  await page.getByRole('link', { name: '+ New' }).click();
  await page.getByLabel('Compute name').fill('st-for-alice');
  await page.locator('#new-name-msg.ok').waitFor();
  await page.getByLabel('Virtual machine size').selectOption('Standard_B1ls');
  await page.getByLabel('Assign to another user').selectOption({ label: 'alice' });
  await page.getByRole('button', { name: 'Create' }).click();
  const row = page.locator('tr[data-name="st-for-alice"]');
  await row.waitFor();
  assert.equal(await row.locator('[data-col=by]').textContent(), 'admin');
  assert.equal(await row.locator('[data-col=assigned]').textContent(), 'alice');
  // Not the administrator's to open: no application links for them, even once it runs.
  await s.waitFor('st-for-alice Running', async () => (await s.rowState(page, 'st-for-alice').getAttribute('data-state')) === 'Running', 150000);
  assert.equal(await row.locator('.app-link').count(), 0);
  // The instance page shows its operation history to those who may read the audit log.
  await row.getByRole('link', { name: 'st-for-alice' }).click();
  await page.locator('#history').filter({ hasText: 'Create or update' }).waitFor();
  assert.match(await page.locator('#details').textContent(), /Assigned toalice/);
  assert.deepEqual(page.errors, []);
  await s.deleteCompute('st-for-alice');
});

test('the workspace switcher shows the instances of the chosen workspace', async () => {
  const ws2 = s.WS.replace(/\/workspaces\/default$/, '/workspaces/st-ws2');
  await s.admin('PUT', ws2, { location: 'local', properties: { friendlyName: 'Second workspace' } });
  try {
    const page = await s.newPage(browser);
    await s.signIn(page, 'alice');
    await page.locator(`tr[data-name="${OTHER}"]`).waitFor();
    await page.getByLabel('Workspace').selectOption({ label: 'Second workspace' });
    await page.getByText('No compute instances yet.').waitFor();
    assert.match(page.url(), /\/ui\/compute\?ws=st-ws2$/);
    await page.getByLabel('Workspace').selectOption('default');
    await page.locator(`tr[data-name="${OTHER}"]`).waitFor();
    assert.deepEqual(page.errors, []);
  } finally {
    await s.admin('DELETE', ws2);
  }
});
