'use strict';
// Helpers of the Studio browser tests: the server run.sh started (CHUB_SERVER, the admin's
// CHUB_TOKEN), Debian's Chromium through playwright-core, sign-in and waits.
const path = require('node:path');
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');
const { chromium } = require('playwright-core');

const SERVER = process.env.CHUB_SERVER;
const TOKEN = process.env.CHUB_TOKEN;
const PASSWORD = process.env.STUDIO_PASSWORD;
const SHOTS = process.env.STUDIO_SCREENSHOTS || path.join(__dirname, '..', 'screenshots');
const API = '2025-06-01';
const WS = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/default';
if (!SERVER || !TOKEN) throw new Error('run the suite with studiotest/run.sh (CHUB_SERVER and CHUB_TOKEN unset)');

// admin calls the API as the administrator (bearer token).
async function admin(method, p, body) {
  const res = await fetch(SERVER + p + (p.includes('?') ? '&' : '?') + 'api-version=' + API, {
    method,
    headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok && res.status !== 404) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const computePath = (name) => `${WS}/computes/${name}`;

// as calls the API with another user's bearer token (made with userToken); 202 and 204 bodies
// may be empty.
async function as(token, method, p, body) {
  const res = await fetch(SERVER + p + (p.includes('?') ? '&' : '?') + 'api-version=' + API, {
    method,
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// chub runs the suite's chub binary (CHUB_BIN) against the server, as the administrator or,
// given a token, as that token's user; it returns stdout and throws with stderr on failure.
function chub(args, token) {
  const env = { ...process.env };
  if (token) env.CHUB_TOKEN = token;
  try {
    return execFileSync(process.env.CHUB_BIN, args, { encoding: 'utf8', env, timeout: 120000 });
  } catch (e) {
    throw new Error(`chub ${args.join(' ')}: ${e.status === undefined ? e.message : 'exit ' + e.status}\n${e.stderr || ''}${e.stdout || ''}`);
  }
}

// userToken makes an API token for a user (the administrator's chub token create).
function userToken(user) {
  return chub(['token', 'create', '--user', user, '--name', 'studiotest']).trim();
}

async function waitFor(what, fn, timeoutMs = 120000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last && (last.message || JSON.stringify(last))})`);
}

// deleteCompute deletes an instance and waits until it is gone.
async function deleteCompute(name) {
  await admin('DELETE', computePath(name) + '?underlyingResourceAction=Delete');
  await waitFor(`${name} deleted`, async () => {
    const res = await fetch(`${SERVER}${computePath(name)}?api-version=${API}`, { headers: { Authorization: 'Bearer ' + TOKEN } });
    return res.status === 404;
  }, 180000);
}

async function launch() {
  return chromium.launch({
    executablePath: process.env.CHUB_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

// newPage opens a page in a fresh context (its own cookies) that trusts the server's certificate.
async function newPage(browser, viewport = { width: 1360, height: 860 }) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport, baseURL: SERVER });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  page.errors = errors;
  return page;
}

async function signIn(page, user) {
  await page.goto('/');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('#computes, .empty').first().waitFor();
}

// state is the state shown in the row of an instance.
const rowState = (page, name) => page.locator(`tr[data-name="${name}"] [data-col=state] .state`);

async function screenshot(page, file) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const p = path.join(SHOTS, file);
  await page.screenshot({ path: p, fullPage: false });
  console.log(`screenshot: ${p}`);
}

module.exports = { SERVER, TOKEN, PASSWORD, WS, admin, as, chub, userToken, computePath, waitFor, deleteCompute, launch, newPage, signIn, rowState, screenshot };
