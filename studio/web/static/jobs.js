// ComputeHub Studio: jobs. The workspace's Jobs page, a job's page (status,
// properties, command, inputs and outputs, live logs, cancel, download) and
// the Jobs tab of an instance page. Loaded before studio.js, whose helpers
// (h, api, arm, st, mount, ...) these functions call when they run.
'use strict';

const JOB_ACT = 'Microsoft.MachineLearningServices/workspaces/jobs/';
const JOB_ACTIONS = ['cancel/action', 'delete', 'write'];
const JOB_ACTIVE = new Set(['NotStarted', 'Queued', 'Preparing', 'Running', 'Finalizing', 'CancelRequested']);
const JOB_VIEWS = [['active', 'ActiveOnly', 'Not archived'], ['archived', 'ArchivedOnly', 'Archived'], ['all', 'All', 'All']];
const JOB_LIST_LIMIT = 100;   // newest jobs a table shows before "Show more"
const LOG_KEEP = 2 << 20;     // characters of log the page keeps (the newest)

const jobsPath = () => st.ws.id + '/jobs';
const jobPath = name => jobsPath() + '/' + encodeURIComponent(name);
const jobHref = name => '/ui/jobs/' + encodeURIComponent(name) + (st.ws ? '?ws=' + encodeURIComponent(st.ws.name) : '');
const jprops = j => (j && j.properties) || {};
const jobStatus = j => jprops(j).status || 'Unknown';
const jobActive = j => JOB_ACTIVE.has(jobStatus(j));
const jobCreated = j => (j.systemData && j.systemData.createdAt) || jprops(j).creationContext && jprops(j).creationContext.createdAt || '';
const jobCreatedBy = j => (j.systemData && j.systemData.createdBy) || '';
function computeName(id) {
  const m = String(id || '').match(/\/computes\/([^/]+)\/?$/i) || String(id || '').match(/^azureml:([^/:]+)$/i);
  return m ? decodeURIComponent(m[1]) : (id || '');
}
// assetText names a code or environment version by "name:version".
function assetText(id) {
  const m = String(id || '').match(/\/(codes|environments)\/([^/]+)\/versions\/([^/]+)$/i);
  return m ? `${decodeURIComponent(m[2])}:${decodeURIComponent(m[3])}` : (id || '');
}

// jobSlots is how many jobs the instance runs at once: its setting, at most
// one per vCPU of its size (0 when unknown).
function jobSlots(c) {
  const p = props(c), s = sizeOf(p.vmSize), v = (s && s.vCPUs) || 0;
  const n = p.maxConcurrentJobs > 0 ? p.maxConcurrentJobs : v;
  return v ? Math.min(n, v) : n;
}

// inlineField is a small labelled select at the right of a toolbar.
function inlineField(label, select) {
  return h('span', { class: 'inline-field toolbar-right' }, h('label', { for: select.id }, label), select);
}

// ---------- formatting ----------
function fmtDuration(ms) {
  if (ms === null || ms === undefined || isNaN(ms) || ms < 0) return '—';
  const s = Math.floor(ms / 1000);
  const pad = n => String(n).padStart(2, '0');
  if (s < 60) return s + 's';
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
}
// jobDuration is how long the job ran: start to end, or to now while it runs.
function jobDuration(j) {
  const p = jprops(j);
  if (!p.startTime) return null;
  const end = p.endTime ? Date.parse(p.endTime) : Date.now();
  return end - Date.parse(p.startTime);
}
function jobBadge(s) {
  const kind = s === 'Completed' ? 'ok' : s === 'Failed' ? 'bad' : s === 'Canceled' ? 'idle'
    : s === 'NotStarted' || s === 'Queued' ? 'queued' : JOB_ACTIVE.has(s) ? 'run' : 'idle';
  const label = { NotStarted: 'Not started', CancelRequested: 'Cancel requested' }[s] || s;
  return h('span', { class: 'state state-' + kind, 'data-state': s }, h('span', { class: 'dot', 'aria-hidden': 'true' }), label);
}
function jobHelp(compute) {
  return h('p', { class: 'muted small' }, 'Submit one with ',
    h('code', {}, `chub job create --compute ${compute || 'INSTANCE'} -- python train.py`),
    ' or the Azure ML SDK and CLI (a command job with ', h('code', {}, `compute: azureml:${compute || 'INSTANCE'}`), ').');
}

// listSome pages through a list until it has limit items; more says there are others.
async function listSome(path, extra, limit) {
  let out = [], next = arm(path, extra), more = false;
  while (next) {
    const page = await api('GET', next.replace(/^https?:\/\/[^/]+/, ''));
    out = out.concat(page.value || []);
    next = page.nextLink || null;
    if (next && out.length >= limit) { more = true; break; }
  }
  return { items: out, more };
}

// ---------- a table of jobs (the Jobs page, an instance's Jobs tab) ----------
// jobTable lists the workspace's jobs, or one instance's (compute); load()
// refreshes it, keeping rows and cells that did not change.
function jobTable(opts) {
  const o = Object.assign({ compute: '', view: () => 'ActiveOnly', id: 'jobs' }, opts);
  let limit = JOB_LIST_LIMIT, jobs = [], more = false, loading = false;
  const cols = [['name', 'Name'], ['display', 'Display name'], ['status', 'Status'], ...(o.compute ? [] : [['compute', 'Compute']]),
    ['experiment', 'Experiment'], ['created', 'Created'], ['duration', 'Duration']];
  const tbody = h('tbody');
  const table = h('table', { class: 'grid jobs', id: o.id },
    h('caption', { class: 'sr-only' }, o.compute ? `Jobs on ${o.compute}` : 'Jobs'),
    h('thead', {}, h('tr', {}, cols.map(([, t]) => h('th', { scope: 'col' }, t)))), tbody);
  const empty = h('div', { class: 'empty', hidden: true });
  const err = h('div', { 'aria-live': 'polite' });
  const moreBtn = h('button', { type: 'button', class: 'btn btn-small', hidden: true, id: o.id + '-more' }, 'Show more');
  moreBtn.addEventListener('click', () => { limit += JOB_LIST_LIMIT; load(); });
  const rows = new Map();
  let loaded = false;

  function cells(j) {
    const p = jprops(j), cn = computeName(p.computeId);
    const d = jobDuration(j);
    return {
      name: [j.name, () => h('a', { href: jobHref(j.name), 'data-link': true, class: 'name-link' }, j.name)],
      display: [p.displayName || '', () => p.displayName || h('span', { class: 'muted' }, '—')],
      status: [jobStatus(j) + '|' + (p.statusMessage || ''), () => h('span', { class: 'job-status' }, jobBadge(jobStatus(j)),
        jobActive(j) && p.statusMessage ? h('span', { class: 'muted small status-msg' }, p.statusMessage) : null)],
      compute: [cn, () => cn ? h('a', { href: '/ui/compute/instances/' + encodeURIComponent(cn), 'data-link': true }, cn) : '—'],
      experiment: [p.experimentName || '', () => p.experimentName || '—'],
      created: [jobCreated(j), () => fmtDate(jobCreated(j))],
      duration: [fmtDuration(d), () => fmtDuration(d)],
    };
  }
  function draw() {
    const names = new Set(jobs.map(j => j.name));
    for (const [n, r] of rows) if (!names.has(n)) { r.tr.remove(); rows.delete(n); }
    jobs.forEach((j, i) => {
      let r = rows.get(j.name);
      if (!r) {
        const tr = h('tr', { 'data-name': j.name });
        r = { tr, sig: {}, tds: {} };
        for (const [k] of cols) { r.tds[k] = h('td', { 'data-col': k }); tr.append(r.tds[k]); }
        rows.set(j.name, r);
      }
      if (tbody.children[i] !== r.tr) tbody.insertBefore(r.tr, tbody.children[i] || null);
      r.tr.dataset.status = jobStatus(j);
      const cs = cells(j);
      for (const [k] of cols) {
        const [sig, make] = cs[k];
        if (r.sig[k] !== sig) { r.sig[k] = sig; r.tds[k].replaceChildren(make()); }
      }
    });
    table.hidden = jobs.length === 0;
    moreBtn.hidden = !more;
    empty.hidden = !loaded || jobs.length > 0;
    const view = o.view();
    empty.replaceChildren(h('p', {}, view === 'ArchivedOnly' ? 'No archived jobs.' : o.compute ? `No jobs on ${o.compute} yet.` : 'No jobs in this workspace yet.'),
      view === 'ArchivedOnly' ? null : jobHelp(o.compute));
  }
  async function load() {
    if (loading) return;
    loading = true;
    try {
      const extra = '&listViewType=' + o.view() + (o.compute ? '&compute=' + encodeURIComponent(o.compute) : '');
      const r = await listSome(jobsPath(), extra, limit);
      jobs = r.items; more = r.more; loaded = true;
      showError(err, null);
      draw();
    } catch (e) {
      showError(err, e);
    } finally {
      loading = false;
    }
  }
  draw();
  return {
    el: h('div', { class: 'jobs-table' }, err, h('div', { class: 'table-wrap' }, table), empty, h('div', { class: 'more-row' }, moreBtn)),
    load,
    reset() { rows.clear(); tbody.replaceChildren(); jobs = []; loaded = false; limit = JOB_LIST_LIMIT; draw(); },
    anyActive: () => jobs.some(jobActive),
  };
}

// ---------- the workspace's Jobs page ----------
function renderJobs() {
  if (!st.ws) return noWorkspace();
  setTitle('Jobs');
  const q = new URLSearchParams(location.search);
  let view = (JOB_VIEWS.find(v => v[0] === q.get('view')) || JOB_VIEWS[0]);
  const select = h('select', { id: 'jobs-view', class: 'select-inline' }, JOB_VIEWS.map(v => h('option', { value: v[0], selected: v === view }, v[2])));
  const t = jobTable({ view: () => view[1] });
  select.addEventListener('change', () => {
    view = JOB_VIEWS.find(v => v[0] === select.value) || JOB_VIEWS[0];
    const u = new URLSearchParams(location.search);
    if (view[0] === 'active') u.delete('view'); else u.set('view', view[0]);
    history.replaceState(null, '', '/ui/jobs' + (u.toString() ? '?' + u : ''));
    t.reset();
    t.load();
  });
  const refresh = h('button', { type: 'button', class: 'btn', id: 'refresh' }, '⟳ Refresh');
  refresh.addEventListener('click', async () => { refresh.disabled = true; await t.load(); refresh.disabled = false; });
  const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Job list' }, refresh,
    inlineField('Show', select));
  mount(pageHeader('Jobs', [h('span', {}, st.ws.name)]),
    h('div', { class: 'tabs', role: 'tablist' }, h('span', { class: 'tab active', role: 'tab', 'aria-selected': 'true' }, 'All jobs')),
    h('section', { class: 'card' }, toolbar, t.el));
  // Every 2 seconds while a job is active; when none is, new ones still show within seconds.
  st.page = pollWhile(t.load, () => (t.anyActive() ? POLL_MS : 3 * POLL_MS));
}

// pollWhile runs fn now and again after every ms() milliseconds (each run
// finished first) until the returned stop function is called.
function pollWhile(fn, ms) {
  let alive = true, timer = null;
  const tick = async () => {
    if (!alive) return;
    try { await fn(); } finally { if (alive) timer = setTimeout(tick, ms()); }
  };
  tick();
  return () => { alive = false; clearTimeout(timer); };
}

// ---------- an instance's Jobs tab ----------
// instanceJobs fills the tab; the instance page's 2-second poll calls load.
function instanceJobs(c, into) {
  const name = c.name;
  let view = JOB_VIEWS[0];
  const t = jobTable({ compute: name, id: 'instance-jobs', view: () => view[1] });
  const select = h('select', { id: 'jobs-view', class: 'select-inline' }, JOB_VIEWS.map(v => h('option', { value: v[0] }, v[2])));
  select.addEventListener('change', () => { view = JOB_VIEWS.find(v => v[0] === select.value) || JOB_VIEWS[0]; t.reset(); t.load(); });
  const slots = h('span', { class: 'muted small', id: 'job-slots' });
  const showSlots = c => {
    const n = jobSlots(c);
    slots.textContent = n ? `Runs up to ${n} job${n === 1 ? '' : 's'} at a time; the rest wait as Queued.` : '';
  };
  showSlots(c);
  into.replaceChildren(h('section', { class: 'card' },
    h('div', { class: 'toolbar' }, h('h2', { class: 'toolbar-title' }, 'Jobs'), slots,
      inlineField('Show', select)),
    t.el));
  t.load();
  return { load: c2 => { showSlots(c2); return t.load(); } };
}

// ---------- a job's page ----------
function renderJob(name) {
  if (!st.ws) return noWorkspace();
  setTitle(name);
  let j = null, sig = '', gone = false;
  const slot = h('div', { class: 'action-errors', 'aria-live': 'polite' });
  const head = h('div', { class: 'instance-head' });
  const elapsed = h('span', { class: 'muted elapsed', id: 'job-elapsed' });
  const body = h('div', {});
  const refresh = h('button', { type: 'button', class: 'btn', id: 'refresh' }, '⟳ Refresh');
  refresh.addEventListener('click', () => load());
  const cancel = h('button', { type: 'button', class: 'btn btn-danger-ghost', id: 'job-cancel', hidden: true }, 'Cancel job');
  cancel.addEventListener('click', async () => {
    if (!await confirmDialog(`Cancel job ${name}?`, 'Its processes are ended; the logs so far are kept.', 'Cancel job', 'Keep running')) return;
    cancel.disabled = true;
    showError(slot, null);
    try { await api('POST', arm(jobPath(name) + '/cancel')); } catch (e) { showError(slot, e); }
    await load();
    cancel.disabled = false;
  });
  const download = h('a', { class: 'btn', id: 'job-download', hidden: true, href: arm(jobPath(name) + '/outputs'), download: name + '-outputs.tar.gz' }, '⤓ Download outputs');
  // Archive is Azure's delete of a job: the record stays (Archived view), its logs and outputs too.
  const archive = h('button', { type: 'button', class: 'btn', id: 'job-archive', hidden: true }, 'Archive');
  archive.addEventListener('click', async () => {
    archive.disabled = true;
    showError(slot, null);
    try { await api('DELETE', arm(jobPath(name))); } catch (e) { showError(slot, e); }
    await load();
    archive.disabled = false;
  });
  const actions = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Job actions' }, refresh, cancel, download, archive);
  const logs = jobLogs(name);

  function drawHead() {
    const p = jprops(j);
    head.replaceChildren(h('h1', {}, name), j ? jobBadge(jobStatus(j)) : '', elapsed,
      p.displayName && p.displayName !== name ? h('span', { class: 'muted head-sub' }, p.displayName) : null);
    cancel.hidden = !j || !jobActive(j) || st.perms['jobs/cancel/action'] === false || jobStatus(j) === 'CancelRequested';
    download.hidden = !j || jobActive(j);
    archive.hidden = !j || jobActive(j) || jprops(j).isArchived || st.perms['jobs/delete'] === false;
    tick();
  }
  function tick() {
    if (!j) { elapsed.textContent = ''; return; }
    const d = jobDuration(j), p = jprops(j);
    elapsed.textContent = d === null ? (jobActive(j) ? 'waiting to start' : '') : (p.endTime ? 'ran ' : 'running for ') + fmtDuration(d);
  }
  function drawBody() {
    const p = jprops(j);
    const cn = computeName(p.computeId);
    const row = (k, v, id) => [h('dt', {}, k), h('dd', id ? { id } : {}, v === undefined || v === null || v === '' || (Array.isArray(v) && !v.length) ? '—' : v)];
    const kv = m => Object.entries(m || {}).map(([k, v]) => h('span', { class: 'pill' }, `${k}: ${v}`));
    const by = jobCreatedBy(j);
    const inputs = Object.entries(p.inputs || {}).filter(([, v]) => v);
    const outputs = Object.entries(p.outputs || {}).filter(([, v]) => v);
    const env = Object.entries(p.environmentVariables || {});
    const limits = p.limits || {};
    const e = p.error;
    body.replaceChildren(...[
      e && (e.code || e.message) ? errorBox({ code: e.code, message: e.message || '' }, 'job-error') : null,
      h('div', { class: 'detail-grid' },
        h('section', { class: 'card' }, h('h2', {}, 'Overview'), h('dl', { class: 'props', id: 'job-details' },
          row('Status', h('span', {}, jobBadge(jobStatus(j)), p.statusMessage ? h('span', { class: 'muted small status-msg' }, p.statusMessage) : null)),
          p.queuePosition !== undefined && p.queuePosition !== null ? row('Queue position', String(p.queuePosition)) : null,
          row('Exit code', p.exitCode === undefined || p.exitCode === null ? '' : String(p.exitCode), 'job-exit-code'),
          row('Compute', cn ? h('a', { href: '/ui/compute/instances/' + encodeURIComponent(cn), 'data-link': true, id: 'job-compute' }, cn) : ''),
          row('Display name', p.displayName),
          row('Experiment', p.experimentName),
          row('Environment', p.environmentId ? h('span', { class: 'mono', title: p.environmentId }, assetText(p.environmentId)) : 'the instance’s own software'),
          row('Code', p.codeId ? h('span', { class: 'mono', title: p.codeId }, assetText(p.codeId)) : 'none'),
          row('Timeout', limits.timeout || 'none'),
          row('Created by', by),
          row('Created', fmtDate(jobCreated(j))),
          row('Started', p.startTime ? fmtDate(p.startTime) : ''),
          row('Ended', p.endTime ? fmtDate(p.endTime) : ''),
          row('Description', p.description),
          row('Tags', kv(p.tags)),
          row('Properties', kv(p.properties)),
          p.isArchived ? row('Archived', 'yes', 'job-archived') : null)),
        h('div', {},
          h('section', { class: 'card' }, h('h2', {}, 'Command'), h('pre', { class: 'code-block', id: 'job-command' }, p.command || ''),
            env.length ? h('div', {}, h('h3', {}, 'Environment variables'), h('dl', { class: 'props props-tight' }, env.flatMap(([k, v]) => row(k, h('span', { class: 'mono' }, v))))) : null),
          h('section', { class: 'card', id: 'job-io' }, h('h2', {}, 'Inputs and outputs'),
            inputs.length || outputs.length ? h('table', { class: 'grid history' },
              h('thead', {}, h('tr', {}, ['', 'Name', 'Type', 'Value'].map(t => h('th', { scope: 'col' }, t)))),
              h('tbody', {},
                inputs.map(([k, v]) => h('tr', {}, h('td', {}, 'input'), h('td', { class: 'mono' }, k), h('td', {}, v.jobInputType || ''), h('td', { class: 'mono' }, v.value !== undefined ? String(v.value) : (v.uri || '')))),
                outputs.map(([k, v]) => h('tr', {}, h('td', {}, 'output'), h('td', { class: 'mono' }, k), h('td', {}, v.jobOutputType || ''),
                  h('td', { class: 'muted' }, jobActive(j) ? 'kept when the job ends' : h('a', { href: arm(jobPath(name) + '/outputs', '&name=' + encodeURIComponent(k)), download: `${name}-${k}.tar.gz` }, 'Download')))))) : h('p', { class: 'muted' }, 'No declared inputs or outputs. Files the job writes to its outputs folder are kept too.')))),
      logs.el].filter(Boolean));
  }
  async function load() {
    if (gone) return;
    try {
      j = await api('GET', arm(jobPath(name)));
      showError(slot, null);
    } catch (e) {
      if (e.status === 404) {
        gone = true;
        j = null;
        body.replaceChildren(h('div', { class: 'card empty' }, h('p', {}, `Job ${name} does not exist in ${st.ws.name}. `, h('a', { href: '/ui/jobs', 'data-link': true }, 'Back to the jobs'))));
        drawHead();
        logs.stop();
        return;
      }
      showError(slot, e); return;
    }
    drawHead();
    const s = JSON.stringify([j.properties, j.systemData]);
    if (s !== sig) { sig = s; drawBody(); }
    logs.start();
  }
  const crumbs = [h('a', { href: '/ui/jobs', 'data-link': true }, 'Jobs'), ' / ', h('span', {}, name)];
  mount(pageHeader('', crumbs), head, h('div', { class: 'card card-flat' }, actions, slot), body);
  $('#main .page-head h1').remove();
  drawHead();
  const ticker = setInterval(tick, 1000);
  st.page = () => { clearInterval(ticker); logs.stop(); };
  load();
  // While the job is active its status is polled; an ended job changes no more.
  st.timer = setInterval(() => { if (!j || jobActive(j)) load(); }, POLL_MS);
}

// jobLogs is the log card of a job's page: it follows the log as the job
// runs (the logs endpoint with follow=true, read as a stream) and picks up
// from the last byte it has when the stream ends early.
function jobLogs(name) {
  const streams = [['std_log', 'All output'], ['stdout', 'stdout'], ['stderr', 'stderr']];
  const sel = h('select', { id: 'job-log-stream', class: 'select-inline' }, streams.map(([v, t]) => h('option', { value: v }, t)));
  const status = h('span', { class: 'muted small', id: 'job-log-status', 'aria-live': 'polite' });
  const text = document.createTextNode('');
  const pre = h('pre', { class: 'log', id: 'job-logs', tabindex: '0', 'aria-label': 'Job log' }, text);
  const err = h('div', { 'aria-live': 'polite' });
  const el = h('section', { class: 'card' },
    h('div', { class: 'toolbar' }, h('h2', { class: 'toolbar-title' }, 'Logs'), status, inlineField('Stream', sel)),
    err, pre);
  let run = null; // the current follower: {ac, stopped}
  let stream = 'std_log';
  sel.addEventListener('change', () => { stream = sel.value; stop(); text.data = ''; start(); });

  function append(s) {
    if (!s) return;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    text.appendData(s);
    if (text.length > LOG_KEEP) text.data = '…(earlier output not shown)…\n' + text.data.slice(text.length - LOG_KEEP);
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
  async function follow(me) {
    let offset = 0;
    const dec = new TextDecoder();
    const sleep = ms => new Promise(r => setTimeout(r, ms));
    for (let tries = 0; !me.stopped; tries++) {
      let res, started = '';
      try {
        res = await fetch(arm(jobPath(name) + '/logs', `&stream=${stream}&offset=${offset}&follow=true`),
          { credentials: 'same-origin', headers: { Accept: 'text/plain' }, signal: me.ac.signal });
      } catch (e) {
        if (me.stopped) return;
        status.textContent = 'Reconnecting…';
        await sleep(2000);
        continue;
      }
      if (!res.ok) {
        let e = {};
        try { e = (await res.json()).error || {}; } catch { /* not the envelope */ }
        if (res.status === 401) { signedOut(e.message || 'signed out', true); return; }
        showError(err, new ApiError(res.status, e.code || String(res.status), e.message || res.statusText));
        if (res.status >= 400 && res.status < 500 && res.status !== 409 && res.status !== 429) { status.textContent = ''; return; }
        await sleep(3000);
        continue;
      }
      showError(err, null);
      started = res.headers.get('X-Chub-Job-Status') || '';
      status.textContent = JOB_ACTIVE.has(started) ? 'Streaming live…' : '';
      pre.dataset.streaming = JOB_ACTIVE.has(started) ? 'true' : 'false';
      try {
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          offset += value.length;
          append(dec.decode(value, { stream: true }));
        }
        append(dec.decode());
      } catch (e) {
        if (me.stopped) return;
      }
      if (me.stopped) return;
      // The stream ends when the job has ended and everything was sent; if
      // the job still runs the connection was cut: go on from offset.
      let job = null;
      try { job = await api('GET', arm(jobPath(name))); } catch { /* retried below */ }
      if (job && !jobActive(job)) {
        pre.dataset.streaming = 'false';
        pre.dataset.ended = jobStatus(job);
        status.textContent = text.length ? `The job ended (${jobStatus(job)}); this is all of its output.` : `The job ended (${jobStatus(job)}) without output.`;
        return;
      }
      await sleep(tries < 3 ? 500 : 2000);
    }
  }
  function start() {
    if (run) return;
    run = { ac: new AbortController(), stopped: false };
    follow(run);
  }
  function stop() {
    if (!run) return;
    run.stopped = true;
    run.ac.abort();
    run = null;
  }
  return { el, start, stop };
}
