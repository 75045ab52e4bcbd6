// atlhyper-rs dashboard: cluster overview, node table, node detail and trend charts.
// Plain DOM code, no dependencies. Every refresh updates existing elements in place, so the page
// neither flickers nor loses its scroll position.
'use strict';

const REFRESH_MS = 5000;
const PAGE_SIZE = 50;
const HEALTH_LIMIT = 90; // percent; a node is unhealthy when CPU, memory or any disk is above it
const TOKEN_KEY = 'atlhyper.viewerToken';
const RANGES = { '1h': 1, '24h': 24, '7d': 168, '30d': 720 };
// Long ranges change slowly: reload their history every this many refreshes.
const SLOW_RANGE_EVERY = 6;

const $ = (id) => document.getElementById(id);

const S = {
  token: readToken(),
  clusters: null,
  cluster: '',
  data: null,
  rows: [],
  view: [],
  sort: { k: 'name', dir: 1 },
  procSort: { k: 'cpu_percent', dir: -1 },
  filter: '',
  status: 'all',
  page: 0,
  node: '',
  range: '24h',
  detail: null,
  detailErr: null,
  chartKey: '',
  chartAge: 0,
  updatedAt: null,
  tick: null,
  busy: false,
};

function readToken() {
  try { return localStorage.getItem(TOKEN_KEY) || ''; } catch (_) { return ''; }
}

// ---------- formatting ----------

function pct(v) { return Number.isFinite(v) ? v.toFixed(1) + '%' : '—'; }
function bytes(v) {
  if (!Number.isFinite(v) || v < 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
}
function rate(v) { return Number.isFinite(v) && v >= 0 ? bytes(v) + '/s' : '—'; }
function temp(v) { return Number.isFinite(v) && v > 0 ? v.toFixed(1) + ' °C' : '—'; }
function num(v, d) { return Number.isFinite(v) ? v.toFixed(d) : '—'; }
function duration(s) {
  if (!Number.isFinite(s) || s <= 0) return '—';
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d > 0) return d + 'd ' + h + 'h';
  if (h > 0) return h + 'h ' + m + 'm';
  return m + 'm';
}
const pad = (n) => (n < 10 ? '0' : '') + n;
function clock(t) { const d = new Date(t); return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); }
function stamp(t, long) {
  const d = new Date(t);
  const hm = pad(d.getHours()) + ':' + pad(d.getMinutes());
  return long ? pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hm : hm;
}
// A node's clock skew (clock_skew_seconds: node clock minus receive time, positive = ahead).
function skew(s) {
  if (!Number.isFinite(s)) return '';
  const a = Math.abs(s);
  return 'clock ' + (s > 0 ? 'ahead' : 'behind') + ' by ' + (a < 60 ? a.toFixed(0) + ' s' : duration(a));
}
function ago(t) {
  const s = Math.round((Date.now() - Date.parse(t)) / 1000);
  if (!Number.isFinite(s)) return 'at an unknown time';
  if (s < 5) return 'just now';
  return s < 60 ? s + ' s ago' : duration(s) + ' ago';
}

function setText(el, s) { if (el._t !== s) { el._t = s; el.textContent = s; } }
function setClass(el, c) { if (el._c !== c) { el._c = c; el.className = c; } }
function show(el, on) { if (el.hidden === on) el.hidden = !on; }
function state(el, text, isErr) {
  show(el, !!text);
  if (text) { setText(el, text); setClass(el, isErr ? 'state err' : 'state'); }
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

const enc = encodeURIComponent;

async function api(path, timing) {
  const headers = { Accept: 'application/json' };
  if (S.token) headers.Authorization = 'Bearer ' + S.token;
  let res;
  try {
    res = await fetch(path, { headers, cache: 'no-store' });
  } catch (_) {
    throw new ApiError(0, 'The master is unreachable');
  }
  const text = await res.text();
  const t0 = performance.now();
  let body = null;
  if (text) {
    try { body = JSON.parse(text); } catch (_) { body = null; }
  }
  if (timing) timing.parse = performance.now() - t0;
  if (res.status === 401) { askToken(); throw new ApiError(401, 'A viewer token is required'); }
  if (!res.ok) {
    const msg = body && typeof body.error === 'string' ? body.error : res.status + ' ' + res.statusText;
    throw new ApiError(res.status, msg);
  }
  if (body === null) throw new ApiError(res.status, 'The master sent a body that is not JSON');
  return body;
}

function askToken() {
  const dlg = $('token-dialog');
  if (dlg.open) return;
  $('token-input').value = '';
  dlg.showModal();
}

$('token-form').addEventListener('submit', () => {
  S.token = $('token-input').value.trim();
  try { localStorage.setItem(TOKEN_KEY, S.token); } catch (_) { /* private mode: keep it in memory */ }
  refreshSoon();
});

// ---------- banner and connection line ----------

function banner(text) {
  const el = $('banner');
  show(el, !!text);
  if (text) setText(el, text);
}

function connection(err) {
  const el = $('conn');
  if (err) {
    setClass(el, 'conn err');
    setText(el, err.status === 401 ? 'Waiting for a token' : 'Disconnected');
  } else {
    setClass(el, 'conn');
    setText(el, 'Updated ' + clock(S.updatedAt));
  }
}

// ---------- routing (#c=<cluster>&n=<node>&r=<range>) ----------

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  return { c: p.get('c') || '', n: p.get('n') || '', r: RANGES[p.get('r')] ? p.get('r') : '' };
}

function go(c, n, r) {
  const p = new URLSearchParams();
  if (c) p.set('c', c);
  if (n) p.set('n', n);
  if (n && r) p.set('r', r);
  const h = '#' + p.toString();
  if (location.hash !== h) location.hash = h;
}

function applyHash() {
  const h = readHash();
  const clusterChanged = h.c !== S.cluster;
  const nodeChanged = h.n !== S.node;
  if (clusterChanged) { S.cluster = h.c; S.data = null; S.page = 0; }
  const opening = !S.node && h.n, closing = S.node && !h.n;
  if (opening) S.overviewScroll = window.scrollY;
  S.node = h.n;
  S.range = h.r || '24h';
  if (clusterChanged || nodeChanged) { S.detail = null; S.detailErr = null; }
  S.chartKey = '';
  render();
  // The overview comes back where it was left; a detail opens at its top.
  if (opening) window.scrollTo(0, 0);
  if (closing && !clusterChanged) window.scrollTo(0, S.overviewScroll || 0);
  if (S.cluster && S.node) refreshCharts(true);
  refreshSoon();
}

// ---------- cluster list ----------

function renderClusters() {
  const sel = $('cluster');
  const list = S.clusters || [];
  if (!list.length) {
    sel.disabled = true;
    syncOptions(sel, [['', S.clusters ? 'No clusters' : 'Loading…']]);
    return;
  }
  sel.disabled = false;
  syncOptions(sel, list.map((c) => [c.cluster_id,
    c.cluster_id + ' · ' + c.node_count + (c.node_count === 1 ? ' node' : ' nodes') +
    (c.status === 'online' ? '' : ' · agent ' + (c.status || 'offline'))]));
  if (sel.value !== S.cluster) sel.value = S.cluster;
}

function syncOptions(sel, items) {
  while (sel.options.length > items.length) sel.remove(sel.options.length - 1);
  items.forEach(([v, t], i) => {
    let o = sel.options[i];
    if (!o) { o = new Option(); sel.add(o); }
    if (o.value !== v) o.value = v;
    setText(o, t);
  });
}

$('cluster').addEventListener('change', (e) => go(e.target.value, '', ''));
$('home').addEventListener('click', (e) => { e.preventDefault(); go(S.cluster, '', ''); });
$('back').addEventListener('click', () => go(S.cluster, '', ''));

// ---------- overview ----------

const SUMMARY_FORMAT = {
  total_nodes: String, online_nodes: String, offline_nodes: String,
  avg_cpu_usage: pct, max_cpu_usage: pct, avg_memory_usage: pct, max_memory_usage: pct,
  avg_disk_usage: pct, max_disk_usage: pct, avg_cpu_temp: temp, max_cpu_temp: temp,
  total_memory: bytes, used_memory: bytes, total_disk: bytes, used_disk: bytes,
  total_network_rx: rate, total_network_tx: rate,
};

function renderCards() {
  const s = S.data.summary || {};
  for (const el of $('cards').querySelectorAll('[data-f]')) {
    const f = el.dataset.f;
    const v = s[f];
    setText(el, typeof v === 'number' ? SUMMARY_FORMAT[f](v) : '—');
  }
}

function nodeOnline(name) {
  const st = S.data && S.data.node_status ? S.data.node_status[name] : null;
  return !st || st.state !== 'offline';
}

function primaryDisk(disks) {
  return disks.find((d) => d.mount_point === '/') || disks[0] || null;
}

function healthy(n) {
  const disks = n.disks || [];
  return (n.cpu?.usage_percent ?? 0) <= HEALTH_LIMIT && (n.memory?.usage_percent ?? 0) <= HEALTH_LIMIT &&
    disks.every((d) => d.usage_percent <= HEALTH_LIMIT);
}

// Node network rates: the totals extension when present, otherwise every interface but lo.
function netRates(n) {
  if (n.totals) return [n.totals.network_rx_rate, n.totals.network_tx_rate];
  let rx = 0, tx = 0;
  for (const i of n.networks || []) {
    if (i.interface === 'lo') continue;
    if (i.rx_rate > 0) rx += i.rx_rate;
    if (i.tx_rate > 0) tx += i.tx_rate;
  }
  return [rx, tx];
}

const STATUS_ORDER = { unhealthy: 0, offline: 1, online: 2 };

function deriveRows() {
  const nodes = (S.data && S.data.nodes) || [];
  S.rows = nodes.map((n) => {
    const online = nodeOnline(n.node_name);
    const st = S.data.node_status ? S.data.node_status[n.node_name] : null;
    const disks = n.disks || [];
    const pd = primaryDisk(disks);
    const [rx, tx] = netRates(n);
    const ok = healthy(n);
    const cpu = n.cpu || {}, mem = n.memory || {};
    return {
      name: n.node_name, lastSeen: st ? st.last_seen : n.timestamp, lname: (n.node_name + ' ' + (n.hostname || '')).toLowerCase(),
      status: online ? (ok ? 'online' : 'unhealthy') : 'offline',
      cpu: cpu.usage_percent ?? 0, mem: mem.usage_percent ?? 0, disk: pd ? pd.usage_percent : 0,
      diskHot: disks.some((d) => d.usage_percent > HEALTH_LIMIT),
      temp: n.temperature ? n.temperature.cpu_temp : 0, rx, tx, load: cpu.load_1 ?? 0, uptime: n.uptime ?? 0,
    };
  });
}

function filterSort() {
  const f = S.filter.toLowerCase();
  const st = S.status;
  const { k, dir } = S.sort;
  const out = S.rows.filter((r) => {
    if (f && !r.lname.includes(f)) return false;
    switch (st) {
      case 'online': return r.status !== 'offline';
      case 'offline': return r.status === 'offline';
      case 'unhealthy': return r.status === 'unhealthy';
      case 'healthy': return r.status === 'online';
      default: return true;
    }
  });
  const key = k === 'status' ? (r) => STATUS_ORDER[r.status] : (r) => r[k];
  out.sort((a, b) => {
    const x = key(a), y = key(b);
    const c = x < y ? -1 : x > y ? 1 : 0;
    return c !== 0 ? c * dir : (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  });
  S.view = out;
}

const NODE_COLS = 10;

function renderTable() {
  const tbody = $('nodes').tBodies[0];
  const total = S.view.length;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  if (S.page >= pages) S.page = pages - 1;
  const start = S.page * PAGE_SIZE;
  const slice = S.view.slice(start, start + PAGE_SIZE);
  syncRows(tbody, slice.length, NODE_COLS);
  for (let i = 0; i < slice.length; i++) {
    const r = slice[i];
    const tr = tbody.rows[i];
    const c = tr.cells;
    if (tr.dataset.node !== r.name) tr.dataset.node = r.name;
    if (tr.tabIndex !== 0) tr.tabIndex = 0;
    setClass(tr, r.status);
    setText(c[0], r.status === 'online' ? 'Online' : r.status === 'offline' ? 'Offline' : 'Unhealthy');
    const seen = r.status === 'offline' && r.lastSeen ? 'Last report ' + ago(r.lastSeen) : '';
    if (c[0].title !== seen) c[0].title = seen;
    setText(c[1], r.name);
    setText(c[2], pct(r.cpu));
    setText(c[3], pct(r.mem));
    setText(c[4], pct(r.disk));
    setText(c[5], temp(r.temp));
    setText(c[6], rate(r.rx));
    setText(c[7], rate(r.tx));
    setText(c[8], num(r.load, 2));
    setText(c[9], duration(r.uptime));
    for (let j = 5; j < NODE_COLS; j++) setClass(c[j], 'num');
    setClass(c[2], r.cpu > HEALTH_LIMIT ? 'num hot' : 'num');
    setClass(c[3], r.mem > HEALTH_LIMIT ? 'num hot' : 'num');
    setClass(c[4], r.diskHot ? 'num hot' : 'num');
  }
  const all = S.rows.length;
  setText($('count'), total === all ? all + ' nodes' : total + ' of ' + all + ' nodes');
  setText($('page'), total ? (start + 1) + '–' + (start + slice.length) + ' · page ' + (S.page + 1) + '/' + pages : '');
  $('prev').disabled = S.page === 0;
  $('next').disabled = S.page >= pages - 1;
  state($('table-state'), all && !total ? 'No nodes match the filter.' : '', false);
  for (const th of $('nodes').tHead.rows[0].cells) {
    const k = th.dataset.k;
    const cls = (th.classList.contains('num') ? 'num' : '') + (k === S.sort.k ? (S.sort.dir > 0 ? ' asc' : ' desc') : '');
    if (th.className !== cls.trim()) th.className = cls.trim();
  }
}

function syncRows(tbody, n, ncols) {
  while (tbody.rows.length < n) {
    const tr = tbody.insertRow();
    for (let i = 0; i < ncols; i++) tr.insertCell();
  }
  while (tbody.rows.length > n) tbody.deleteRow(-1);
}

$('nodes').tHead.addEventListener('click', (e) => {
  const k = e.target.closest('th')?.dataset.k;
  if (!k) return;
  S.sort = S.sort.k === k ? { k, dir: -S.sort.dir } : { k, dir: k === 'name' || k === 'status' ? 1 : -1 };
  filterSort(); renderTable();
});
$('nodes').tBodies[0].addEventListener('click', (e) => {
  const tr = e.target.closest('tr');
  if (tr && tr.dataset.node) go(S.cluster, tr.dataset.node, S.range);
});
$('nodes').tBodies[0].addEventListener('keydown', (e) => {
  const tr = e.target.closest('tr');
  if (e.key === 'Enter' && tr && tr.dataset.node) go(S.cluster, tr.dataset.node, S.range);
});
$('filter').addEventListener('input', (e) => { S.filter = e.target.value.trim(); S.page = 0; filterSort(); renderTable(); });
$('status-filter').addEventListener('change', (e) => { S.status = e.target.value; S.page = 0; filterSort(); renderTable(); });
$('prev').addEventListener('click', () => { S.page = Math.max(0, S.page - 1); renderTable(); });
$('next').addEventListener('click', () => { S.page++; renderTable(); });

function renderOverview() {
  const stEl = $('overview-state');
  const cards = $('cards'), wrap = $('table-wrap');
  if (S.clusters && !S.clusters.length) {
    state(stEl, 'No clusters have reported to this master yet. Start an agent that points at it.', false);
    show(cards, false); show(wrap, false);
    return;
  }
  if (!S.data) {
    const err = S.overviewErr || S.lastErr;
    if (err) state(stEl, err.status === 401 ? 'Waiting for a viewer token.' : err.message + '.', true);
    else state(stEl, 'Loading…', false);
    show(cards, false); show(wrap, false);
    return;
  }
  if (!S.rows.length) {
    state(stEl, 'No nodes in cluster ' + S.cluster + ' yet.', false);
  } else {
    state(stEl, '', false);
  }
  show(cards, true); show(wrap, S.rows.length > 0);
  renderCards();
  renderTable();
}

// ---------- node detail ----------

function kv(el, pairs) {
  if (el.children.length !== pairs.length) {
    el.textContent = '';
    for (let i = 0; i < pairs.length; i++) {
      const d = document.createElement('div');
      d.append(document.createElement('span'), document.createTextNode(''));
      el.append(d);
    }
  }
  pairs.forEach(([k, v], i) => {
    const d = el.children[i];
    setText(d.firstChild, k);
    if (d.lastChild.data !== v) d.lastChild.data = v;
  });
}

function meters(el, list) {
  while (el.children.length < list.length) {
    const row = document.createElement('div');
    row.className = 'mrow';
    row.innerHTML = '<div class="lbl"><span></span><span></span></div><div class="meter"><i></i></div>';
    el.append(row);
  }
  while (el.children.length > list.length) el.lastChild.remove();
  list.forEach(([label, value, frac, hot], i) => {
    const row = el.children[i];
    const [a, b] = row.firstChild.children;
    setText(a, label); setText(b, value);
    setClass(row.lastChild, hot ? 'meter hot' : 'meter');
    const w = (Math.max(0, Math.min(1, frac || 0)) * 100).toFixed(1) + '%';
    if (row.lastChild.firstChild.style.width !== w) row.lastChild.firstChild.style.width = w;
  });
}

function renderCores(per) {
  const el = $('d-cores');
  while (el.children.length < per.length) {
    const c = document.createElement('div');
    c.append(document.createElement('i'));
    el.append(c);
  }
  while (el.children.length > per.length) el.lastChild.remove();
  per.forEach((v, i) => {
    const c = el.children[i];
    setClass(c, v > HEALTH_LIMIT ? 'core hot' : 'core');
    const h = Math.max(0, Math.min(100, v)).toFixed(1) + '%';
    if (c.firstChild.style.height !== h) c.firstChild.style.height = h;
    const t = 'cpu' + i + ': ' + pct(v);
    if (c.title !== t) c.title = t;
  });
}

function fillTable(table, rows) {
  const tbody = table.tBodies[0];
  const ncols = table.tHead.rows[0].cells.length;
  syncRows(tbody, rows.length, ncols);
  rows.forEach((cells, i) => {
    const tr = tbody.rows[i];
    cells.forEach((v, j) => {
      const td = tr.cells[j];
      const cls = table.tHead.rows[0].cells[j].classList.contains('num') ? 'num' : v.cls || '';
      setClass(td, cls);
      setText(td, typeof v === 'string' ? v : v.t);
    });
  });
}

function renderDetail() {
  const n = S.detail;
  const online = nodeOnline(S.node);
  setText($('d-name'), S.node);
  const stEl = $('detail-state');
  const body = $('detail-body');
  if (!n) {
    const badge = $('d-status');
    setClass(badge, 'badge');
    setText(badge, '…');
    setText($('d-meta'), '');
    if (S.detailErr) state(stEl, S.detailErr.status === 404 ? 'Node ' + S.node + ' is not known in cluster ' + S.cluster + '.' : S.detailErr.message, true);
    else state(stEl, 'Loading…', false);
    show(body, false);
    return;
  }
  const ok = healthy(n);
  const status = online ? (ok ? 'online' : 'unhealthy') : 'offline';
  setClass($('d-status'), 'badge ' + status);
  setText($('d-status'), status === 'online' ? 'Online' : status === 'offline' ? 'Offline' : 'Unhealthy');
  setText($('d-meta'), [n.hostname, n.os, n.kernel, 'up ' + duration(n.uptime), 'collected ' + clock(n.timestamp)].filter(Boolean).join(' · '));
  // The node's clock was off: its timestamp was replaced by the receive time.
  const sk = $('d-skew');
  show(sk, Number.isFinite(n.clock_skew_seconds));
  setText(sk, Number.isFinite(n.clock_skew_seconds) ? skew(n.clock_skew_seconds) : '');
  if (sk.title !== 'The node\'s timestamp was replaced by the time it was received') sk.title = 'The node\'s timestamp was replaced by the time it was received';
  const ci = (S.clusters || []).find((c) => c.cluster_id === S.cluster);
  if (!online && ci && ci.status !== 'online') {
    state(stEl, 'The agent of cluster ' + S.cluster + ' is ' + (ci.status || 'offline') + ' (last heard ' + ago(ci.last_seen) + '): every node of it counts as offline. The figures below are this node\'s last report.', true);
  } else if (!online) {
    const st = S.data?.node_status?.[S.node];
    state(stEl, 'This node stopped reporting' + (st ? ' (last seen ' + ago(st.last_seen) + ')' : '') + '. The figures below are its last snapshot.', true);
  } else if (S.detailErr) {
    state(stEl, 'Could not refresh: ' + S.detailErr.message + '. Showing the last figures received.', true);
  } else {
    state(stEl, '', false);
  }
  show(body, true);

  const cpu = n.cpu || {};
  setText($('d-cpu-model'), [cpu.model, cpu.cores ? cpu.cores + ' cores' : '', cpu.threads ? cpu.threads + ' threads' : '', cpu.frequency ? num(cpu.frequency, 0) + ' MHz' : ''].filter(Boolean).join(' · '));
  const cpuKv = [['Usage', pct(cpu.usage_percent)], ['User', pct(cpu.user_percent)], ['System', pct(cpu.system_percent)],
    ['I/O wait', pct(cpu.iowait_percent)], ['Idle', pct(cpu.idle_percent)]];
  if (cpu.steal_percent != null) cpuKv.push(['Steal', pct(cpu.steal_percent)]);
  cpuKv.push(['Load 1 / 5 / 15', num(cpu.load_1, 2) + ' / ' + num(cpu.load_5, 2) + ' / ' + num(cpu.load_15, 2)]);
  kv($('d-cpu-kv'), cpuKv);
  renderCores(cpu.per_core || []);

  const m = n.memory || {};
  const memEl = $('d-mem');
  meters(memEl, [
    ['Memory ' + pct(m.usage_percent), bytes(m.used) + ' of ' + bytes(m.total), m.total ? m.used / m.total : 0, m.usage_percent > HEALTH_LIMIT],
    ['Swap ' + (m.swap_total ? pct(m.swap_percent) : 'none'), bytes(m.swap_used) + ' of ' + bytes(m.swap_total), m.swap_total ? m.swap_used / m.swap_total : 0, m.swap_percent > HEALTH_LIMIT],
  ]);
  let memKv = memEl.nextElementSibling;
  if (!memKv) { memKv = document.createElement('div'); memKv.className = 'kv'; memEl.after(memKv); }
  kv(memKv, [['Available', bytes(m.available)], ['Free', bytes(m.free)], ['Cached', bytes(m.cached)], ['Buffers', bytes(m.buffers)]]);

  const t = n.temperature || {};
  const sensors = t.sensors || [];
  const tl = [['CPU', temp(t.cpu_temp) + (t.cpu_temp_max > 0 ? ' (max ' + temp(t.cpu_temp_max) + ')' : ''), t.cpu_temp / (t.cpu_temp_max || 100), t.cpu_temp_max > 0 && t.cpu_temp >= t.cpu_temp_max]];
  for (const s of sensors) {
    const lim = s.critical || s.max || 100;
    tl.push([s.name + (s.label ? ' · ' + s.label : ''), temp(s.current) + (s.critical ? ' (crit ' + temp(s.critical) + ')' : s.max ? ' (max ' + temp(s.max) + ')' : ''), s.current / lim, s.current >= lim]);
  }
  if (!t.cpu_temp && !sensors.length) tl.length = 0;
  meters($('d-temp'), tl);
  const tEmpty = !tl.length;
  let tNote = $('d-temp').nextElementSibling;
  if (!tNote) { tNote = document.createElement('div'); tNote.className = 'muted'; $('d-temp').after(tNote); }
  setText(tNote, tEmpty ? 'This node reports no temperature sensors.' : '');

  fillTable($('d-disks'), (n.disks || []).map((d) => [d.mount_point, d.device, d.fs_type, bytes(d.used), bytes(d.total),
    { t: pct(d.usage_percent), cls: d.usage_percent > HEALTH_LIMIT ? 'hot' : '' }, rate(d.read_rate), rate(d.write_rate), pct(d.io_util)]));
  fillTable($('d-nets'), (n.networks || []).map((i) => [i.interface, i.ip_address || '—', i.status || '—',
    i.speed > 0 ? i.speed + ' Mb/s' : '—', rate(i.rx_rate), rate(i.tx_rate), String(i.rx_errors + i.tx_errors), String(i.rx_dropped + i.tx_dropped)]));
  const procs = (n.processes || []).slice();
  const { k, dir } = S.procSort;
  procs.sort((a, b) => (a[k] < b[k] ? -1 : a[k] > b[k] ? 1 : a.pid - b.pid) * dir);
  fillTable($('d-procs'), procs.map((p) => [String(p.pid), p.name, p.user, p.status, num(p.cpu_percent, 1), num(p.mem_percent, 1),
    bytes(p.mem_rss), String(p.threads), { t: p.cmdline || '[' + p.name + ']', cls: 'cmd' }]));
  for (const th of $('d-procs').tHead.rows[0].cells) {
    const c = (th.classList.contains('num') ? 'num' : '') + (th.dataset.k === k ? (dir > 0 ? ' asc' : ' desc') : '');
    if (th.className !== c.trim()) th.className = c.trim();
  }
}

$('d-procs').tHead.addEventListener('click', (e) => {
  const k = e.target.closest('th')?.dataset.k;
  if (!k) return;
  S.procSort = S.procSort.k === k ? { k, dir: -S.procSort.dir } : { k, dir: ['name', 'user', 'status', 'cmdline', 'pid'].includes(k) ? 1 : -1 };
  if (S.detail) renderDetail();
});

// ---------- charts (SVG, drawn here) ----------

const CHARTS = [
  { id: 'cpu', title: 'CPU', fmt: pct, max: 100, series: [['cpu_usage', 'busy']] },
  { id: 'memory', title: 'Memory', fmt: pct, max: 100, series: [['memory_usage', 'used']] },
  { id: 'disk', title: 'Disk usage (/)', fmt: pct, max: 100, series: [['disk_usage', 'used']] },
  { id: 'diskio', title: 'Disk IO', fmt: rate, series: [['disk_io_read', 'read'], ['disk_io_write', 'write']] },
  { id: 'network', title: 'Network', fmt: rate, series: [['network_rx', 'in'], ['network_tx', 'out']] },
  { id: 'temperature', title: 'CPU temperature', fmt: temp, axis: (v) => v.toFixed(0) + '°', series: [['cpu_temp', 'cpu']] },
];
const SVGNS = 'http://www.w3.org/2000/svg';
const CH = { h: 150, l: 56, r: 8, t: 6, b: 18 };

function svgEl(name, attrs, parent) {
  const e = document.createElementNS(SVGNS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.append(e);
  return e;
}

function buildCharts() {
  const box = $('charts');
  if (box.children.length) return;
  for (const c of CHARTS) {
    const div = document.createElement('div');
    div.className = 'chart';
    div.dataset.chart = c.id;
    const h4 = document.createElement('h4');
    h4.append(c.title);
    c.series.forEach(([, label], i) => {
      const s = document.createElement('span');
      s.className = 'k' + i;
      s.textContent = '— ' + label;
      h4.append(s);
    });
    const v = document.createElement('span');
    v.className = 'v';
    h4.append(v);
    const svg = svgEl('svg', { role: 'img', 'aria-label': c.title + ' trend' });
    const msg = document.createElement('div');
    msg.className = 'msg';
    div.append(h4, svg, msg);
    box.append(div);
    c.el = { div, svg, msg, v };
    svg.addEventListener('mousemove', (e) => { c.pointer = e.clientX; hover(c, e.clientX); });
    svg.addEventListener('mouseleave', () => { c.pointer = null; hover(c, null); });
  }
}

// Points of a series response: an array of MetricsDataPoint, or an object holding one.
function seriesPoints(body) {
  if (Array.isArray(body)) return body;
  for (const k of ['data', 'points', 'series']) if (body && Array.isArray(body[k])) return body[k];
  return [];
}

function chartUrl() {
  const c = enc(S.cluster), n = enc(S.node);
  if (S.range === '1h') return '/api/v2/observe/metrics/nodes/' + n + '/series?cluster_id=' + c + '&minutes=60';
  return '/api/v2/clusters/' + c + '/node-metrics/' + n + '/history?hours=' + RANGES[S.range];
}

async function refreshCharts(force) {
  buildCharts();
  for (const b of $('ranges').children) setClass(b, b.dataset.r === S.range ? 'on' : '');
  const key = S.cluster + '\n' + S.node + '\n' + S.range;
  const fresh = key !== S.chartKey;
  // One request per chart range at a time: a slow agent (up to the master's detail timeout)
  // must not hold up the overview refresh, nor pile up requests.
  if (!fresh && S.chartBusy === key) return;
  if (!fresh && !force && S.range !== '1h' && ++S.chartAge < SLOW_RANGE_EVERY) return;
  S.chartAge = 0;
  S.chartBusy = key;
  if (fresh) {
    S.chartKey = key;
    S.chart = null;
    for (const c of CHARTS) chartMessage(c, 'Loading…', false);
    chartNote('', false);
  }
  const url = chartUrl();
  try {
    await loadChart(key, url);
  } finally {
    if (S.chartBusy === key) S.chartBusy = null;
  }
}

async function loadChart(key, url) {
  try {
    const body = await api(url);
    if (key !== S.chartKey) return;
    const pts = seriesPoints(body).map((p) => ({ p, t: Date.parse(p.timestamp) })).filter((x) => Number.isFinite(x.t));
    pts.sort((a, b) => a.t - b.t);
    const end = Date.parse(body.end) || Date.now();
    const start = Date.parse(body.start) || end - RANGES[S.range] * 3600e3;
    S.chart = { pts, start, end };
    chartNote(S.range === '1h' ? 'high resolution, from the agent' : 'stored history, one point per 5 min or coarser', false);
    drawCharts();
  } catch (err) {
    if (key !== S.chartKey) return;
    if (S.chart && err.status !== 504) {
      chartNote('Could not refresh: ' + err.message, true);
      return;
    }
    S.chart = null;
    let text = err.message, note = '';
    if (err.status === 504 || (S.range === '1h' && err.status === 503)) {
      text = 'The agent did not answer.';
      note = 'The agent of cluster ' + S.cluster + ' did not answer (offline?): the 1 h high-resolution series comes from the agent. 24 h and longer ranges are stored by the master.';
    } else if (err.status === 404) {
      text = 'No history for this node.';
      note = err.message;
    }
    for (const c of CHARTS) chartMessage(c, text, true);
    chartNote(note, true);
  }
}

function chartNote(text, isErr) {
  const el = $('chart-note');
  setText(el, text);
  setClass(el, isErr ? 'muted err' : 'muted');
}

function chartMessage(c, text, isErr) {
  const { msg, svg, v } = c.el;
  show(msg, !!text);
  setText(msg, text || '');
  setClass(msg, isErr ? 'msg err' : 'msg');
  if (text) {
    svg.textContent = '';
    svg.dataset.points = '0';
    setText(v, '');
  }
}

function drawCharts() {
  if (!S.chart) return;
  for (const c of CHARTS) drawChart(c);
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function drawChart(c) {
  const { pts, start, end } = S.chart;
  const { svg } = c.el;
  if (!pts.length) { chartMessage(c, 'No data points in this range yet.', false); return; }
  chartMessage(c, '', false);
  const w = Math.max(200, svg.clientWidth || 400);
  const h = CH.h;
  const t0 = Math.min(start, pts[0].t), t1 = Math.max(end, pts[pts.length - 1].t);
  let max = c.max || 0;
  if (!c.max) for (const x of pts) for (const [f] of c.series) max = Math.max(max, x.p[f] || 0);
  max = c.max || niceMax(max * 1.05);
  const X = (t) => CH.l + (t - t0) / Math.max(1, t1 - t0) * (w - CH.l - CH.r);
  const Y = (v) => CH.t + (1 - Math.max(0, Math.min(v, max)) / max) * (h - CH.t - CH.b);
  // A gap longer than three typical steps breaks the line (the node or the agent was away).
  const steps = [];
  for (let i = 1; i < pts.length && i < 200; i++) steps.push(pts[i].t - pts[i - 1].t);
  steps.sort((a, b) => a - b);
  const gap = steps.length ? Math.max(steps[steps.length >> 1] * 3, 1000) : Infinity;

  svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
  svg.textContent = '';
  const long = RANGES[S.range] >= 24;
  for (const f of [0, 0.5, 1]) {
    const y = Y(max * f);
    svgEl('line', { class: 'ax', x1: CH.l, x2: w - CH.r, y1: y, y2: y }, svg);
    svgEl('text', { x: CH.l - 4, y: y + 3, 'text-anchor': 'end' }, svg).textContent = (c.axis || c.fmt)(max * f);
  }
  const ticks = w > 520 ? 4 : 2;
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + (t1 - t0) * i / ticks;
    const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
    svgEl('text', { x: X(t), y: h - 4, 'text-anchor': anchor }, svg).textContent = stamp(t, long);
  }
  c.series.forEach(([f], i) => {
    const d = [];
    let prev = -Infinity;
    for (const x of pts) {
      const v = x.p[f];
      if (!Number.isFinite(v)) { prev = -Infinity; continue; }
      d.push((x.t - prev > gap ? 'M' : 'L') + X(x.t).toFixed(1) + ' ' + Y(v).toFixed(1));
      prev = x.t;
    }
    svgEl('path', { class: 'line s' + i, d: d.join(''), 'data-series': f }, svg);
  });
  c.cross = svgEl('line', { class: 'cross', y1: CH.t, y2: h - CH.b, visibility: 'hidden' }, svg);
  c.X = X; c.t0 = t0; c.t1 = t1; c.w = w;
  svg.dataset.points = String(pts.length);
  hover(c, c.pointer ?? null); // a redraw keeps the crosshair where the pointer is
}

// Shows the value under the pointer (clientX), or the latest value when the pointer is away.
function hover(c, clientX) {
  if (!S.chart || !S.chart.pts.length || !c.cross) return;
  const pts = S.chart.pts;
  let i = pts.length - 1;
  if (clientX != null) {
    const r = c.el.svg.getBoundingClientRect();
    const x = (clientX - r.left) / r.width * c.w;
    const t = c.t0 + (x - CH.l) / (c.w - CH.l - CH.r) * (c.t1 - c.t0);
    let lo = 0, hi = pts.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (pts[mid].t < t) lo = mid + 1; else hi = mid; }
    i = lo > 0 && t - pts[lo - 1].t < pts[lo].t - t ? lo - 1 : lo;
    const cx = c.X(pts[i].t).toFixed(1);
    c.cross.setAttribute('x1', cx); c.cross.setAttribute('x2', cx);
    c.cross.setAttribute('visibility', 'visible');
  } else {
    c.cross.setAttribute('visibility', 'hidden');
  }
  const p = pts[i].p;
  setText(c.el.v, c.series.map(([f, l]) => (c.series.length > 1 ? l + ' ' : '') + c.fmt(p[f])).join(' · ') + ' at ' + stamp(pts[i].t, RANGES[S.range] >= 24));
}

$('ranges').addEventListener('click', (e) => {
  const r = e.target.closest('button')?.dataset.r;
  if (r && r !== S.range) go(S.cluster, S.node, r);
});

let resizeTimer = 0;
window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawCharts, 150); });

// ---------- refresh loop ----------

function render() {
  renderClusters();
  const detail = !!S.node;
  show($('overview'), !detail);
  show($('detail'), detail);
  if (detail) renderDetail(); else renderOverview();
}

async function refresh() {
  const errors = [];
  try {
    S.clusters = await api('/api/v2/clusters');
    if (!Array.isArray(S.clusters)) S.clusters = [];
    S.clusters.sort((a, b) => (a.cluster_id < b.cluster_id ? -1 : 1));
    if (S.clusters.length && !S.clusters.some((c) => c.cluster_id === S.cluster)) {
      go(S.clusters[0].cluster_id, '', '');
      return; // the hash change starts another refresh
    }
  } catch (err) { errors.push(err); }

  if (S.cluster && !errors.length) {
    const timing = {};
    try {
      // The overview form: the same shape without processes, per-core CPU and sensors (the
      // node page fetches the full snapshot of its one node).
      const data = await api('/api/v2/clusters/' + enc(S.cluster) + '/node-metrics?view=overview', timing);
      const t0 = performance.now();
      S.data = data;
      S.overviewErr = null;
      deriveRows();
      filterSort();
      if (!S.node) renderOverview();
      const ms = timing.parse + performance.now() - t0;
      if (!S.shown) { S.shown = true; performance.mark('atlhyper:first-data'); }
      performance.measure('atlhyper:refresh', { start: t0 - timing.parse, duration: ms });
      performance.measure('atlhyper:refresh:parse', { start: t0 - timing.parse, duration: timing.parse });
    } catch (err) {
      S.overviewErr = err;
      errors.push(err);
    }
  }

  if (S.cluster && S.node && !errors.some((e) => e.status === 0 || e.status === 401)) {
    try {
      S.detail = await api('/api/v2/clusters/' + enc(S.cluster) + '/node-metrics/' + enc(S.node));
      S.detailErr = null;
    } catch (err) {
      S.detailErr = err;
      if (err.status === 404) S.detail = null;
    }
    renderDetail();
    if (S.detail || !S.detailErr || S.detailErr.status !== 404) refreshCharts(false);
  }

  const err = errors[0];
  S.lastErr = err || null;
  if (err) {
    connection(err);
    if (err.status === 0) {
      banner('Cannot reach the master.' + (S.updatedAt ? ' Showing figures from ' + clock(S.updatedAt) + '.' : '') + ' Retrying every ' + REFRESH_MS / 1000 + ' s.');
    } else if (err.status === 401) {
      banner('This master needs a viewer token.');
    } else {
      banner(err.message);
    }
  } else {
    S.updatedAt = Date.now();
    connection(null);
    const ci = (S.clusters || []).find((c) => c.cluster_id === S.cluster);
    banner(ci && ci.status && ci.status !== 'online'
      ? 'The agent of cluster ' + S.cluster + ' is ' + ci.status + ' (last heard ' + ago(ci.last_seen) + '): its nodes count as offline. Figures are its last report.'
      : '');
  }
  renderClusters();
  if (!S.node) renderOverview();
}

async function loop() {
  clearTimeout(S.tick);
  if (S.busy) { S.again = true; return; }
  S.busy = true;
  try { await refresh(); } finally { S.busy = false; }
  if (S.again) { S.again = false; loop(); return; }
  S.tick = setTimeout(loop, REFRESH_MS);
}

function refreshSoon() { clearTimeout(S.tick); S.tick = setTimeout(loop, 0); }

window.addEventListener('hashchange', applyHash);
{
  const h = readHash();
  S.cluster = h.c; S.node = h.n; S.range = h.r || '24h';
  render();
  loop();
}
