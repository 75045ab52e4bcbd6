// The cluster overview: summary cards and the node table (filter, sort, pages).

import { byId, markSortedColumn, setClass, setText, show, showState, syncRowCount } from './dom.js';
import { byteRate, byteSize, celsius, duration, fixed, percent, timeAgo } from './format.js';
import { HEALTH_LIMIT, isOnline, unhealthyReasons } from './health.js';
import { firingCount } from './alerts.js';
import { renderBusiest } from './cluster.js';
import { href, navigate } from './route.js';

const PAGE_SIZE = 50;
const NODE_COLUMNS = 10;
const STATUS_ORDER = { unhealthy: 0, offline: 1, online: 2 };

const SUMMARY_FORMAT = {
  total_nodes: String, online_nodes: String, offline_nodes: String,
  avg_cpu_usage: percent, max_cpu_usage: percent, avg_memory_usage: percent, max_memory_usage: percent,
  avg_disk_usage: percent, max_disk_usage: percent, avg_cpu_temp: celsius, max_cpu_temp: celsius,
  total_memory: byteSize, used_memory: byteSize, total_disk: byteSize, used_disk: byteSize,
  total_network_rx: byteRate, total_network_tx: byteRate,
};

function renderCards(overview) {
  const summary = overview.summary || {};
  for (const el of byId('cards').querySelectorAll('[data-f]')) {
    const field = el.dataset.f;
    const v = summary[field];
    setText(el, typeof v === 'number' ? SUMMARY_FORMAT[field](v) : '—');
  }
}

function primaryDisk(disks) {
  return disks.find((d) => d.mount_point === '/') || disks[0] || null;
}

// Node network rates: the totals extension when present, otherwise every interface but lo.
function networkRates(node) {
  if (node.totals) return [node.totals.network_rx_rate, node.totals.network_tx_rate];
  let rx = 0, tx = 0;
  for (const i of node.networks || []) {
    if (i.interface === 'lo') continue;
    if (i.rx_rate > 0) rx += i.rx_rate;
    if (i.tx_rate > 0) tx += i.tx_rate;
  }
  return [rx, tx];
}

/** One table row per node of `page.overview` into `page.rows`. */
export function deriveRows(page) {
  const overview = page.overview;
  const nodes = (overview && overview.nodes) || [];
  page.rows = nodes.map((n) => {
    const online = isOnline(overview, n.node_name);
    const st = overview.node_status ? overview.node_status[n.node_name] : null;
    const disks = n.disks || [];
    const disk = primaryDisk(disks);
    const [rx, tx] = networkRates(n);
    const reasons = unhealthyReasons(n);
    const healthy = reasons.length === 0;
    const cpu = n.cpu || {}, mem = n.memory || {};
    return {
      name: n.node_name, lastSeen: st ? st.last_seen : n.timestamp, searchText: (n.node_name + ' ' + (n.hostname || '')).toLowerCase(),
      status: online ? (healthy ? 'online' : 'unhealthy') : 'offline', why: online ? reasons.join(', ') : '',
      cpu: cpu.usage_percent ?? 0, mem: mem.usage_percent ?? 0, disk: disk ? disk.usage_percent : 0,
      diskHot: disks.some((d) => d.usage_percent > HEALTH_LIMIT),
      temp: n.temperature ? n.temperature.cpu_temp : 0, rx, tx, load: cpu.load_1 ?? 0, uptime: n.uptime ?? 0,
    };
  });
}

/** The rows that pass the name and status filters, in table order, into `page.shownRows`. */
export function filterAndSort(page) {
  const filter = page.nameFilter.toLowerCase();
  const status = page.statusFilter;
  const { key, dir } = page.nodeSort;
  const out = page.rows.filter((r) => {
    if (filter && !r.searchText.includes(filter)) return false;
    switch (status) {
      case 'online': return r.status !== 'offline';
      case 'offline': return r.status === 'offline';
      case 'unhealthy': return r.status === 'unhealthy';
      case 'healthy': return r.status === 'online';
      default: return true;
    }
  });
  const sortValue = key === 'status' ? (r) => STATUS_ORDER[r.status] : (r) => r[key];
  out.sort((a, b) => {
    const x = sortValue(a), y = sortValue(b);
    const c = x < y ? -1 : x > y ? 1 : 0;
    return c !== 0 ? c * dir : (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  });
  page.shownRows = out;
}

const STATUS_TEXT = { online: 'Online', offline: 'Offline', unhealthy: 'Unhealthy' };

/** The status cell: the node's status, why it is unhealthy, then a badge with its firing alerts. */
function renderStatusCell(td, status, why, firing) {
  if (td.childElementCount !== 3) {
    td.textContent = '';
    const reason = document.createElement('small');
    reason.className = 'why';
    const badge = document.createElement('span');
    badge.className = 'badge firing';
    td.append(document.createElement('span'), reason, badge);
  }
  setText(td.firstChild, STATUS_TEXT[status]);
  show(td.children[1], !!why);
  setText(td.children[1], why);
  show(td.lastChild, firing > 0);
  setText(td.lastChild, firing > 0 ? firing + ' firing' : '');
}

/** The name cell: a link to the node page, so the table is walked with Tab and opened with Enter. */
function renderNameCell(td, clusterId, name) {
  let a = td.firstChild;
  if (!a || a.tagName !== 'A') { td.textContent = ''; a = document.createElement('a'); td.append(a); }
  const link = href(clusterId, name);
  if (a.getAttribute('href') !== link) a.setAttribute('href', link);
  setText(a, name);
}

function renderTable(page) {
  const table = byId('nodes');
  const tbody = table.tBodies[0];
  const total = page.shownRows.length;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  if (page.pageIndex >= pages) page.pageIndex = pages - 1;
  const start = page.pageIndex * PAGE_SIZE;
  const slice = page.shownRows.slice(start, start + PAGE_SIZE);
  syncRowCount(tbody, slice.length, NODE_COLUMNS);
  for (let i = 0; i < slice.length; i++) {
    const r = slice[i];
    const tr = tbody.rows[i];
    const c = tr.cells;
    if (tr.dataset.node !== r.name) tr.dataset.node = r.name;
    setClass(tr, r.status);
    renderStatusCell(c[0], r.status, r.why, firingCount(page, page.clusterId, r.name));
    const seen = r.status === 'offline' && r.lastSeen ? 'Last report ' + timeAgo(r.lastSeen) : r.why ? 'Unhealthy: ' + r.why : '';
    if (c[0].title !== seen) c[0].title = seen;
    renderNameCell(c[1], page.clusterId, r.name);
    setText(c[2], percent(r.cpu));
    setText(c[3], percent(r.mem));
    setText(c[4], percent(r.disk));
    setText(c[5], celsius(r.temp));
    setText(c[6], byteRate(r.rx));
    setText(c[7], byteRate(r.tx));
    setText(c[8], fixed(r.load, 2));
    setText(c[9], duration(r.uptime));
    for (let j = 5; j < NODE_COLUMNS; j++) setClass(c[j], 'num');
    setClass(c[2], r.cpu > HEALTH_LIMIT ? 'num hot' : 'num');
    setClass(c[3], r.mem > HEALTH_LIMIT ? 'num hot' : 'num');
    setClass(c[4], r.diskHot ? 'num hot' : 'num');
  }
  const all = page.rows.length;
  setText(byId('count'), total === all ? all + ' nodes' : total + ' of ' + all + ' nodes');
  setText(byId('page'), total ? (start + 1) + '–' + (start + slice.length) + ' · page ' + (page.pageIndex + 1) + '/' + pages : '');
  byId('prev').disabled = page.pageIndex === 0;
  byId('next').disabled = page.pageIndex >= pages - 1;
  showState(byId('table-state'), all && !total ? 'No nodes match the filter.' : '', false);
  markSortedColumn(table.tHead.rows[0], page.nodeSort);
}

/** Shows the overview of `page.clusterId`: a state line until there is data, then cards and table. */
export function renderOverview(page) {
  const stateLine = byId('overview-state');
  const cards = byId('cards'), tableWrap = byId('table-wrap'), extras = byId('cluster-extras');
  setText(byId('cluster-name'), page.clusterId);
  const known = !page.clusters || page.clusters.some((c) => c.clusterId === page.clusterId);
  show(byId('cluster-missing'), !known);
  if (page.clusters && !page.clusters.length) {
    showState(stateLine, 'No clusters have reported to this master yet. Start an agent that points at it.', false);
    show(cards, false); show(tableWrap, false); show(extras, false);
    return;
  }
  if (!known) {
    // Never silently another cluster: the URL names one this master does not know.
    showState(stateLine, '', false);
    setText(byId('cluster-missing-name'), page.clusterId);
    show(cards, false); show(tableWrap, false); show(extras, false);
    return;
  }
  if (!page.overview) {
    const err = page.overviewError || page.lastError;
    if (err) showState(stateLine, err.status === 401 ? 'Waiting for a viewer token.' : err.message + '.', true);
    else showState(stateLine, 'Loading…', false);
    show(cards, false); show(tableWrap, false); show(extras, false);
    return;
  }
  if (!page.rows.length) {
    showState(stateLine, 'No nodes in cluster ' + page.clusterId + ' yet.', false);
  } else {
    showState(stateLine, '', false);
  }
  show(cards, true); show(tableWrap, page.rows.length > 0); show(extras, true);
  renderCards(page.overview);
  renderTable(page);
  renderBusiest(page);
}

/** Sorting, filtering, paging and opening a node from the table. */
export function wireOverview(page) {
  const table = byId('nodes');
  table.tHead.addEventListener('click', (e) => {
    const key = e.target.closest('th')?.dataset.k;
    if (!key) return;
    page.nodeSort = page.nodeSort.key === key
      ? { key, dir: -page.nodeSort.dir }
      : { key, dir: key === 'name' || key === 'status' ? 1 : -1 };
    filterAndSort(page); renderTable(page);
  });
  table.tBodies[0].addEventListener('click', (e) => {
    const tr = e.target.closest('tr');
    if (tr && tr.dataset.node && !e.target.closest('a')) navigate(page.clusterId, tr.dataset.node, page.range);
  });
  // Headers sort from the keyboard too.
  table.tHead.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); e.target.closest('th')?.click(); }
  });
  byId('filter').addEventListener('input', (e) => {
    page.nameFilter = e.target.value.trim(); page.pageIndex = 0; filterAndSort(page); renderTable(page);
  });
  byId('status-filter').addEventListener('change', (e) => {
    page.statusFilter = e.target.value; page.pageIndex = 0; filterAndSort(page); renderTable(page);
  });
  byId('prev').addEventListener('click', () => { page.pageIndex = Math.max(0, page.pageIndex - 1); renderTable(page); });
  byId('next').addEventListener('click', () => { page.pageIndex++; renderTable(page); });
}
