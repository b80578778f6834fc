// ComputeHub Studio: a small single-page app over the ComputeHub API (same
// origin, session cookie + double-submit CSRF header). No framework: a
// router over /ui/..., a few render functions and a 2-second poll.
'use strict';

const API = '2025-06-01';
const SUB = '00000000-0000-0000-0000-000000000000';
const PROVIDER = 'Microsoft.MachineLearningServices';
const LOCATION = 'local';
const ACT = 'Microsoft.MachineLearningServices/workspaces/computes/';
const ACTIONS = ['write', 'delete', 'start/action', 'stop/action', 'restart/action', 'applicationaccess/action'];
const POLL_MS = 2000;

// Which actions are valid in which states (as the server decides).
const CAN = {
  start: s => s === 'Stopped',
  stop: s => s === 'Running' || s === 'JobRunning',
  restart: s => s === 'Running' || s === 'JobRunning',
  delete: s => s !== 'Deleting',
};
const BUSY = new Set(['Creating', 'Starting', 'Stopping', 'Restarting', 'Deleting', 'SettingUp', 'UserSettingUp', 'Resizing']);
const BAD = new Set(['CreateFailed', 'SetupFailed', 'UserSetupFailed', 'Unusable', 'Unknown']);

const st = {
  me: null,
  workspaces: [],
  ws: null,           // current workspace (ARM object)
  perms: {},          // action suffix -> bool, for st.ws
  users: null,        // [{objectId,name,...}] when the caller may list users
  sizes: null,
  usages: null,
  computes: [],
  selected: new Set(),
  onlyMine: localStorage.getItem('chub-only-mine') === '1',
  timer: null,
  page: null,         // cleanup function of the current page
};

// ---------- small helpers ----------
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}
const $ = sel => document.querySelector(sel);
function cookie(name) {
  const m = document.cookie.split('; ').find(c => c.startsWith(name + '='));
  return m ? decodeURIComponent(m.slice(name.length + 1)) : '';
}
function fmtDate(s) {
  if (!s) return '—';
  const d = new Date(s);
  return isNaN(d) ? s : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
function gb(n) { return (n >= 1 ? n : n.toFixed(1)) + ' GB'; }

class ApiError extends Error {
  constructor(status, code, message, target) { super(message); this.status = status; this.code = code; this.target = target; }
  toString() { return (this.code ? this.code + ': ' : '') + this.message; }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRF-Token'] = cookie('chub_csrf');
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(0, 'NetworkError', 'the server could not be reached: ' + e.message);
  }
  let data = null;
  const text = await res.text();
  if (text) { try { data = JSON.parse(text); } catch { data = null; } }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const err = new ApiError(res.status, e.code || String(res.status), e.message || res.statusText || 'request failed', e.target);
    if (res.status === 401 && st.me && path !== '/chub/v1/session') signedOut(err.message, true);
    throw err;
  }
  return data;
}
function arm(path, extra) { return path + (path.includes('?') ? '&' : '?') + 'api-version=' + API + (extra || ''); }
async function listAll(path) {
  let out = [], next = arm(path);
  while (next) {
    const page = await api('GET', next.replace(/^https?:\/\/[^/]+/, ''));
    out = out.concat(page.value || []);
    next = page.nextLink || null;
  }
  return out;
}
const locPath = () => `/subscriptions/${SUB}/providers/${PROVIDER}/locations/${LOCATION}`;
const computesPath = () => st.ws.id + '/computes';
const computePath = name => computesPath() + '/' + encodeURIComponent(name);
const props = c => (c.properties && c.properties.properties) || {};
const stateOf = c => props(c).state || c.properties.provisioningState || 'Unknown';
function ownerOf(c) {
  const p = props(c);
  const a = p.personalComputeInstanceSettings && p.personalComputeInstanceSettings.assignedUser;
  return (a && a.objectId) || (p.createdBy && p.createdBy.userId) || '';
}
function userName(id) {
  if (!id) return '—';
  if (st.me && id === st.me.objectId) return st.me.name;
  const u = st.users && st.users.find(x => x.objectId === id);
  return u ? u.name : id;
}
function assignedName(c) {
  const p = props(c);
  const a = p.personalComputeInstanceSettings && p.personalComputeInstanceSettings.assignedUser;
  if (a && a.objectId) return userName(a.objectId);
  return (p.createdBy && p.createdBy.userName) || '—';
}
const isMine = c => { const p = props(c); return ownerOf(c) === st.me.objectId || (p.createdBy && p.createdBy.userId === st.me.objectId); };
const mayOpenApps = c => st.perms['applicationaccess/action'] && ownerOf(c) === st.me.objectId;
// appHref is where an application link goes: Studio's hand-off path (/instances/NAME/apps/APP/),
// which signs this browser in to the application's own origin (its endpointUri) with a one-time
// code and redirects there. Studio's cookies never go to that origin.
const appHref = (c, a) => {
  try { return '/instances/' + encodeURIComponent(c.name) + '/apps' + new URL(a.endpointUri).pathname; } catch { return a.endpointUri; }
};
function sizeOf(name) { return (st.sizes || []).find(s => s.name.toLowerCase() === String(name).toLowerCase()); }
function sizeText(name) {
  const s = sizeOf(name);
  if (!s) return name || '—';
  return `${s.vCPUs} core${s.vCPUs === 1 ? '' : 's'}, ${gb(s.memoryGB)} RAM${s.gpus ? `, ${s.gpus} GPU${s.gpus === 1 ? '' : 's'}` : ''}`;
}
function quotaLeft(family) {
  const u = (st.usages || []).find(x => x.name && x.name.value === family);
  return u ? Math.max(0, u.limit - u.currentValue) : null;
}
// STATE_LABEL is how a state reads where it differs from its name.
const STATE_LABEL = { JobRunning: 'Running jobs' };
function stateBadge(s) {
  const kind = s === 'Running' || s === 'JobRunning' ? 'ok' : BAD.has(s) ? 'bad' : BUSY.has(s) ? 'busy' : 'idle';
  return h('span', { class: 'state state-' + kind, 'data-state': s, title: s === 'JobRunning' ? 'Running, with jobs running on it' : null },
    h('span', { class: 'dot', 'aria-hidden': 'true' }), STATE_LABEL[s] || s);
}
function errorBox(err, id) {
  return h('div', { class: 'error', role: 'alert', id }, h('strong', {}, err.code && err.code !== String(err.status) ? err.code : 'Error'), ' ', err.message);
}
function showError(slot, err) {
  slot.replaceChildren(err ? errorBox(err) : '');
}

// ---------- routing ----------
function go(path, replace) {
  if (replace) history.replaceState(null, '', path); else history.pushState(null, '', path);
  route();
}
window.addEventListener('popstate', () => route());
document.addEventListener('click', e => {
  const a = e.target.closest('a[data-link]');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  go(a.getAttribute('href'));
});

function setTitle(t) { document.title = t ? `${t} · ComputeHub Studio` : 'ComputeHub Studio'; }
function mount(...kids) {
  if (st.page) { st.page(); st.page = null; }
  clearInterval(st.timer); st.timer = null;
  const main = $('#main');
  main.replaceChildren(...kids);
}

// jobLinkFromHash turns the job link the API gives (services.Studio.endpoint:
// /#/jobs/WORKSPACE-ARM-ID/NAME, or /#/jobs/NAME) into Studio's own address.
function jobLinkFromHash() {
  const m = location.hash.match(/^#\/jobs\/(.+)$/);
  if (!m) return;
  const parts = m[1].split('/');
  const name = decodeURIComponent(parts.pop());
  const ws = parts.map(decodeURIComponent).join('/');
  history.replaceState(null, '', '/ui/jobs/' + encodeURIComponent(name) + (ws ? '?ws=' + encodeURIComponent(ws) : ''));
}
// wsMatches says whether a ?ws= value (a workspace's name or ARM id) names w.
const wsMatches = (w, want) => !!w && !!want && (w.name === want || w.id.toLowerCase() === want.toLowerCase());
// followWorkspace switches to the workspace the address names, if another.
async function followWorkspace() {
  const want = new URLSearchParams(location.search).get('ws');
  if (!want || wsMatches(st.ws, want)) return;
  const w = st.workspaces.find(x => wsMatches(x, want));
  if (!w) return;
  st.ws = w;
  $('#ws-select').value = w.name;
  st.selected.clear();
  await loadPerms();
}
function setNav(section) {
  for (const a of document.querySelectorAll('#topnav a')) {
    const on = a.dataset.nav === section;
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

async function route() {
  jobLinkFromHash();
  const path = location.pathname;
  if (!st.me) {
    try { st.me = await api('GET', '/chub/v1/me'); } catch (e) {
      st.me = null;
      return renderSignIn(e.status === 401 ? '' : e);
    }
    await loadContext();
  }
  if (path === '/ui/signin') return go('/ui/compute', true);
  await followWorkspace();
  $('#topnav').hidden = false;
  setNav(path.startsWith('/ui/jobs') ? 'jobs' : 'compute');
  if (path === '/ui/jobs' || path === '/ui/jobs/') return renderJobs();
  const mj = path.match(/^\/ui\/jobs\/([^/]+)$/);
  if (mj) return renderJob(decodeURIComponent(mj[1]));
  const m = path.match(/^\/ui\/compute\/instances\/([^/]+)$/);
  if (m) return renderInstance(decodeURIComponent(m[1]));
  if (path === '/ui/compute/new') return renderNew();
  if (path !== '/ui/compute') history.replaceState(null, '', '/ui/compute' + location.search);
  return renderList();
}

async function loadContext() {
  $('#topbar-right').hidden = false;
  $('#who').textContent = st.me.displayName || st.me.name;
  $('#who').title = 'Signed in as ' + st.me.name;
  st.workspaces = await listAll(`/subscriptions/${SUB}/providers/${PROVIDER}/workspaces`).catch(() => []);
  const want = new URLSearchParams(location.search).get('ws') || localStorage.getItem('chub-ws');
  st.ws = st.workspaces.find(w => wsMatches(w, want)) || st.workspaces.find(w => w.name === 'default') || st.workspaces[0] || null;
  const sel = $('#ws-select');
  sel.replaceChildren(...st.workspaces.map(w => h('option', { value: w.name, selected: st.ws && w.name === st.ws.name }, (w.properties && w.properties.friendlyName) || w.name)));
  await Promise.all([
    loadPerms(),
    api('GET', '/chub/v1/users').then(r => { st.users = Array.isArray(r) ? r : (r.value || []); }, () => { st.users = null; }),
    api('GET', arm(locPath() + '/vmSizes')).then(r => { st.sizes = (r.value || []).filter(s => !s.supportedComputeTypes || s.supportedComputeTypes.includes('ComputeInstance')); }, () => { st.sizes = []; }),
  ]);
}
async function loadPerms() {
  st.perms = {};
  if (!st.ws) return;
  try {
    const r = await api('GET', '/chub/v1/permissions?scope=' + encodeURIComponent(st.ws.id) + '&actions=' + encodeURIComponent([...ACTIONS.map(a => ACT + a), ...JOB_ACTIONS.map(a => JOB_ACT + a)].join(',')));
    for (const a of ACTIONS) st.perms[a] = !!r.allowed[ACT + a];
    for (const a of JOB_ACTIONS) st.perms['jobs/' + a] = !!r.allowed[JOB_ACT + a];
  } catch { /* no permissions known: show nothing that would fail */ }
}
$('#ws-select').addEventListener('change', async e => {
  st.ws = st.workspaces.find(w => w.name === e.target.value);
  localStorage.setItem('chub-ws', st.ws.name);
  st.selected.clear();
  await loadPerms();
  go((location.pathname.startsWith('/ui/jobs') ? '/ui/jobs' : '/ui/compute') + '?ws=' + encodeURIComponent(st.ws.name));
});
$('#signout').addEventListener('click', async () => {
  try { await api('DELETE', '/chub/v1/session'); } catch { /* signed out anyway */ }
  signedOut('');
});
// signedOut shows the sign-in page; keep leaves the address as it is, so
// that signing in again returns to the same page.
function signedOut(msg, keep) {
  st.me = null;
  $('#topbar-right').hidden = true;
  $('#topnav').hidden = true;
  if (!keep) history.replaceState(null, '', '/ui/signin');
  renderSignIn(msg ? new ApiError(401, 'SignedOut', msg) : '');
}

// ---------- sign in ----------
function renderSignIn(err) {
  setTitle('Sign in');
  $('#topbar-right').hidden = true;
  $('#topnav').hidden = true;
  const slot = h('div', { class: 'form-error', 'aria-live': 'polite' });
  if (err) showError(slot, err);
  let useToken = false;
  const user = h('input', { id: 'signin-user', name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { id: 'signin-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const token = h('input', { id: 'signin-token', name: 'token', type: 'password', autocomplete: 'off' });
  const pwFields = h('div', {}, field('User name', user), field('Password', pass));
  const tokFields = h('div', { hidden: true }, field('API token', token, 'Make one with chub token create.'));
  const toggle = h('button', { type: 'button', class: 'btn-link', id: 'signin-mode' }, 'Sign in with an API token instead');
  toggle.addEventListener('click', () => {
    useToken = !useToken;
    pwFields.hidden = useToken; tokFields.hidden = !useToken;
    user.required = pass.required = !useToken; token.required = useToken;
    toggle.textContent = useToken ? 'Sign in with user name and password instead' : 'Sign in with an API token instead';
    (useToken ? token : user).focus();
  });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-wide' }, 'Sign in');
  const form = h('form', { class: 'card signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to ComputeHub'),
    h('p', { class: 'muted' }, 'Your compute instances, notebooks and terminals.'),
    pwFields, tokFields, slot, submit, toggle);
  form.addEventListener('submit', async e => {
    e.preventDefault();
    submit.disabled = true; showError(slot, null);
    try {
      await api('POST', '/chub/v1/session', useToken ? { token: token.value.trim() } : { userName: user.value.trim(), password: pass.value });
      st.me = null;
      const dest = location.pathname.startsWith('/ui/') && location.pathname !== '/ui/signin' ? location.pathname + location.search : '/ui/compute';
      history.replaceState(null, '', dest);
      await route();
    } catch (err) {
      showError(slot, err);
      submit.disabled = false;
    }
  });
  mount(h('div', { class: 'center' }, form));
  user.focus();
}
function field(label, input, hint, extra) {
  const id = input.id || ('f-' + Math.random().toString(36).slice(2));
  input.id = id;
  const hintEl = hint ? h('div', { class: 'hint', id: id + '-hint' }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', id + '-hint');
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, extra || null, hintEl);
}

// ---------- compute list ----------
function pageHeader(title, crumbs) {
  return h('div', { class: 'page-head' },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, crumbs),
    h('h1', {}, title));
}
function noWorkspace() {
  setTitle('Compute');
  mount(pageHeader('Compute', ''), h('div', { class: 'card empty' }, h('p', {}, 'No workspace is visible to you. Ask an administrator for access to a workspace.')));
}

async function act(verb, c) {
  const path = computePath(c.name);
  if (verb === 'delete') return api('DELETE', arm(path, '&underlyingResourceAction=Delete'));
  return api('POST', arm(path + '/' + verb));
}
const VERBS = [['start', 'Start', 'start/action'], ['stop', 'Stop', 'stop/action'], ['restart', 'Restart', 'restart/action'], ['delete', 'Delete', 'delete']];

function confirmDialog(title, text, okLabel, dismissLabel) {
  return new Promise(resolve => {
    const ok = h('button', { type: 'button', class: 'btn btn-danger', value: 'ok' }, okLabel);
    const cancel = h('button', { type: 'button', class: 'btn' }, dismissLabel || 'Cancel');
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'dlg-title' },
      h('h2', { id: 'dlg-title' }, title), h('p', {}, text), h('div', { class: 'dialog-actions' }, cancel, ok));
    const back = document.activeElement;
    const done = v => { dlg.close(); dlg.remove(); if (back && back.isConnected) back.focus(); resolve(v); };
    ok.addEventListener('click', () => done(true));
    cancel.addEventListener('click', () => done(false));
    dlg.addEventListener('cancel', e => { e.preventDefault(); done(false); });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

async function runVerb(verb, list, slot, after) {
  if (verb === 'delete') {
    const names = list.map(c => c.name).join(', ');
    if (!await confirmDialog(`Delete ${list.length === 1 ? 'compute instance' : list.length + ' compute instances'}?`,
      `${names} will be deleted with its disk. This cannot be undone.`, 'Delete')) return;
  }
  showError(slot, null);
  const errs = [];
  await Promise.all(list.map(c => act(verb, c).catch(e => errs.push({ c, e }))));
  if (errs.length) {
    slot.replaceChildren(...errs.map(({ c, e }) => h('div', { class: 'error', role: 'alert' }, h('strong', {}, `${VERBS.find(v => v[0] === verb)[1]} ${c.name}: ${e.code}`), ' ', e.message)));
  }
  if (after) await after();
}

function renderList() {
  if (!st.ws) return noWorkspace();
  setTitle('Compute');
  const slot = h('div', { class: 'action-errors', 'aria-live': 'polite' });
  const buttons = {};
  const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Compute instance actions' });
  if (st.perms.write) toolbar.append(h('a', { class: 'btn btn-primary', href: '/ui/compute/new', 'data-link': true, id: 'new-compute' }, '+ New'));
  const refresh = h('button', { type: 'button', class: 'btn', id: 'refresh' }, '⟳ Refresh');
  refresh.addEventListener('click', () => load(true));
  toolbar.append(refresh);
  for (const [verb, label, perm] of VERBS) {
    if (!st.perms[perm]) continue;
    const b = h('button', { type: 'button', class: 'btn' + (verb === 'delete' ? ' btn-danger-ghost' : ''), id: 'action-' + verb, disabled: true }, label);
    b.addEventListener('click', () => runVerb(verb, selectedComputes(), slot, () => load(true)));
    buttons[verb] = b;
    toolbar.append(b);
  }
  const mine = h('input', { type: 'checkbox', id: 'only-mine', checked: st.onlyMine });
  mine.addEventListener('change', () => { st.onlyMine = mine.checked; localStorage.setItem('chub-only-mine', mine.checked ? '1' : '0'); draw(); });
  toolbar.append(h('label', { class: 'check toolbar-right' }, mine, 'Show only mine'));

  const all = h('input', { type: 'checkbox', 'aria-label': 'Select all instances', id: 'select-all' });
  all.addEventListener('change', () => { for (const c of visible()) all.checked ? st.selected.add(c.name) : st.selected.delete(c.name); draw(); });
  const tbody = h('tbody');
  const table = h('table', { class: 'grid', id: 'computes' },
    h('caption', { class: 'sr-only' }, 'Compute instances'),
    h('thead', {}, h('tr', {}, h('th', { class: 'col-check' }, all), ...['Name', 'State', 'Applications', 'Virtual machine size', 'Created by', 'Assigned to', 'Created on'].map(t => h('th', { scope: 'col' }, t)))),
    tbody);
  const empty = h('div', { class: 'empty', hidden: true });
  const listErr = h('div', { 'aria-live': 'polite' });
  const rows = new Map();

  const visible = () => st.computes.filter(c => !st.onlyMine || isMine(c));
  const selectedComputes = () => st.computes.filter(c => st.selected.has(c.name));

  function cells(c) {
    const p = props(c);
    const apps = mayOpenApps(c) && (stateOf(c) === 'Running' || stateOf(c) === 'JobRunning') ? (p.applications || []) : [];
    return [
      ['name', c.name, () => h('a', { href: '/ui/compute/instances/' + encodeURIComponent(c.name), 'data-link': true, class: 'name-link' }, c.name)],
      ['state', stateOf(c), () => stateBadge(stateOf(c))],
      ['apps', apps.map(a => a.displayName + a.endpointUri).join('|'), () => apps.length ? h('span', { class: 'apps' }, apps.map(a => h('a', { href: appHref(c, a), target: '_blank', rel: 'noopener', class: 'app-link' }, a.displayName)),
        h('a', { href: '/ui/compute/instances/' + encodeURIComponent(c.name) + '?tab=terminal', 'data-link': true, class: 'app-link' }, 'Terminal')) : h('span', { class: 'muted' }, '—')],
      ['size', p.vmSize, () => h('span', {}, h('span', { class: 'mono' }, p.vmSize || '—'), h('br'), h('span', { class: 'muted small' }, sizeText(p.vmSize)))],
      ['by', (p.createdBy && p.createdBy.userName) || '', () => (p.createdBy && p.createdBy.userName) || '—'],
      ['assigned', assignedName(c), () => assignedName(c)],
      ['created', c.properties.createdOn, () => fmtDate(c.properties.createdOn)],
    ];
  }
  function draw() {
    const vis = visible();
    const names = new Set(vis.map(c => c.name));
    for (const n of [...st.selected]) if (!st.computes.some(c => c.name === n)) st.selected.delete(n);
    for (const [n, r] of rows) if (!names.has(n)) { r.tr.remove(); rows.delete(n); }
    vis.forEach((c, i) => {
      let r = rows.get(c.name);
      if (!r) {
        const cb = h('input', { type: 'checkbox', 'aria-label': 'Select ' + c.name, class: 'row-check' });
        cb.addEventListener('change', () => { cb.checked ? st.selected.add(c.name) : st.selected.delete(c.name); draw(); });
        const tr = h('tr', { 'data-name': c.name }, h('td', { class: 'col-check' }, cb));
        r = { tr, cb, sig: {}, tds: {} };
        for (const [k] of cells(c)) { r.tds[k] = h('td', { 'data-col': k, 'data-label': k }); tr.append(r.tds[k]); }
        rows.set(c.name, r);
      }
      if (tbody.children[i] !== r.tr) tbody.insertBefore(r.tr, tbody.children[i] || null);
      r.cb.checked = st.selected.has(c.name);
      r.tr.classList.toggle('selected', r.cb.checked);
      for (const [k, sig, make] of cells(c)) {
        if (r.sig[k] !== sig) { r.sig[k] = sig; r.tds[k].replaceChildren(make()); }
      }
    });
    const sel = selectedComputes();
    for (const [verb, b] of Object.entries(buttons)) b.disabled = sel.length === 0 || !sel.every(c => CAN[verb](stateOf(c)));
    all.checked = vis.length > 0 && vis.every(c => st.selected.has(c.name));
    empty.hidden = vis.length > 0;
    table.hidden = vis.length === 0;
    empty.replaceChildren(st.computes.length === 0
      ? h('p', {}, 'No compute instances yet. ', st.perms.write ? h('a', { href: '/ui/compute/new', 'data-link': true }, 'Create one') : 'Ask a contributor to create one for you.', '.')
      : h('p', {}, 'None of the compute instances here is yours. Clear “Show only mine” to see all of them.'));
  }
  let loading = false;
  async function load(manual) {
    if (loading) return;
    loading = true;
    if (manual) refresh.disabled = true;
    try {
      st.computes = (await listAll(computesPath())).filter(c => c.properties && c.properties.computeType === 'ComputeInstance');
      st.computes.sort((a, b) => a.name.localeCompare(b.name));
      showError(listErr, null);
      draw();
    } catch (e) {
      showError(listErr, e);
    } finally {
      loading = false;
      refresh.disabled = false;
    }
  }
  mount(
    pageHeader('Compute', [h('span', {}, st.ws.name)]),
    h('div', { class: 'tabs', role: 'tablist' }, h('span', { class: 'tab active', role: 'tab', 'aria-selected': 'true' }, 'Compute instances')),
    h('section', { class: 'card' }, toolbar, slot, listErr, h('div', { class: 'table-wrap' }, table), empty));
  draw();
  load();
  st.timer = setInterval(load, POLL_MS);
}

// ---------- new compute ----------
async function renderNew() {
  if (!st.ws) return noWorkspace();
  setTitle('New compute instance');
  st.usages = await api('GET', arm(locPath() + '/usages')).then(r => r.value || [], () => []);
  const name = h('input', { id: 'new-name', name: 'name', required: true, autocomplete: 'off', spellcheck: 'false', maxlength: 24 });
  const nameMsg = h('div', { class: 'field-msg', id: 'new-name-msg', 'aria-live': 'polite' });
  name.setAttribute('aria-describedby', 'new-name-msg');
  let nameSeq = 0, nameTimer = null, nameOK = false;
  name.addEventListener('input', () => {
    clearTimeout(nameTimer);
    nameOK = false;
    nameMsg.className = 'field-msg';
    nameMsg.textContent = '';
    if (!name.value) return;
    nameTimer = setTimeout(async () => {
      const seq = ++nameSeq;
      try {
        const r = await api('POST', arm(st.ws.id + '/checkComputeNameAvailability'), { name: name.value, type: 'ComputeInstance' });
        if (seq !== nameSeq) return;
        nameOK = !!r.nameAvailable;
        nameMsg.className = 'field-msg ' + (nameOK ? 'ok' : 'bad');
        nameMsg.textContent = nameOK ? '✓ ' + name.value + ' is available' : (r.message || r.reason || 'this name cannot be used');
        name.setAttribute('aria-invalid', nameOK ? 'false' : 'true');
      } catch (e) {
        if (seq === nameSeq) { nameMsg.className = 'field-msg bad'; nameMsg.textContent = e.message; }
      }
    }, 250);
  });

  const sizes = st.sizes || [];
  const size = h('select', { id: 'new-size', name: 'vmSize' }, sizes.map(s => {
    const left = quotaLeft(s.family);
    return h('option', { value: s.name, selected: s.name === 'Standard_DS3_v2' || s.name === 'Standard_B2s' },
      `${s.name} — ${sizeText(s.name)}${left === null ? '' : ` · ${left} cores left`}`);
  }));
  const sizeInfo = h('div', { class: 'size-info', id: 'new-size-info', 'aria-live': 'polite' });
  const showSize = () => {
    const s = sizeOf(size.value);
    if (!s) return sizeInfo.replaceChildren();
    const left = quotaLeft(s.family);
    sizeInfo.replaceChildren(
      h('span', { class: 'pill' }, `${s.vCPUs} vCPU${s.vCPUs === 1 ? '' : 's'}`),
      h('span', { class: 'pill' }, gb(s.memoryGB) + ' RAM'),
      h('span', { class: 'pill' }, `${s.gpus || 0} GPU${s.gpus === 1 ? '' : 's'}`),
      h('span', { class: 'pill' + (left !== null && left < s.vCPUs ? ' pill-bad' : '') }, left === null ? s.family : `${left} of ${s.family} quota left`));
  };
  size.addEventListener('change', showSize);
  showSize();

  const ssh = h('input', { type: 'checkbox', id: 'new-ssh' });
  const key = h('textarea', { id: 'new-ssh-key', rows: 3, spellcheck: 'false', placeholder: 'ssh-ed25519 AAAA… you@laptop' });
  const keyField = field('SSH public key', key, 'The public key (one line) of the key pair you will connect with. The user name is azureuser.');
  keyField.hidden = true;
  ssh.addEventListener('change', () => { keyField.hidden = !ssh.checked; key.required = ssh.checked; });

  let assign = null;
  if (st.users) {
    assign = h('select', { id: 'new-assign' }, h('option', { value: '' }, `Myself (${st.me.name})`),
      st.users.filter(u => u.objectId !== st.me.objectId).map(u => h('option', { value: u.objectId }, u.displayName && u.displayName !== u.name ? `${u.name} (${u.displayName})` : u.name)));
  }
  const subnet = h('input', { id: 'new-subnet', spellcheck: 'false', placeholder: '/subscriptions/…/virtualNetworks/VNET/subnets/SUBNET' });
  const desc = h('textarea', { id: 'new-desc', rows: 2 });
  const tags = h('textarea', { id: 'new-tags', rows: 2, spellcheck: 'false', placeholder: 'team=vision\nproject=cats' });
  const slot = h('div', { class: 'form-error', id: 'new-error', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'new-create' }, 'Create');
  const cancel = h('a', { class: 'btn', href: '/ui/compute', 'data-link': true }, 'Cancel');

  const form = h('form', { class: 'card form', novalidate: true },
    h('h2', {}, 'Required settings'),
    field('Compute name', name, null, nameMsg),
    field('Virtual machine size', size, 'Cores, memory and GPUs of each size, and the quota of its family left in this region.', sizeInfo),
    h('h2', {}, 'Security'),
    h('div', { class: 'field' }, h('label', { class: 'check' }, ssh, 'Enable SSH access')),
    keyField,
    assign ? field('Assign to another user', assign, 'The instance will be theirs: only they can open its applications and terminal.') : null,
    h('details', { class: 'field' }, h('summary', {}, 'Virtual network'),
      field('Subnet', subnet, 'The resource ID of a subnet to join. Leave empty for the default network.')),
    h('h2', {}, 'Details'),
    field('Description', desc),
    field('Tags', tags, 'One key=value per line.'),
    slot,
    h('div', { class: 'form-actions' }, submit, cancel));
  form.addEventListener('submit', async e => {
    e.preventDefault();
    showError(slot, null);
    if (!name.value) { name.focus(); return showError(slot, new ApiError(400, 'NameRequired', 'give the instance a name')); }
    if (ssh.checked && !key.value.trim()) { key.focus(); return showError(slot, new ApiError(400, 'SshKeyRequired', 'paste an SSH public key, or turn SSH off')); }
    const tagMap = {};
    for (const line of tags.value.split('\n').map(l => l.trim()).filter(Boolean)) {
      const i = line.indexOf('=');
      if (i <= 0) { tags.focus(); return showError(slot, new ApiError(400, 'InvalidTag', `“${line}” is not key=value`)); }
      tagMap[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    const inner = { vmSize: size.value };
    if (ssh.checked) inner.sshSettings = { sshPublicAccess: 'Enabled', adminPublicKey: key.value.trim() };
    if (assign && assign.value) inner.personalComputeInstanceSettings = { assignedUser: { objectId: assign.value, tenantId: st.me.tenantId } };
    if (subnet.value.trim()) inner.subnet = { id: subnet.value.trim() };
    const body = { location: st.ws.location || LOCATION, tags: tagMap, properties: { computeType: 'ComputeInstance', description: desc.value, properties: inner } };
    submit.disabled = true;
    submit.textContent = 'Creating…';
    try {
      await api('PUT', arm(computePath(name.value)), body);
      go('/ui/compute');
    } catch (err) {
      showError(slot, err);
      submit.disabled = false;
      submit.textContent = 'Create';
    }
  });
  mount(pageHeader('New compute instance', [h('a', { href: '/ui/compute', 'data-link': true }, 'Compute'), ' / ', h('span', {}, 'New')]), form);
  name.focus();
}

// ---------- instance page ----------
function renderInstance(name) {
  if (!st.ws) return noWorkspace();
  setTitle(name);
  const tab = { terminal: 'terminal', jobs: 'jobs' }[new URLSearchParams(location.search).get('tab')] || 'details';
  const slot = h('div', { class: 'action-errors', 'aria-live': 'polite' });
  const head = h('div', { class: 'instance-head' });
  const body = h('div', {});
  const tabDetails = h('a', { class: 'tab', role: 'tab', href: '/ui/compute/instances/' + encodeURIComponent(name), 'data-link': true, id: 'tab-details' }, 'Details');
  const tabJobs = h('a', { class: 'tab', role: 'tab', href: '/ui/compute/instances/' + encodeURIComponent(name) + '?tab=jobs', 'data-link': true, id: 'tab-jobs' }, 'Jobs');
  const tabTerm = h('a', { class: 'tab', role: 'tab', href: '/ui/compute/instances/' + encodeURIComponent(name) + '?tab=terminal', 'data-link': true, id: 'tab-terminal' }, 'Terminal');
  const activeTab = { terminal: tabTerm, jobs: tabJobs }[tab] || tabDetails;
  activeTab.classList.add('active');
  activeTab.setAttribute('aria-selected', 'true');
  let c = null, term = null, jobs = null, sig = '';
  const buttons = {};
  const actions = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Instance actions' });
  for (const [verb, label, perm] of VERBS) {
    if (!st.perms[perm]) continue;
    const b = h('button', { type: 'button', class: 'btn' + (verb === 'delete' ? ' btn-danger-ghost' : ''), id: 'action-' + verb, disabled: true }, label);
    b.addEventListener('click', () => runVerb(verb, [c], slot, load));
    buttons[verb] = b;
    actions.append(b);
  }
  const refresh = h('button', { type: 'button', class: 'btn', id: 'refresh' }, '⟳ Refresh');
  refresh.addEventListener('click', () => load());
  actions.prepend(refresh);

  function drawHead() {
    head.replaceChildren(h('h1', {}, name), c ? stateBadge(stateOf(c)) : '');
    for (const [verb, b] of Object.entries(buttons)) b.disabled = !c || !CAN[verb](stateOf(c));
  }
  function drawDetails() {
    const p = props(c);
    const s = sizeOf(p.vmSize);
    const ce = p.connectivityEndpoints || {};
    const sshs = p.sshSettings || {};
    const lo = p.lastOperation;
    const row = (k, v) => [h('dt', {}, k), h('dd', {}, v === undefined || v === null || v === '' || (Array.isArray(v) && !v.length) ? '—' : v)];
    const host = ce.publicIpAddress || location.hostname;
    const sshCmd = sshs.sshPublicAccess === 'Enabled' && sshs.sshPort ? `ssh -p ${sshs.sshPort} ${sshs.adminUserName || 'azureuser'}@${host}` : '';
    const apps = mayOpenApps(c) ? (p.applications || []) : [];
    const running = stateOf(c) === 'Running' || stateOf(c) === 'JobRunning';
    const copyBtn = h('button', { type: 'button', class: 'btn btn-small', id: 'copy-ssh' }, 'Copy');
    copyBtn.addEventListener('click', async () => {
      try { await navigator.clipboard.writeText(sshCmd); copyBtn.textContent = 'Copied'; } catch { copyBtn.textContent = 'Select and copy'; }
      setTimeout(() => { copyBtn.textContent = 'Copy'; }, 1500);
    });
    const errs = [...(p.errors || []), ...(c.properties.provisioningErrors || []).map(e => e.error || e)];
    body.replaceChildren(h('div', { class: 'detail-grid' },
      h('section', { class: 'card' }, h('h2', {}, 'Attributes'), h('dl', { class: 'props', id: 'details' },
        row('State', stateBadge(stateOf(c))),
        row('Virtual machine size', s ? `${p.vmSize} (${sizeText(p.vmSize)})` : p.vmSize),
        row('Jobs at a time', jobSlots(c) ? jobSlots(c) + (p.maxConcurrentJobs ? '' : ' (one per vCPU)') : ''),
        row('Region', c.location),
        row('Public IP address', ce.publicIpAddress),
        row('Private IP address', ce.privateIpAddress),
        row('Created by', p.createdBy && p.createdBy.userName),
        row('Assigned to', assignedName(c)),
        row('Created on', fmtDate(c.properties.createdOn)),
        row('Description', c.properties.description),
        row('Tags', Object.entries(c.tags || {}).map(([k, v]) => h('span', { class: 'pill' }, `${k}: ${v}`))),
        row('Last operation', lo ? `${lo.operationName} · ${lo.operationStatus} · ${fmtDate(lo.operationTime)}` : ''))),
      h('div', {},
        h('section', { class: 'card' }, h('h2', {}, 'Applications'),
          apps.length && running ? h('ul', { class: 'app-list' }, apps.map(a => h('li', {}, h('a', { href: appHref(c, a), target: '_blank', rel: 'noopener', class: 'app-link' }, a.displayName))),
            h('li', {}, h('a', { href: '/ui/compute/instances/' + encodeURIComponent(c.name) + '?tab=terminal', 'data-link': true, class: 'app-link' }, 'Terminal')))
            : h('p', { class: 'muted' }, !mayOpenApps(c) ? 'Only the instance’s user can open its applications.' : running ? 'No applications.' : 'Applications are available while the instance runs.')),
        h('section', { class: 'card' }, h('h2', {}, 'SSH access'),
          sshCmd ? h('div', { class: 'copy-row' }, h('code', { id: 'ssh-command' }, sshCmd), copyBtn) : h('p', { class: 'muted' }, 'SSH is not enabled on this instance.')),
        errs.length ? h('section', { class: 'card' }, h('h2', {}, 'Errors'), errs.map(e => errorBox({ code: e.code, message: e.message }))) : null,
        history)));
  }
  // Operation history, from the audit log, for those who may read it.
  const history = h('section', { class: 'card', id: 'history', hidden: true });
  const OPS = { write: 'Create or update', delete: 'Delete', 'start/action': 'Start', 'stop/action': 'Stop', 'restart/action': 'Restart', 'applicationaccess/action': 'Open application', 'resize/action': 'Resize' };
  async function loadHistory() {
    if (st.canAudit === false || !c) return;
    try {
      const r = await api('GET', '/chub/v1/auditLogs?top=15&resource=' + encodeURIComponent(c.id));
      st.canAudit = true;
      const es = (r.value || []).filter(e => !/\/read$/.test(e.action));
      history.hidden = false;
      history.replaceChildren(h('h2', {}, 'Operation history'), es.length ? h('table', { class: 'grid history' },
        h('thead', {}, h('tr', {}, ['When', 'Operation', 'By', 'Result'].map(t => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, es.map(e => h('tr', {},
          h('td', {}, fmtDate(e.time)),
          h('td', {}, OPS[e.action.replace(ACT, '')] || e.action.replace(ACT, ''), e.detail ? h('span', { class: 'muted small' }, ' · ' + e.detail) : ''),
          h('td', {}, e.principalName || '—'),
          h('td', {}, h('span', { class: e.result === 'Succeeded' ? 'ok-text' : 'bad-text' }, e.result)))))) : h('p', { class: 'muted' }, 'No operations recorded yet.'));
    } catch (e) {
      if (e.status === 403) st.canAudit = false;
    }
  }
  async function load() {
    try {
      c = await api('GET', arm(computePath(name)));
      showError(slot, null);
    } catch (e) {
      if (e.status === 404) { c = null; clearInterval(st.timer); body.replaceChildren(h('div', { class: 'card empty' }, h('p', {}, `Compute instance ${name} does not exist (any more). `, h('a', { href: '/ui/compute', 'data-link': true }, 'Back to the list')))); drawHead(); return; }
      showError(slot, e); return;
    }
    drawHead();
    if (tab === 'details') {
      const s = JSON.stringify([c.properties, c.tags]);
      if (s !== sig) { sig = s; drawDetails(); loadHistory(); }
    } else if (tab === 'jobs') {
      if (!jobs) jobs = instanceJobs(c, body); else jobs.load(c);
    } else if (!term) {
      term = openTerminal(c, body);
    } else term.state(stateOf(c));
  }
  mount(pageHeader('', [h('a', { href: '/ui/compute', 'data-link': true }, 'Compute'), ' / ', h('span', {}, name)]), head,
    h('div', { class: 'card card-flat' }, actions, slot),
    h('div', { class: 'tabs', role: 'tablist' }, tabDetails, tabJobs, tabTerm), body);
  $('#main .page-head h1').remove();
  drawHead();
  st.page = () => { if (term) term.close(); };
  load();
  st.timer = setInterval(load, POLL_MS);
}

// ---------- terminal ----------
function openTerminal(c, into) {
  const key = 'chub-terminal:' + c.id;
  const status = h('div', { class: 'term-status', id: 'term-status', 'aria-live': 'polite' });
  const box = h('div', { class: 'term', id: 'terminal' });
  const again = h('button', { type: 'button', class: 'btn btn-small', hidden: true }, 'New session');
  into.replaceChildren(h('section', { class: 'card term-card' }, h('div', { class: 'term-bar' }, status, again), box));
  const running = s => s === 'Running' || s === 'JobRunning';
  let ws = null, closed = false, gotSession = false, retried = false;
  if (!mayOpenApps(c) && ownerOf(c) !== st.me.objectId) {
    status.textContent = 'Only the instance’s user can open its terminal.';
    return { close() {}, state() {} };
  }
  const term = new window.Terminal({
    cursorBlink: true, fontSize: 13, scrollback: 5000, convertEol: false,
    fontFamily: 'ui-monospace, "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace',
    theme: { background: '#1b1f24', foreground: '#e6edf3', cursor: '#7cc4ff', selectionBackground: '#264f78' },
  });
  term.open(box);
  const enc = new TextEncoder();
  function size() {
    const cell = term._core && term._core._renderService && term._core._renderService.dimensions && term._core._renderService.dimensions.css.cell;
    const cw = (cell && cell.width) || 7.8, ch = (cell && cell.height) || 17;
    const cols = Math.max(20, Math.floor((box.clientWidth - 12) / cw));
    const rows = Math.max(8, Math.floor((box.clientHeight - 8) / ch));
    if (cols !== term.cols || rows !== term.rows) term.resize(cols, rows);
    if (ws && ws.readyState === 1) ws.send(frame(3, enc.encode(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }))));
  }
  function frame(ch, bytes) { const b = new Uint8Array(bytes.length + 1); b[0] = ch; b.set(bytes, 1); return b; }
  function connect() {
    if (closed) return;
    if (!running(stateOf(c))) { status.textContent = `The instance is ${stateOf(c)}: the terminal opens while it runs.`; return; }
    size();
    const sid = sessionStorage.getItem(key);
    const url = new URL(arm(computePath(c.name) + '/terminal', (sid ? '&session=' + encodeURIComponent(sid) : '') + `&cols=${term.cols}&rows=${term.rows}`), location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    status.textContent = sid ? 'Re-attaching…' : 'Connecting…';
    gotSession = false;
    ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onmessage = ev => {
      const b = new Uint8Array(ev.data);
      if (b[0] === 1) term.write(b.subarray(1));
      else if (b[0] === 3) {
        let m; try { m = JSON.parse(new TextDecoder().decode(b.subarray(1))); } catch { return; }
        if (m.type === 'session') {
          gotSession = true;
          sessionStorage.setItem(key, m.id);
          status.textContent = (sid ? 'Re-attached to session ' : 'Connected · session ') + m.id.slice(0, 8);
          status.dataset.session = m.id;
          size();
          term.focus();
        } else if (m.type === 'exit') {
          sessionStorage.removeItem(key);
          status.textContent = `The shell exited (code ${m.code}).`;
          again.hidden = false;
        } else if (m.type === 'error') {
          status.textContent = m.message || 'terminal error';
        }
      }
    };
    ws.onclose = () => {
      ws = null;
      if (closed) return;
      if (!gotSession && sid && !retried) {
        // The session ended or expired: start a fresh one.
        retried = true;
        sessionStorage.removeItem(key);
        term.write('\r\n\x1b[2m(the earlier session has ended; starting a new one)\x1b[0m\r\n');
        return connect();
      }
      if (again.hidden) { status.textContent = gotSession ? 'Disconnected.' : 'The terminal could not be opened.'; again.hidden = false; again.textContent = 'Reconnect'; }
    };
  }
  again.addEventListener('click', () => { again.hidden = true; retried = false; if (again.textContent === 'New session') { term.reset(); } connect(); });
  term.onData(d => { if (ws && ws.readyState === 1) ws.send(frame(0, enc.encode(d))); });
  const onResize = () => size();
  window.addEventListener('resize', onResize);
  connect();
  return {
    close() { closed = true; window.removeEventListener('resize', onResize); if (ws) ws.close(1000); term.dispose(); },
    state(s) {
      const was = running(stateOf(c));
      c = Object.assign({}, c, { properties: Object.assign({}, c.properties, { properties: Object.assign({}, props(c), { state: s }) }) });
      if (!was && running(s) && !ws) connect();
    },
  };
}

route();
