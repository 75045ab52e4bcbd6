// Alerts: the Alerts view (tabs: running now, history, silences; one-click silence, expiring a
// silence) and the firing counts behind the badges of the cluster picker, the node table and the
// node page.

import { ApiError, deleteJson, getJson, postJson } from './api.js';
import { byId, setClass, setText, show, showState, syncOptions } from './dom.js';
import { dateTime, duration, timeAgo } from './format.js';
import { navigate } from './route.js';

/** How long the one-click silence lasts. */
const SILENCE_HOURS = 2;
const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };
const AUTHOR_STORAGE_KEY = 'atlhyper.silenceAuthor';
/** Who a silence is from when the author field is left empty. */
const DEFAULT_AUTHOR = 'dashboard';
const HISTORY_LIMIT = 100;
const TABS = ['now', 'history', 'silences'];
/** Most rows a tab draws (a thousand nodes down are a thousand alerts); the filters narrow. */
const MAX_ROWS = 200;
const STATE_ORDER = { firing: 0, pending: 1 };

// ---------- reading ----------

/**
 * Asks the master once per token what the token may do (GET /api/v2/auth/whoami): a viewer
 * token sees no write buttons. A master without the route leaves them to the first 403.
 */
async function refreshRole(page) {
  if (page.role) return;
  try {
    const who = await getJson('/api/v2/auth/whoami');
    page.role = who && typeof who.role === 'string' ? who.role : 'unknown';
  } catch (err) {
    if (err.status === 404) page.role = 'unknown';
    return;
  }
  if (page.role === 'viewer') page.writeRefused = true;
}

/** Reads the running alerts into `page.alerts` (kept as they were when a read fails). */
export async function refreshAlerts(page) {
  const role = refreshRole(page);
  try {
    const list = await getJson('/api/v2/alerts');
    page.alerts = Array.isArray(list) ? list : [];
    page.alertsError = null;
  } catch (err) {
    page.alertsError = err;
  }
  await role;
  page.firingCounts = countFiring(page.alerts);
  if (page.view === 'alerts') await refreshAlertsView(page);
}

async function refreshAlertsView(page) {
  try {
    const history = await getJson('/api/v2/alerts/history?limit=' + HISTORY_LIMIT);
    page.alertHistory = Array.isArray(history) ? history : [];
    page.historyError = null;
  } catch (err) { page.historyError = err.message; }
  try {
    const silences = await getJson('/api/v2/silences');
    page.silences = Array.isArray(silences) ? silences : [];
    page.silencesError = null;
  } catch (err) {
    page.silences = [];
    page.silencesError = err.status === 404 || err.status === 503 ? 'Silences are not served by this master.' : err.message;
  }
}

// ---------- firing counts (badges) ----------

const nodeKey = (clusterId, nodeName) => clusterId + '\u0000' + nodeName;

/** Firing alerts per cluster and per node of a cluster, counted once per refresh. */
function countFiring(alerts) {
  const byCluster = new Map(), byNode = new Map();
  for (const a of alerts || []) {
    if (a.state !== 'firing' || !a.labels) continue;
    const c = a.labels.cluster || '';
    byCluster.set(c, (byCluster.get(c) || 0) + 1);
    if (a.labels.node) {
      const k = nodeKey(c, a.labels.node);
      byNode.set(k, (byNode.get(k) || 0) + 1);
    }
  }
  return { byCluster, byNode, total: [...byCluster.values()].reduce((x, y) => x + y, 0) };
}

/** How many alerts fire in a cluster, or on one node of it. */
export function firingCount(page, clusterId, nodeName) {
  const counts = page.firingCounts;
  if (!counts) return 0;
  return (nodeName === undefined ? counts.byCluster.get(clusterId) : counts.byNode.get(nodeKey(clusterId, nodeName))) || 0;
}

/** ` · N firing` for a picker option, '' when none. */
export function firingSuffix(page, clusterId) {
  const n = firingCount(page, clusterId);
  return n ? ' · ' + n + ' firing' : '';
}

/** The header count, the cluster page badge and the node page badge. */
export function renderAlertBadges(page) {
  const total = page.firingCounts ? page.firingCounts.total : 0;
  const clusterQuery = page.clusterId ? '&c=' + encodeURIComponent(page.clusterId) : '';
  const link = byId('alerts-link');
  if (link.getAttribute('href') !== '#v=alerts' + clusterQuery) link.setAttribute('href', '#v=alerts' + clusterQuery);
  setClass(link, page.view === 'alerts' ? 'alerts-link on' : 'alerts-link');
  const count = byId('alerts-count');
  show(count, total > 0);
  setText(count, total > 0 ? String(total) : '');
  // The cluster page's badge: the cluster's firing alerts, leading to the Alerts view.
  const clusterBadge = byId('cluster-alerts');
  const onCluster = page.clusterId ? firingCount(page, page.clusterId) : 0;
  show(clusterBadge, onCluster > 0);
  setText(clusterBadge, onCluster > 0 ? onCluster + ' firing' : '');
  if (clusterBadge.getAttribute('href') !== '#v=alerts' + clusterQuery) clusterBadge.setAttribute('href', '#v=alerts' + clusterQuery);
  const nodeBadge = byId('d-alerts');
  const onNode = page.nodeName ? firingCount(page, page.clusterId, page.nodeName) : 0;
  show(nodeBadge, onNode > 0);
  setText(nodeBadge, onNode > 0 ? onNode + ' firing' : '');
  if (nodeBadge.getAttribute('href') !== '#v=alerts' + clusterQuery) nodeBadge.setAttribute('href', '#v=alerts' + clusterQuery);
}

// ---------- writing: silence an alert, expire a silence ----------

/** The matchers that pick exactly this alert: every one of its labels, by equality. */
export function silenceMatchers(alert) {
  return Object.keys(alert.labels).sort()
    .map((name) => ({ name, value: alert.labels[name], is_regex: false, is_equal: true }));
}

function where(labels) {
  return [labels.cluster, labels.node, labels.device || labels.mountpoint].filter(Boolean).join(' / ');
}

function silenceAuthor() {
  const typed = byId('silence-author').value.trim();
  return typed || DEFAULT_AUTHOR;
}

/** A refused write: remembered, so the write buttons go away until another token is entered. */
function refusal(page, err, what) {
  if (err instanceof ApiError && err.status === 403) {
    page.writeRefused = true;
    return { text: what + ' needs an operator token; this token may only read.', isError: true, askToken: true };
  }
  return { text: 'Could not ' + what.toLowerCase() + ': ' + err.message, isError: true };
}

async function silenceAlert(page, fingerprint) {
  const alert = (page.alerts || []).find((a) => a.fingerprint === fingerprint);
  if (!alert) return;
  const now = new Date();
  const endsAt = new Date(now.getTime() + SILENCE_HOURS * 3600 * 1000);
  const body = {
    matchers: silenceMatchers(alert),
    starts_at: now.toISOString(),
    ends_at: endsAt.toISOString(),
    created_by: silenceAuthor(),
    comment: 'Silenced from the dashboard for ' + SILENCE_HOURS + ' h',
  };
  await write(page, fingerprint, async () => {
    await postJson('/api/v2/silences', body);
    return { text: alert.labels.alertname + ' on ' + where(alert.labels) + ' silenced until ' + dateTime(endsAt) + '.' };
  }, 'Silencing');
}

async function expireSilence(page, id) {
  await write(page, id, async () => {
    await deleteJson('/api/v2/silences/' + encodeURIComponent(id));
    return { text: 'Silence expired: its alerts notify again.' };
  }, 'Expiring a silence');
}

/** Runs one write for the row `key` (its button disabled meanwhile), then reads and redraws. */
async function write(page, key, action, what) {
  if (page.alertWrites.has(key)) return;
  page.alertWrites.add(key);
  renderAlertsView(page);
  try {
    page.alertsNote = await action();
  } catch (err) {
    page.alertsNote = refusal(page, err, what);
  } finally {
    page.alertWrites.delete(key);
  }
  await refreshAlerts(page);
  renderAlertsView(page);
  renderAlertBadges(page);
}

// ---------- drawing ----------

function byStateSeverityThenName(a, b) {
  const s = (STATE_ORDER[a.state] ?? 2) - (STATE_ORDER[b.state] ?? 2) ||
    (SEVERITY_ORDER[a.labels.severity] ?? 3) - (SEVERITY_ORDER[b.labels.severity] ?? 3);
  if (s) return s;
  for (const k of ['alertname', 'cluster', 'node', 'device', 'mountpoint']) {
    const x = a.labels[k] || '', y = b.labels[k] || '';
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * Makes a table body show one row per item, in order, keyed by `keyOf`: a row whose key is
 * still there is kept and updated in place (so a refresh never swaps a button from under the
 * pointer), new ones are added, gone ones removed. Each cell carries its column's header as
 * `data-label`, which the phone layout shows beside the value.
 */
function renderKeyedRows(table, items, keyOf, drawRow) {
  const tbody = table.tBodies[0];
  const labels = [...table.tHead.rows[0].cells].map((th) => th.textContent);
  const old = new Map([...tbody.rows].map((tr) => [tr.dataset.key, tr]));
  let previous = null;
  for (const item of items) {
    const key = keyOf(item);
    let tr = old.get(key);
    if (tr) old.delete(key);
    else {
      tr = document.createElement('tr');
      tr.dataset.key = key;
      for (const label of labels) tr.insertCell().dataset.label = label;
    }
    drawRow(tr.cells, item, tr);
    const wanted = previous ? previous.nextSibling : tbody.firstChild;
    if (wanted !== tr) tbody.insertBefore(tr, wanted);
    previous = tr;
  }
  for (const tr of old.values()) tr.remove();
}

function cell(td, text, className) {
  setText(td, text);
  setClass(td, className || '');
}

/** An action cell: one button (`data-action`) when `label` is given, empty otherwise. */
function actionCell(td, label, action, busy) {
  if (!label) {
    if (td.firstChild) td.textContent = '';
    setClass(td, 'action');
    return;
  }
  let b = td.firstChild;
  if (!b || b.dataset.action !== action) {
    td.textContent = '';
    b = document.createElement('button');
    b.type = 'button';
    b.dataset.action = action;
    td.append(b);
  }
  setText(b, label);
  b.disabled = busy;
  setClass(td, 'action');
}

const isSilenced = (a) => Array.isArray(a.silenced_by) && a.silenced_by.length > 0;

function drawRunningAlert(page) {
  const canWrite = !page.writeRefused;
  return (c, a, tr) => {
    const silenced = isSilenced(a);
    setClass(tr, a.state + (silenced ? ' silenced' : ''));
    cell(c[0], a.labels.severity || '', 'sev ' + (a.labels.severity || ''));
    cell(c[1], a.labels.alertname || a.rule || '');
    cell(c[2], a.labels.cluster || '');
    cell(c[3], a.labels.node || '—');
    cell(c[4], [a.labels.mountpoint, a.labels.device].filter(Boolean).join(' · ') || '—');
    cell(c[5], (a.annotations && a.annotations.summary) || '', 'summary');
    const since = a.state === 'firing' ? a.fired_at || a.active_at : a.active_at;
    cell(c[6], timeAgo(since));
    if (c[6].title !== dateTime(since)) c[6].title = dateTime(since);
    cell(c[7], (a.state === 'firing' ? 'Firing' : 'Pending') + (silenced ? ' · silenced' : ''), 'alert-state ' + a.state);
    const silenceable = canWrite && a.state === 'firing' && !silenced;
    actionCell(c[8], silenceable ? 'Silence ' + SILENCE_HOURS + ' h' : '', 'silence', page.alertWrites.has(a.fingerprint));
  };
}

function drawResolvedAlert(c, a) {
  const fired = a.fired_at || a.active_at;
  cell(c[0], a.labels.severity || '', 'sev ' + (a.labels.severity || ''));
  cell(c[1], a.labels.alertname || a.rule || '');
  cell(c[2], a.labels.cluster || '');
  cell(c[3], a.labels.node || '—');
  cell(c[4], [a.labels.mountpoint, a.labels.device].filter(Boolean).join(' · ') || '—');
  cell(c[5], (a.annotations && a.annotations.summary) || '', 'summary');
  cell(c[6], dateTime(fired));
  cell(c[7], dateTime(a.resolved_at));
  const lasted = (Date.parse(a.resolved_at) - Date.parse(fired)) / 1000;
  cell(c[8], lasted >= 60 ? duration(lasted) : Number.isFinite(lasted) && lasted >= 0 ? Math.round(lasted) + ' s' : '—');
}

function matcherText(m) {
  return m.name + (m.is_equal === false ? (m.is_regex ? '!~' : '!=') : (m.is_regex ? '=~' : '=')) + '"' + m.value + '"';
}

function drawSilence(page) {
  const canWrite = !page.writeRefused;
  return (c, s, tr) => {
    const state = s.state || 'active';
    setClass(tr, state);
    cell(c[0], state, 'alert-state ' + state);
    cell(c[1], (s.matchers || []).map(matcherText).join(', '), 'matchers');
    cell(c[2], dateTime(s.starts_at));
    cell(c[3], dateTime(s.ends_at));
    cell(c[4], s.created_by || '');
    cell(c[5], s.comment || '', 'summary');
    actionCell(c[6], canWrite && state !== 'expired' ? 'Expire' : '', 'expire', page.alertWrites.has(s.id));
  };
}

const SILENCE_STATE_ORDER = { active: 0, pending: 1, expired: 2 };

function renderNote(page) {
  let note = page.alertsNote;
  if (!note && page.alertsError) note = { text: 'Could not read the alerts: ' + page.alertsError.message, isError: true };
  if (!note && page.writeRefused) note = { text: 'Read only: this token may view alerts but not silence them.', askToken: true };
  const line = byId('alerts-state');
  show(line, !!note);
  if (note) {
    setText(byId('alerts-state-text'), note.text);
    setClass(line, note.isError ? 'state note err' : 'state note');
  }
  show(byId('alerts-use-token'), !!(note && note.askToken));
}

/** The Now tab: running alerts through the state and cluster filters, firing first. */
function renderRunningAlerts(page) {
  const all = page.alerts || [];
  const { state, cluster } = page.alertFilter;
  const clusters = new Set((page.clusters || []).map((c) => c.clusterId));
  for (const a of all) if (a.labels.cluster) clusters.add(a.labels.cluster);
  const clusterFilter = byId('alerts-cluster-filter');
  syncOptions(clusterFilter, [['', 'All clusters'], ...[...clusters].sort().map((c) => [c, c])]);
  if (clusterFilter.value !== cluster) clusterFilter.value = cluster;
  const stateFilter = byId('alerts-state-filter');
  if (stateFilter.value !== state) stateFilter.value = state;

  const matching = all.filter((a) => (!state || a.state === state) && (!cluster || a.labels.cluster === cluster))
    .sort(byStateSeverityThenName);
  const shown = matching.slice(0, MAX_ROWS);
  setText(byId('alerts-now-count'), String(page.firingCounts ? page.firingCounts.total : 0));
  setText(byId('alerts-now-shown'), matching.length > shown.length
    ? 'the first ' + shown.length + ' of ' + matching.length + ' alerts'
    : matching.length + (matching.length === 1 ? ' alert' : ' alerts'));
  renderKeyedRows(byId('alerts-now'), shown, (a) => a.fingerprint, drawRunningAlert(page));
  showState(byId('alerts-now-empty'), shown.length ? '' : all.length ? 'No alert matches the filters.' : 'No alert is firing or pending.', false);
}

/** Draws the Alerts view from `page.alerts`, `page.alertHistory` and `page.silences`. */
export function renderAlertsView(page) {
  renderNote(page);
  show(byId('silence-author-field'), !page.writeRefused);
  const tab = TABS.includes(page.alertsTab) ? page.alertsTab : 'now';
  for (const b of byId('alerts-tabs').querySelectorAll('[role=tab]')) {
    const selected = b.dataset.tab === tab;
    if (b.getAttribute('aria-selected') !== String(selected)) b.setAttribute('aria-selected', String(selected));
    b.tabIndex = selected ? 0 : -1;
  }
  for (const name of TABS) show(byId('alerts-' + name + '-panel'), name === tab);

  renderRunningAlerts(page);

  const history = (page.alertHistory || []).slice(0, MAX_ROWS);
  renderKeyedRows(byId('alerts-history'), history, (a) => a.fingerprint + '@' + a.resolved_at, drawResolvedAlert);
  showState(byId('alerts-history-empty'), page.historyError || (history.length ? '' : 'No alert has resolved yet.'), !!page.historyError);

  const silences = (page.silences || []).slice().sort((a, b) =>
    (SILENCE_STATE_ORDER[a.state] ?? 3) - (SILENCE_STATE_ORDER[b.state] ?? 3) || (a.ends_at < b.ends_at ? 1 : -1))
    .slice(0, MAX_ROWS);
  setText(byId('alerts-silences-count'), String(silences.filter((s) => s.state !== 'expired').length));
  renderKeyedRows(byId('silences'), silences, (s) => s.id, drawSilence(page));
  showState(byId('silences-empty'), page.silencesError || (silences.length ? '' : 'No silences.'), !!page.silencesError);
}

/**
 * Tabs, the back button, the write buttons (one delegated listener per table) and the author
 * field; `askForToken` opens the token prompt when a write was refused.
 */
export function wireAlerts(page, askForToken) {
  page.alertWrites = new Set();
  byId('alerts-back').addEventListener('click', () => navigate(page.clusterId, '', ''));
  byId('alerts-tabs').addEventListener('click', async (e) => {
    const tab = e.target.closest('[role=tab]')?.dataset.tab;
    if (!tab || tab === page.alertsTab) return;
    page.alertsTab = tab;
    renderAlertsView(page);
    await refreshAlertsView(page);
    if (page.view === 'alerts') renderAlertsView(page);
  });
  for (const [id, key] of [['alerts-state-filter', 'state'], ['alerts-cluster-filter', 'cluster']]) {
    byId(id).addEventListener('change', (e) => {
      page.alertFilter = { ...page.alertFilter, [key]: e.target.value };
      renderAlertsView(page);
    });
  }
  byId('alerts-now').tBodies[0].addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action=silence]');
    if (b) silenceAlert(page, b.closest('tr').dataset.key);
  });
  byId('silences').tBodies[0].addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action=expire]');
    if (b) expireSilence(page, b.closest('tr').dataset.key);
  });
  byId('alerts-use-token').addEventListener('click', () => askForToken('operator'));
  const author = byId('silence-author');
  try { author.value = localStorage.getItem(AUTHOR_STORAGE_KEY) || ''; } catch (_) { /* private mode */ }
  author.placeholder = DEFAULT_AUTHOR;
  author.addEventListener('change', () => {
    try { localStorage.setItem(AUTHOR_STORAGE_KEY, author.value.trim()); } catch (_) { /* private mode: kept for this page */ }
  });
}
