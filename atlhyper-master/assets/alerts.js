// Alerts: the Alerts view (firing and pending now, history, silences, one-click silence) and the
// alert badges of the cluster picker, the node table and the node page.

import { ApiError, getJson, postJson } from './api.js';
import { byId, setText, show, showState } from './dom.js';
import { clockTime, timeAgo } from './format.js';
import { navigate } from './route.js';

/** How long the one-click silence lasts. */
const SILENCE_HOURS = 2;
const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };

/** Reads the running alerts into `page.alerts` (kept as they were when a read fails). */
export async function refreshAlerts(page) {
  try {
    const list = await getJson('/api/v2/alerts');
    page.alerts = Array.isArray(list) ? list : [];
    page.alertsError = null;
  } catch (err) {
    page.alertsError = err;
  }
  if (page.view === 'alerts') await refreshAlertsView(page);
}

async function refreshAlertsView(page) {
  try {
    const history = await getJson('/api/v2/alerts/history?limit=100');
    page.alertHistory = Array.isArray(history) ? history : [];
  } catch (err) { page.alertsError = err; }
  try {
    const silences = await getJson('/api/v2/silences');
    page.silences = Array.isArray(silences) ? silences : [];
    page.silencesError = null;
  } catch (err) {
    page.silences = [];
    page.silencesError = err.status === 404 ? 'Silences are not served by this master.' : err.message;
  }
}

/** Firing alerts of a cluster, or of one node of it. */
export function firing(page, clusterId, nodeName) {
  return (page.alerts || []).filter((a) => a.state === 'firing' && a.labels.cluster === clusterId &&
    (nodeName === undefined || a.labels.node === nodeName));
}

/** ` · N firing` for a picker option or a table cell, '' when none. */
export function firingSuffix(page, clusterId, nodeName) {
  const n = firing(page, clusterId, nodeName).length;
  return n ? ' · ' + n + ' firing' : '';
}

function where(labels) {
  return [labels.cluster, labels.node, labels.device, labels.mountpoint].filter(Boolean).join(' / ');
}

function bySeverityThenName(a, b) {
  const s = (SEVERITY_ORDER[a.labels.severity] ?? 3) - (SEVERITY_ORDER[b.labels.severity] ?? 3);
  return s || (a.labels.alertname < b.labels.alertname ? -1 : a.labels.alertname > b.labels.alertname ? 1 : 0);
}

/** Rebuilds a table body from rows of cells: text, or { t, cls, button } objects. */
function fill(table, rows) {
  const tbody = table.tBodies[0];
  tbody.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement('tr');
    for (const cell of cells) {
      const td = tr.insertCell();
      if (cell && typeof cell === 'object') {
        if (cell.button) {
          const b = document.createElement('button');
          b.type = 'button';
          b.textContent = cell.t;
          b.addEventListener('click', cell.button);
          td.append(b);
        } else td.textContent = cell.t;
        if (cell.cls) td.className = cell.cls;
      } else td.textContent = cell ?? '';
    }
    return tr;
  }));
}

/** The matchers that pick exactly this alert: every identifying label, by equality. */
export function silenceMatchers(alert) {
  return ['alertname', 'cluster', 'node', 'device', 'mountpoint']
    .filter((name) => alert.labels[name])
    .map((name) => ({ name, value: alert.labels[name], is_regex: false, is_equal: true }));
}

async function silence(page, alert) {
  const now = new Date();
  const body = {
    matchers: silenceMatchers(alert),
    starts_at: now.toISOString(),
    ends_at: new Date(now.getTime() + SILENCE_HOURS * 3600 * 1000).toISOString(),
    created_by: 'dashboard',
    comment: 'Silenced from the dashboard for ' + SILENCE_HOURS + ' h',
  };
  try {
    await postJson('/api/v2/silences', body);
    page.alertsNote = alert.labels.alertname + ' on ' + where(alert.labels) + ' silenced for ' + SILENCE_HOURS + ' h.';
  } catch (err) {
    page.alertsNote = err instanceof ApiError && err.status === 403
      ? 'Silencing needs an operator token.'
      : 'Could not silence: ' + err.message;
  }
  await refreshAlerts(page);
  renderAlertsView(page);
}

/** Draws the Alerts view from `page.alerts`, `page.alertHistory` and `page.silences`. */
export function renderAlertsView(page) {
  const err = page.alertsError;
  showState(byId('alerts-state'), page.alertsNote || (err ? err.message : ''), !!err && !page.alertsNote);
  const now = (page.alerts || []).slice().sort(bySeverityThenName);
  fill(byId('alerts-now'), now.map((a) => [
    { t: a.labels.severity, cls: 'sev ' + a.labels.severity },
    a.labels.alertname,
    { t: a.state === 'firing' ? 'Firing' : 'Pending', cls: a.state },
    where(a.labels),
    (a.annotations && a.annotations.summary) || '',
    timeAgo(a.fired_at || a.active_at),
    a.silenced_by && a.silenced_by.length ? 'Silenced' : '',
    a.state === 'firing' && !(a.silenced_by && a.silenced_by.length)
      ? { t: 'Silence ' + SILENCE_HOURS + ' h', button: () => silence(page, a) } : '',
  ]));
  showState(byId('alerts-now-empty'), now.length ? '' : 'No alert is firing or pending.', false);
  const history = page.alertHistory || [];
  fill(byId('alerts-history'), history.map((a) => [
    { t: a.labels.severity, cls: 'sev ' + a.labels.severity },
    a.labels.alertname, where(a.labels), (a.annotations && a.annotations.summary) || '',
    clockTime(a.fired_at || a.active_at), clockTime(a.resolved_at),
  ]));
  showState(byId('alerts-history-empty'), history.length ? '' : 'No alert has resolved yet.', false);
  const silences = page.silences || [];
  fill(byId('silences'), silences.map((s) => [
    (s.matchers || []).map((m) => m.name + (m.is_equal === false ? '!' : '') + (m.is_regex ? '=~' : '=') + m.value).join(', '),
    clockTime(s.starts_at), clockTime(s.ends_at), s.created_by || '', s.comment || '',
  ]));
  showState(byId('silences-empty'), page.silencesError || (silences.length ? '' : 'No silences.'), false);
}

/** The alert counts: header link, node page badge. */
export function renderAlertBadges(page) {
  const all = (page.alerts || []).filter((a) => a.state === 'firing').length;
  const link = byId('alerts-link');
  const href = '#v=alerts' + (page.clusterId ? '&c=' + encodeURIComponent(page.clusterId) : '');
  if (link.getAttribute('href') !== href) link.setAttribute('href', href);
  const count = byId('alerts-count');
  show(count, all > 0);
  setText(count, String(all));
  const nodeBadge = byId('d-alerts');
  const onNode = page.nodeName ? firing(page, page.clusterId, page.nodeName).length : 0;
  show(nodeBadge, onNode > 0);
  setText(nodeBadge, onNode + ' firing');
}

/** The header link opens the Alerts view; leaving it goes back to the cluster. */
export function wireAlerts(page) {
  byId('alerts-back').addEventListener('click', () => navigate(page.clusterId, '', ''));
}
