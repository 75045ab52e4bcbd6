// The node page: status line, CPU, memory, temperatures, kernel figures, disks, interfaces and
// top processes.
// (Its trend charts are charts.js.)

import { byId, markSortedColumn, setClass, setText, show, showState, syncRowCount } from './dom.js';
import { byteRate, byteSize, celsius, clockSkew, clockTime, duration, fixed, percent, timeAgo } from './format.js';
import { HEALTH_LIMIT, isOnline, unhealthyReasons } from './health.js';

const SKEW_TITLE = 'The node\'s timestamp was replaced by the time it was received';

/** Fills `el` with one `<div><span>label</span>value</div>` per [label, value] pair. */
function renderLabelledValues(el, pairs) {
  if (el.children.length !== pairs.length) {
    el.textContent = '';
    for (let i = 0; i < pairs.length; i++) {
      const d = document.createElement('div');
      d.append(document.createElement('span'), document.createTextNode(''));
      el.append(d);
    }
  }
  pairs.forEach(([label, value], i) => {
    const d = el.children[i];
    setText(d.firstChild, label);
    if (d.lastChild.data !== value) d.lastChild.data = value;
  });
}

/** Fills `el` with one labelled bar per [label, value, fraction, hot] entry. */
function renderMeters(el, list) {
  while (el.children.length < list.length) {
    const row = document.createElement('div');
    row.className = 'mrow';
    row.innerHTML = '<div class="lbl"><span></span><span></span></div><div class="meter"><i></i></div>';
    el.append(row);
  }
  while (el.children.length > list.length) el.lastChild.remove();
  list.forEach(([label, value, fraction, hot], i) => {
    const row = el.children[i];
    const [a, b] = row.firstChild.children;
    setText(a, label); setText(b, value);
    setClass(row.lastChild, hot ? 'meter hot' : 'meter');
    const w = (Math.max(0, Math.min(1, fraction || 0)) * 100).toFixed(1) + '%';
    if (row.lastChild.firstChild.style.width !== w) row.lastChild.firstChild.style.width = w;
  });
}

function renderCores(perCore) {
  const el = byId('d-cores');
  while (el.children.length < perCore.length) {
    const c = document.createElement('div');
    c.append(document.createElement('i'));
    el.append(c);
  }
  while (el.children.length > perCore.length) el.lastChild.remove();
  perCore.forEach((v, i) => {
    const c = el.children[i];
    setClass(c, v > HEALTH_LIMIT ? 'core hot' : 'core');
    const h = Math.max(0, Math.min(100, v)).toFixed(1) + '%';
    if (c.firstChild.style.height !== h) c.firstChild.style.height = h;
    const t = 'cpu' + i + ': ' + percent(v);
    if (c.title !== t) c.title = t;
  });
}

/** Fills a table's body; a cell is a string or `{ t: text, cls: class }`. */
function fillTable(table, rows) {
  const tbody = table.tBodies[0];
  const columns = table.tHead.rows[0].cells.length;
  syncRowCount(tbody, rows.length, columns);
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

function renderStatusLine(page, node, online) {
  const stateLine = byId('detail-state');
  const cluster = (page.clusters || []).find((c) => c.clusterId === page.clusterId);
  if (!online && cluster && cluster.status !== 'online') {
    showState(stateLine, 'The agent of cluster ' + page.clusterId + ' is ' + (cluster.status || 'offline') + ' (last heard ' + timeAgo(cluster.lastSeen) + '): every node of it counts as offline. The figures below are this node\'s last report.', true);
  } else if (!online) {
    const st = page.overview?.node_status?.[page.nodeName];
    showState(stateLine, 'This node stopped reporting' + (st ? ' (last seen ' + timeAgo(st.last_seen) + ')' : '') + '. The figures below are its last snapshot.', true);
  } else if (page.nodeError) {
    showState(stateLine, 'Could not refresh: ' + page.nodeError.message + '. Showing the last figures received.', true);
  } else {
    showState(stateLine, '', false);
  }
}

function renderCpu(cpu) {
  setText(byId('d-cpu-model'), [cpu.model, cpu.cores ? cpu.cores + ' cores' : '', cpu.threads ? cpu.threads + ' threads' : '', cpu.frequency ? fixed(cpu.frequency, 0) + ' MHz' : ''].filter(Boolean).join(' · '));
  const figures = [['Usage', percent(cpu.usage_percent)], ['User', percent(cpu.user_percent)], ['System', percent(cpu.system_percent)],
    ['I/O wait', percent(cpu.iowait_percent)], ['Idle', percent(cpu.idle_percent)]];
  if (cpu.steal_percent != null) figures.push(['Steal', percent(cpu.steal_percent)]);
  figures.push(['Load 1 / 5 / 15', fixed(cpu.load_1, 2) + ' / ' + fixed(cpu.load_5, 2) + ' / ' + fixed(cpu.load_15, 2)]);
  renderLabelledValues(byId('d-cpu-kv'), figures);
  renderCores(cpu.per_core || []);
}

function renderMemory(m) {
  const meters = byId('d-mem');
  renderMeters(meters, [
    ['Memory ' + percent(m.usage_percent), byteSize(m.used) + ' of ' + byteSize(m.total), m.total ? m.used / m.total : 0, m.usage_percent > HEALTH_LIMIT],
    ['Swap ' + (m.swap_total ? percent(m.swap_percent) : 'none'), byteSize(m.swap_used) + ' of ' + byteSize(m.swap_total), m.swap_total ? m.swap_used / m.swap_total : 0, m.swap_percent > HEALTH_LIMIT],
  ]);
  let figures = meters.nextElementSibling;
  if (!figures) { figures = document.createElement('div'); figures.className = 'kv'; meters.after(figures); }
  renderLabelledValues(figures, [['Available', byteSize(m.available)], ['Free', byteSize(m.free)], ['Cached', byteSize(m.cached)], ['Buffers', byteSize(m.buffers)]]);
}

function renderTemperatures(t) {
  const sensors = t.sensors || [];
  const list = [['CPU', celsius(t.cpu_temp) + (t.cpu_temp_max > 0 ? ' (max ' + celsius(t.cpu_temp_max) + ')' : ''), t.cpu_temp / (t.cpu_temp_max || 100), t.cpu_temp_max > 0 && t.cpu_temp >= t.cpu_temp_max]];
  for (const s of sensors) {
    const limit = s.critical || s.max || 100;
    list.push([s.name + (s.label ? ' · ' + s.label : ''), celsius(s.current) + (s.critical ? ' (crit ' + celsius(s.critical) + ')' : s.max ? ' (max ' + celsius(s.max) + ')' : ''), s.current / limit, s.current >= limit]);
  }
  if (!t.cpu_temp && !sensors.length) list.length = 0;
  const meters = byId('d-temp');
  renderMeters(meters, list);
  let note = meters.nextElementSibling;
  if (!note) { note = document.createElement('div'); note.className = 'muted'; meters.after(note); }
  setText(note, list.length ? '' : 'This node reports no temperature sensors.');
}

/** A count as a plain integer with thousands separators, or an em dash when absent. */
function count(v) {
  return Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '—';
}

/** A per-second rate, or an em dash when absent. */
function perSecond(v) {
  return Number.isFinite(v) ? fixed(v, v < 10 ? 1 : 0) + '/s' : '—';
}

/** Used of a limit (conntrack, descriptors), with the share when both are known. */
function ofLimit(used, limit) {
  if (!Number.isFinite(used)) return '—';
  if (!Number.isFinite(limit) || limit <= 0) return count(used);
  return count(used) + ' of ' + count(limit) + ' (' + percent((used / limit) * 100) + ')';
}

/** Pressure, TCP, conntrack, descriptors, entropy, paging and softnet: each figure only when
 *  the node reports its part (an older collector, or a kernel without the file, omits it). */
function renderKernel(n) {
  const figures = [];
  if (n.psi) {
    figures.push(['CPU pressure (some, 10 s)', percent(n.psi.cpu_some)],
      ['Memory pressure (some / full)', percent(n.psi.memory_some) + ' / ' + percent(n.psi.memory_full)],
      ['I/O pressure (some / full)', percent(n.psi.io_some) + ' / ' + percent(n.psi.io_full)]);
  }
  if (n.tcp) {
    figures.push(['TCP established', count(n.tcp.curr_estab)], ['TCP time-wait', count(n.tcp.time_wait)],
      ['Sockets used', count(n.tcp.sockets_used)]);
  }
  const sys = n.system;
  if (sys) {
    if (sys.conntrack_entries != null) figures.push(['Conntrack entries', ofLimit(sys.conntrack_entries, sys.conntrack_limit)]);
    if (sys.filefd_allocated != null) figures.push(['File descriptors', ofLimit(sys.filefd_allocated, sys.filefd_max)]);
    if (sys.entropy_bits != null) figures.push(['Entropy', count(sys.entropy_bits) + ' bits']);
  }
  if (n.vmstat) {
    figures.push(['Page faults', perSecond(n.vmstat.pgfault_rate)], ['Major faults', perSecond(n.vmstat.pgmajfault_rate)],
      ['Swap in / out (pages)', perSecond(n.vmstat.pswpin_rate) + ' / ' + perSecond(n.vmstat.pswpout_rate)]);
  }
  if (n.softnet) {
    figures.push(['Softnet drops', perSecond(n.softnet.dropped_rate)], ['Softnet squeezes', perSecond(n.softnet.squeezed_rate)]);
  }
  renderLabelledValues(byId('d-kernel'), figures);
  show(byId('d-kernel-none'), figures.length === 0);
}

function renderProcesses(processes, sort) {
  const procs = processes.slice();
  const { key, dir } = sort;
  procs.sort((a, b) => (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : a.pid - b.pid) * dir);
  const table = byId('d-procs');
  fillTable(table, procs.map((p) => [String(p.pid), p.name, p.user, p.status, fixed(p.cpu_percent, 1), fixed(p.mem_percent, 1),
    byteSize(p.mem_rss), String(p.threads), { t: p.cmdline || '[' + p.name + ']', cls: 'cmd' }]));
  markSortedColumn(table.tHead.rows[0], sort);
}

/** Shows `page.node` (the open node's full snapshot), or a state line while there is none. */
export function renderNode(page) {
  const n = page.node;
  const online = isOnline(page.overview, page.nodeName);
  setText(byId('d-name'), page.nodeName);
  const stateLine = byId('detail-state');
  const body = byId('detail-body');
  const badge = byId('d-status');
  const why = byId('d-why');
  const clusterKnown = !page.clusters || page.clusters.some((c) => c.clusterId === page.clusterId);
  if (!n || !clusterKnown) {
    // Not found is said as such, never with the green dot of a healthy node.
    const err = page.nodeError;
    const missing = !clusterKnown || (err && err.status === 404);
    setClass(badge, missing ? 'badge notfound' : 'badge pending');
    setText(badge, missing ? 'Not found' : err ? 'Unknown' : 'Loading');
    setText(byId('d-meta'), '');
    show(why, false);
    if (!clusterKnown) showState(stateLine, 'Cluster ' + page.clusterId + ' is not known to this master.', true);
    else if (err) showState(stateLine, err.status === 404 ? 'Node ' + page.nodeName + ' is not known in cluster ' + page.clusterId + '.' : err.message, true);
    else showState(stateLine, 'Loading…', false);
    show(body, false);
    return;
  }
  const reasons = online ? unhealthyReasons(n) : [];
  const status = online ? (reasons.length ? 'unhealthy' : 'online') : 'offline';
  setClass(badge, 'badge ' + status);
  setText(badge, status === 'online' ? 'Online' : status === 'offline' ? 'Offline' : 'Unhealthy');
  // Which figure crossed which limit.
  show(why, reasons.length > 0);
  setText(why, reasons.length ? reasons.join(', ') : '');
  setText(byId('d-meta'), [n.hostname, n.os, n.kernel, 'up ' + duration(n.uptime), 'collected ' + clockTime(n.timestamp)].filter(Boolean).join(' · '));
  // The node's clock was off: its timestamp was replaced by the receive time.
  const skew = byId('d-skew');
  show(skew, Number.isFinite(n.clock_skew_seconds));
  setText(skew, Number.isFinite(n.clock_skew_seconds) ? clockSkew(n.clock_skew_seconds) : '');
  if (skew.title !== SKEW_TITLE) skew.title = SKEW_TITLE;
  renderStatusLine(page, n, online);
  show(body, true);

  renderCpu(n.cpu || {});
  renderMemory(n.memory || {});
  renderTemperatures(n.temperature || {});
  renderKernel(n);
  fillTable(byId('d-disks'), (n.disks || []).map((d) => [d.mount_point, d.device, d.fs_type, byteSize(d.used), byteSize(d.total),
    { t: percent(d.usage_percent), cls: d.usage_percent > HEALTH_LIMIT ? 'hot' : '' }, byteRate(d.read_rate), byteRate(d.write_rate), percent(d.io_util)]));
  fillTable(byId('d-nets'), (n.networks || []).map((i) => [i.interface, i.ip_address || '—', i.status || '—',
    i.speed > 0 ? i.speed + ' Mb/s' : '—', byteRate(i.rx_rate), byteRate(i.tx_rate), String(i.rx_errors + i.tx_errors), String(i.rx_dropped + i.tx_dropped)]));
  renderProcesses(n.processes || [], page.processSort);
}

const TEXT_COLUMNS = ['name', 'user', 'status', 'cmdline', 'pid'];

/** Sorting the process table by its headers. */
export function wireNode(page) {
  byId('d-procs').tHead.addEventListener('click', (e) => {
    const key = e.target.closest('th')?.dataset.k;
    if (!key) return;
    page.processSort = page.processSort.key === key
      ? { key, dir: -page.processSort.dir }
      : { key, dir: TEXT_COLUMNS.includes(key) ? 1 : -1 };
    if (page.node) renderNode(page);
  });
}
