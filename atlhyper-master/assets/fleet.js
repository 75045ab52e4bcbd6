// The fleet view: every cluster at a glance (status, nodes, firing alerts, CPU, memory and disk
// with a 24 h sparkline) from GET /api/v2/fleet. A master without that route answers 404: the
// view then reads the cluster list and each cluster's summary, without sparklines.

import { getJson } from './api.js';
import { firingCount } from './alerts.js';
import { byId, setClass, setText, show, showState, syncRowCount } from './dom.js';
import { percent } from './format.js';
import { href, navigate } from './route.js';
import { eachLimited } from './series.js';

const COLUMNS = 7;
const SPARK = { width: 80, height: 20 };
const STATUS_TEXT = { ok: 'OK', degraded: 'Degraded', down: 'Down' };
const SVG_NAMESPACE = 'http://www.w3.org/2000/svg';

/** A usage figure of the fleet answer: a number, or `{avg}`. */
function usage(v) {
  if (Number.isFinite(v)) return v;
  return v && Number.isFinite(v.avg) ? v.avg : null;
}

/** The fleet from the cluster list and each cluster's summary (a master without /api/v2/fleet). */
async function fleetFromSummaries(page) {
  const clusters = page.clusters || [];
  const out = clusters.map((c) => ({ cluster_id: c.clusterId, agent_online: c.status === 'online', nodes_total: c.nodeCount }));
  await eachLimited(out, 3, async (row) => {
    try {
      const s = (await getJson('/api/v2/clusters/' + encodeURIComponent(row.cluster_id) + '/node-metrics?view=overview')).summary || {};
      Object.assign(row, { nodes_total: s.total_nodes, nodes_online: s.online_nodes, nodes_offline: s.offline_nodes,
        cpu: s.avg_cpu_usage, memory: s.avg_memory_usage, disk: s.avg_disk_usage });
    } catch (_) { /* the row keeps what the list says */ }
    row.status = !row.agent_online || row.nodes_online === 0 ? 'down' : row.nodes_offline > 0 ? 'degraded' : 'ok';
  });
  return out;
}

/**
 * Reads the fleet into `page.fleet` (`page.fleetSource`: 'fleet' or 'summaries'); `listed` is
 * the cluster list's request, asked at the same time, which the summaries need.
 */
export async function refreshFleet(page, listed) {
  try {
    const body = await getJson('/api/v2/fleet');
    page.fleet = Array.isArray(body && body.clusters) ? body.clusters : [];
    page.fleetSource = 'fleet';
    page.fleetError = null;
  } catch (err) {
    if (err.status !== 404) { page.fleetError = err; return; }
    try { await listed; } catch (_) { return; } // the list's own error is the page's
    page.fleet = await fleetFromSummaries(page);
    page.fleetSource = 'summaries';
    page.fleetError = null;
  }
  page.fleet.sort((a, b) => (a.cluster_id < b.cluster_id ? -1 : 1));
}

/** A sparkline of [[ts_ms, value]] on a 0..100 scale, with breaks where steps are missing. */
function sparkline(svg, points) {
  const list = (Array.isArray(points) ? points : []).filter((p) => Array.isArray(p) && Number.isFinite(p[0]) && Number.isFinite(p[1]));
  svg.textContent = '';
  if (list.length < 2) return;
  const t0 = list[0][0], t1 = list[list.length - 1][0];
  const gaps = list.slice(1).map((p, i) => p[0] - list[i][0]).sort((a, b) => a - b);
  const step = gaps[gaps.length >> 1];
  const d = list.map((p, i) => (i === 0 || p[0] - list[i - 1][0] > step * 1.5 ? 'M' : 'L') +
    ((p[0] - t0) / Math.max(1, t1 - t0) * SPARK.width).toFixed(1) + ' ' + (SPARK.height - Math.min(100, Math.max(0, p[1])) / 100 * SPARK.height).toFixed(1)).join('');
  const path = document.createElementNS(SVG_NAMESPACE, 'path');
  path.setAttribute('d', d);
  svg.append(path);
}

/** A usage cell: the figure and, when the fleet route gave one, its 24 h sparkline. */
function usageCell(td, value, points) {
  if (!td.firstChild) {
    const span = document.createElement('span');
    const svg = document.createElementNS(SVG_NAMESPACE, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + SPARK.width + ' ' + SPARK.height);
    svg.setAttribute('class', 'spark');
    svg.setAttribute('aria-hidden', 'true');
    td.append(span, svg);
  }
  setText(td.firstChild, percent(value ?? NaN));
  sparkline(td.lastChild, points);
}

/** Firing alerts of a fleet row: the route's counts, else the page's own. */
function alertText(page, row) {
  const a = row.alerts_firing;
  if (a && typeof a === 'object') {
    const parts = ['critical', 'warning', 'info'].filter((k) => a[k] > 0).map((k) => a[k] + ' ' + k);
    return parts.join(' · ') || 'none';
  }
  const n = firingCount(page, row.cluster_id);
  return n ? n + ' firing' : 'none';
}

/** Shows the fleet table, or a state line while there is none. */
export function renderFleet(page) {
  const state = byId('fleet-state');
  const list = page.fleet;
  if (!list) {
    const err = page.fleetError || page.lastError;
    showState(state, err ? (err.status === 401 ? 'Waiting for a viewer token.' : err.message + '.') : 'Loading…', !!err);
    show(byId('fleet-wrap'), false);
    return;
  }
  if (!list.length) {
    showState(state, 'No clusters have reported to this master yet. Start an agent that points at it.', false);
    show(byId('fleet-wrap'), false);
    return;
  }
  showState(state, '', false);
  show(byId('fleet-wrap'), true);
  setText(byId('fleet-note'), page.fleetSource === 'summaries' ? 'No stored series yet: trends appear once this master serves /api/v2/fleet.' : '24 h sparklines');
  const tbody = byId('fleet').tBodies[0];
  syncRowCount(tbody, list.length, COLUMNS);
  const heads = byId('fleet').tHead.rows[0].cells;
  list.forEach((row, i) => {
    const tr = tbody.rows[i];
    const c = tr.cells;
    // The phone layout stacks each row as a card, a label beside each value.
    if (!c[0].dataset.label) for (let j = 0; j < COLUMNS; j++) c[j].dataset.label = heads[j].textContent;
    tr.dataset.cluster = row.cluster_id;
    const status = STATUS_TEXT[row.status] ? row.status : 'down';
    setClass(tr, 'st-' + status);
    let a = c[0].firstChild;
    if (!a || a.tagName !== 'A') { c[0].textContent = ''; a = document.createElement('a'); c[0].append(a); }
    const link = href(row.cluster_id);
    if (a.getAttribute('href') !== link) a.setAttribute('href', link);
    setText(a, row.cluster_id);
    setText(c[1], STATUS_TEXT[status] + (row.agent_online === false ? ' · agent offline' : ''));
    setClass(c[1], 'status ' + status);
    setText(c[2], (row.nodes_online ?? '—') + ' / ' + (row.nodes_total ?? '—') + (row.nodes_offline > 0 ? ' · ' + row.nodes_offline + ' offline' : ''));
    setText(c[3], alertText(page, row));
    const spark = row.sparkline || {};
    usageCell(c[4], usage(row.cpu), spark.cpu);
    usageCell(c[5], usage(row.memory), spark.memory);
    usageCell(c[6], usage(row.disk), spark.disk);
    for (const j of [4, 5, 6]) setClass(c[j], 'num use');
  });
}

/** Opening a cluster from a row (the name cell is a link; the row answers clicks and Enter). */
export function wireFleet() {
  const tbody = byId('fleet').tBodies[0];
  tbody.addEventListener('click', (e) => {
    const tr = e.target.closest('tr');
    if (tr && tr.dataset.cluster && !e.target.closest('a')) navigate(tr.dataset.cluster, '', '');
  });
}
