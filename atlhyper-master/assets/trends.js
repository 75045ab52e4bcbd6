// The node page's trends: the headline figures (stored history, or the agent's high-resolution
// series for 1 h) and every stored figure from the series route, one range picker for both.

import { getJson } from './api.js';
import { addChart, chartMessage, createChartGroup, dismissChart, drawGroup, redrawOnResize, removeCharts, setChartData } from './charts.js';
import { byId, setClass, setText, show } from './dom.js';
import { timeZoneName, timeZoneOffsetLabel } from './format.js';
import { toggleZone } from './prefs.js';
import { RANGE_HOURS, navigate } from './route.js';
import { eachLimited, lastHours, nodeFigures, nodeSeries } from './series.js';

// Long ranges change slowly: reload them every this many refreshes.
const SLOW_RANGE_EVERY = 6;
/** The stored history route keeps at most this many hours. */
const HISTORY_MAX_HOURS = 720;

/** The headline charts, drawn from MetricsDataPoint fields. */
const HEADLINE = [
  { id: 'cpu', title: 'CPU', unit: '%', fields: [['cpu_usage', 'busy']] },
  { id: 'memory', title: 'Memory', unit: '%', fields: [['memory_usage', 'used']] },
  { id: 'disk', title: 'Disk usage (/)', unit: '%', fields: [['disk_usage', 'used']] },
  { id: 'diskio', title: 'Disk IO', unit: 'B/s', fields: [['disk_io_read', 'read'], ['disk_io_write', 'write']] },
  { id: 'network', title: 'Network', unit: 'B/s', fields: [['network_rx', 'in'], ['network_tx', 'out']] },
  { id: 'load', title: 'Load (1 min)', unit: '', fields: [['load_1', 'load 1']] },
  // A node without sensors reports 0: that is no reading, not a temperature.
  { id: 'temperature', title: 'CPU temperature', unit: '°C', fields: [['cpu_temp', 'cpu']], positive: true,
    emptyText: 'No temperature sensors on this node.' },
];

/** Titles of the stored figures (a figure not named here shows its own name). */
const FIGURE_TITLES = {
  'cpu.usage': 'CPU usage', 'cpu.mode': 'CPU modes', 'cpu.core': 'CPU per core',
  'load.1': 'Load 1 min', 'load.5': 'Load 5 min', 'load.15': 'Load 15 min',
  'memory.usage': 'Memory usage', 'memory.used': 'Memory used', 'memory.available': 'Memory available',
  'memory.cached': 'Page cache', 'memory.buffers': 'Buffers', 'swap.usage': 'Swap usage', 'swap.used': 'Swap used',
  'fs.usage': 'Filesystem usage', 'fs.inodes_usage': 'Inodes used',
  'disk.read_rate': 'Disk read', 'disk.write_rate': 'Disk write', 'disk.read_iops': 'Disk read IOPS',
  'disk.write_iops': 'Disk write IOPS', 'disk.util': 'Disk utilisation',
  'net.rx_rate': 'Network in', 'net.tx_rate': 'Network out', 'net.rx_errors': 'Receive errors',
  'net.tx_errors': 'Transmit errors', 'net.rx_drops': 'Receive drops', 'net.tx_drops': 'Transmit drops',
  temp: 'Temperatures', 'psi.cpu_some': 'CPU pressure (some)', 'psi.memory_some': 'Memory pressure (some)',
  'psi.memory_full': 'Memory pressure (full)', 'psi.io_some': 'I/O pressure (some)', 'psi.io_full': 'I/O pressure (full)',
};
const STACKED = new Set(['cpu.mode']);

/** The trend state a page starts with: nothing loaded. */
export function emptyTrend() {
  // key: cluster, node and range shown; age, figuresAge: refreshes since the last load of the
  // headline charts and of the stored figures; loadingKey: the key
  // being loaded; group: every chart of the page (one crosshair, one zoom); figureCharts: the
  // charts of the stored figures, made for the node and figure list named by figuresKey;
  // window: the zoomed window every chart was asked for ({from, to}, null: the range).
  return { key: '', age: 0, figuresAge: 0, loadingKey: null, loaded: false, window: null, group: null, figureCharts: [], figuresKey: '', byId: new Map() };
}

/** MetricsDataPoint array (or an object holding one) -> chart data per headline chart. */
function headlineData(body, spec) {
  const list = Array.isArray(body) ? body : ['data', 'points', 'series'].map((k) => body && body[k]).find(Array.isArray) || [];
  const rows = list.map((p) => [Date.parse(p.timestamp), p]).filter(([t]) => Number.isFinite(t));
  return {
    series: spec.fields.map(([field, label]) => ({
      device: spec.fields.length > 1 ? label : '',
      label,
      points: rows.filter(([, p]) => Number.isFinite(p[field]) && (!spec.positive || p[field] > 0)).map(([t, p]) => [t, p[field], p[field], p[field]]),
    })),
  };
}

/** The headline query: the range up to now, or the zoomed `window` ({from, to} unix ms). */
function headlineUrl(page, window) {
  const c = encodeURIComponent(page.clusterId), n = encodeURIComponent(page.nodeName);
  // v2: every figure of each point in one answer (v3 asks one metric per request).
  if (page.range === '1h') {
    const span = window ? '&since=' + new Date(window.from).toISOString() + '&until=' + new Date(window.to).toISOString() : '&minutes=60';
    return '/api/v2/observe/metrics/nodes/' + n + '/series?cluster_id=' + c + span + '&format=v2';
  }
  const span = window ? 'from=' + Math.floor(window.from) + '&to=' + Math.ceil(window.to) : 'hours=' + Math.min(HISTORY_MAX_HOURS, RANGE_HOURS[page.range]);
  return '/api/v2/clusters/' + c + '/node-metrics/' + n + '/history?' + span;
}

function buildHeadline(page) {
  const trend = page.trend;
  if (trend.group) return;
  // A zoom asks every chart's source again for the window, at the finer step it allows (the
  // history route thins long ranges; a zoomed day of a 30-day view gets its 5-minute points).
  trend.group = createChartGroup({ resetButton: byId('zoom-reset'), onZoom: (view) => {
    trend.window = view ? { from: view[0], to: view[1] } : null;
    if (trend.key) { loadHeadline(page, trend.key); loadFigures(page, trend.key, false); }
  } });
  for (const spec of HEADLINE) trend.byId.set(spec.id, addChart(trend.group, byId('charts'), spec));
}

/**
 * Loads and draws the trends of the open node in `page.range`: at once when the node or range
 * changed or `force`, otherwise on the refreshes due for the range.
 */
export async function refreshCharts(page, force) {
  const trend = page.trend;
  buildHeadline(page);
  for (const b of byId('ranges').children) {
    setClass(b, b.dataset.r === page.range ? 'on' : '');
    b.setAttribute('aria-pressed', String(b.dataset.r === page.range));
  }
  renderZoneButton();
  const key = page.clusterId + '\n' + page.nodeName + '\n' + page.range;
  const fresh = key !== trend.key;
  // One load per range at a time: a slow agent (up to the master's detail timeout) must not
  // hold up the overview refresh, nor pile up requests.
  if (!fresh && trend.loadingKey === key) return;
  // The stored figures move at the stored 5-minute pace, whatever the range.
  const figuresDue = fresh || force || ++trend.figuresAge >= SLOW_RANGE_EVERY;
  if (!fresh && !force && page.range !== '1h' && ++trend.age < SLOW_RANGE_EVERY) return;
  trend.age = 0;
  if (figuresDue) trend.figuresAge = 0;
  trend.loadingKey = key;
  if (fresh) {
    trend.key = key;
    trend.loaded = false;
    trend.window = null;
    trend.group.view = null; // a new place starts unzoomed (no zoom event: its load follows)
    show(byId('zoom-reset'), false);
    for (const chart of trend.group.charts) chartMessage(chart, 'Loading…', false);
    chartNote('', false);
  }
  try {
    await Promise.all([loadHeadline(page, key), figuresDue ? loadFigures(page, key, fresh) : null]);
  } finally {
    if (trend.loadingKey === key) trend.loadingKey = null;
  }
}

async function loadHeadline(page, key) {
  const trend = page.trend;
  const window = trend.window;
  try {
    const body = await getJson(headlineUrl(page, window));
    // A newer zoom or reset asked again: its answer draws.
    if (key !== trend.key || window !== trend.window) return;
    for (const spec of HEADLINE) setChartData(trend.byId.get(spec.id), headlineData(body, spec));
    trend.loaded = true;
    const capped = RANGE_HOURS[page.range] > HISTORY_MAX_HOURS;
    chartNote(page.range === '1h' ? 'high resolution, from the agent'
      : 'stored history, one point per 5 min or coarser' + (capped ? '; kept 30 days, so 30 days are shown' : ''), false);
  } catch (err) {
    if (key !== trend.key || window !== trend.window) return;
    if (trend.loaded && err.status !== 504) {
      chartNote('Could not refresh: ' + err.message, true);
      return;
    }
    let text = err.message, note = '';
    if (err.status === 504 || (page.range === '1h' && err.status === 503)) {
      text = 'The agent did not answer.';
      note = 'The agent of cluster ' + page.clusterId + ' did not answer (offline?): the 1 h high-resolution series comes from the agent. 6 h and longer ranges are stored by the master.';
    } else if (err.status === 404) {
      text = 'No history for this node.';
      note = err.message;
    }
    for (const spec of HEADLINE) chartMessage(trend.byId.get(spec.id), text, true);
    chartNote(note, true);
  }
}

// ---------- every stored figure (the series route) ----------

function figuresNote(text, isError) {
  const el = byId('series-note');
  setText(el, text);
  setClass(el, isError ? 'muted err' : 'muted');
}

async function loadFigures(page, key, fresh) {
  const trend = page.trend;
  const nodeKey = page.clusterId + '\n' + page.nodeName;
  let list;
  try {
    list = await nodeFigures(page.clusterId, page.nodeName);
  } catch (err) {
    if (key !== trend.key) return;
    removeCharts(trend.group, trend.figureCharts);
    trend.figureCharts = [];
    trend.figuresKey = '';
    figuresNote(err.status === 404 ? 'No stored series yet: this master keeps no per-figure history for this node.' : 'Could not load the stored series: ' + err.message, err.status !== 404);
    return;
  }
  if (key !== trend.key) return;
  const figures = (list && Array.isArray(list.figures) ? list.figures : []).filter((f) => f && typeof f.figure === 'string');
  const stored = figures.length;
  if (!figures.some((f) => f.figure === 'temp')) figures.push({ figure: 'temp', unit: '°C', devices: [] });
  const group = trend.group;
  const figureKey = nodeKey + '\n' + figures.map((f) => f.figure).join(',');
  if (trend.figuresKey !== figureKey) {
    removeCharts(group, trend.figureCharts);
    trend.figuresKey = figureKey;
    trend.figureCharts = figures.map((f) => addChart(group, byId('series-charts'), { id: 'f-' + f.figure, title: FIGURE_TITLES[f.figure] || f.figure, unit: f.unit || '',
        stacked: STACKED.has(f.figure), emptyText: f.figure === 'temp' ? 'No temperature sensors on this node.' : '' }));
  }
  const charts = trend.figureCharts;
  if (fresh) for (const c of charts) chartMessage(c, 'Loading…', false);
  figuresNote(stored + ' stored figures, min / avg / max per step', false);
  const window = trend.window || lastHours(RANGE_HOURS[page.range]);
  await eachLimited(figures, 4, async (f, i) => {
    const chart = charts[i];
    if (f.figure === 'temp' && !(f.devices || []).length) { chartMessage(chart, chart.spec.emptyText, false); return; }
    try {
      const body = await nodeSeries(page.clusterId, page.nodeName, f.figure, window);
      if (key !== trend.key) return;
      if (body && body.unit) chart.spec.unit = body.unit;
      setChartData(chart, { series: Array.isArray(body && body.series) ? body.series : [], step: body && body.step });
    } catch (err) {
      if (key === trend.key) chartMessage(chart, err.status === 404 ? 'No stored series yet.' : err.message, err.status !== 404);
    }
  });
}

function chartNote(text, isError) {
  const el = byId('chart-note');
  setText(el, text);
  setClass(el, isError ? 'muted err' : 'muted');
}

function renderZoneButton() {
  for (const b of document.querySelectorAll('.zone-toggle')) {
    setText(b, 'Times: ' + (timeZoneName() === 'UTC' ? 'UTC' : 'local, ' + timeZoneOffsetLabel()));
    b.title = 'Times in ' + timeZoneName() + '; click for ' + (timeZoneName() === 'UTC' ? 'this browser\'s zone' : 'UTC');
  }
}

/** Redraws every chart of the page (after a time-zone switch). */
export function redrawTrends(page, extra) {
  renderZoneButton();
  for (const g of [page.trend.group, ...extra]) if (g) drawGroup(g);
}

/** The range buttons, the time-zone switch and redrawing at the new width after a resize. */
export function wireCharts(page, otherGroups) {
  for (const id of ['ranges', 'cluster-ranges']) {
    byId(id).addEventListener('click', (e) => {
      const range = e.target.closest('button')?.dataset.r;
      if (range && range !== page.range) navigate(page.clusterId, page.nodeName, range);
    });
  }
  for (const b of document.querySelectorAll('.zone-toggle')) {
    b.addEventListener('click', () => { toggleZone(); redrawTrends(page, otherGroups()); });
  }
  renderZoneButton();
  const groups = () => [page.trend.group, ...otherGroups()].filter(Boolean);
  redrawOnResize(groups);
  // Escape anywhere on the page (not in the token prompt): closes a chart tooltip, then the zoom.
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || e.defaultPrevented || e.target.closest?.('dialog')) return;
    for (const g of groups()) if (g.charts.some((c) => c.el.div.offsetParent) && dismissChart(g)) return;
  });
}
