// The node page's trend charts: SVG drawn here, one request per range at a time.

import { getJson } from './api.js';
import { byId, setClass, setText, show } from './dom.js';
import { byteRate, celsius, chartTime, percent } from './format.js';
import { RANGE_HOURS, navigate } from './route.js';

// Long ranges change slowly: reload their history every this many refreshes.
const SLOW_RANGE_EVERY = 6;

const CHARTS = [
  { id: 'cpu', title: 'CPU', format: percent, max: 100, series: [['cpu_usage', 'busy']] },
  { id: 'memory', title: 'Memory', format: percent, max: 100, series: [['memory_usage', 'used']] },
  { id: 'disk', title: 'Disk usage (/)', format: percent, max: 100, series: [['disk_usage', 'used']] },
  { id: 'diskio', title: 'Disk IO', format: byteRate, series: [['disk_io_read', 'read'], ['disk_io_write', 'write']] },
  { id: 'network', title: 'Network', format: byteRate, series: [['network_rx', 'in'], ['network_tx', 'out']] },
  { id: 'temperature', title: 'CPU temperature', format: celsius, axis: (v) => v.toFixed(0) + '°', series: [['cpu_temp', 'cpu']] },
];
const SVG_NAMESPACE = 'http://www.w3.org/2000/svg';
/** Chart height and plot margins, in SVG pixels. */
const PLOT = { height: 150, left: 56, right: 8, top: 6, bottom: 18 };

/** The trend state a page starts with: nothing loaded. */
export function emptyTrend() {
  // key: cluster, node and range shown; age: refreshes since the last load; loadingKey: the key
  // being loaded; series: { points, start, end } of the last load.
  return { key: '', age: 0, loadingKey: null, series: null };
}

function svgElement(name, attrs, parent) {
  const e = document.createElementNS(SVG_NAMESPACE, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.append(e);
  return e;
}

function buildCharts(page) {
  const box = byId('charts');
  if (box.children.length) return;
  for (const chart of CHARTS) {
    const div = document.createElement('div');
    div.className = 'chart';
    div.dataset.chart = chart.id;
    const h4 = document.createElement('h4');
    h4.append(chart.title);
    chart.series.forEach(([, label], i) => {
      const s = document.createElement('span');
      s.className = 'k' + i;
      s.textContent = '— ' + label;
      h4.append(s);
    });
    const value = document.createElement('span');
    value.className = 'v';
    h4.append(value);
    const svg = svgElement('svg', { role: 'img', 'aria-label': chart.title + ' trend' });
    const message = document.createElement('div');
    message.className = 'msg';
    div.append(h4, svg, message);
    box.append(div);
    chart.el = { div, svg, message, value };
    svg.addEventListener('mousemove', (e) => { chart.pointer = e.clientX; hover(page, chart, e.clientX); });
    svg.addEventListener('mouseleave', () => { chart.pointer = null; hover(page, chart, null); });
  }
}

// Points of a series response: an array of MetricsDataPoint, or an object holding one.
function seriesPoints(body) {
  if (Array.isArray(body)) return body;
  for (const k of ['data', 'points', 'series']) if (body && Array.isArray(body[k])) return body[k];
  return [];
}

function seriesUrl(page) {
  const c = encodeURIComponent(page.clusterId), n = encodeURIComponent(page.nodeName);
  // v2: every figure of each point in one answer (v3 asks one metric per request).
  if (page.range === '1h') return '/api/v2/observe/metrics/nodes/' + n + '/series?cluster_id=' + c + '&minutes=60&format=v2';
  return '/api/v2/clusters/' + c + '/node-metrics/' + n + '/history?hours=' + RANGE_HOURS[page.range];
}

/**
 * Loads and draws the trends of the open node in `page.range`: at once when the node or range
 * changed or `force`, otherwise on the refreshes due for the range.
 */
export async function refreshCharts(page, force) {
  const trend = page.trend;
  buildCharts(page);
  for (const b of byId('ranges').children) setClass(b, b.dataset.r === page.range ? 'on' : '');
  const key = page.clusterId + '\n' + page.nodeName + '\n' + page.range;
  const fresh = key !== trend.key;
  // One request per chart range at a time: a slow agent (up to the master's detail timeout)
  // must not hold up the overview refresh, nor pile up requests.
  if (!fresh && trend.loadingKey === key) return;
  if (!fresh && !force && page.range !== '1h' && ++trend.age < SLOW_RANGE_EVERY) return;
  trend.age = 0;
  trend.loadingKey = key;
  if (fresh) {
    trend.key = key;
    trend.series = null;
    for (const chart of CHARTS) chartMessage(chart, 'Loading…', false);
    chartNote('', false);
  }
  const url = seriesUrl(page);
  try {
    await loadSeries(page, key, url);
  } finally {
    if (trend.loadingKey === key) trend.loadingKey = null;
  }
}

async function loadSeries(page, key, url) {
  const trend = page.trend;
  try {
    const body = await getJson(url);
    if (key !== trend.key) return;
    const points = seriesPoints(body).map((p) => ({ p, t: Date.parse(p.timestamp) })).filter((x) => Number.isFinite(x.t));
    points.sort((a, b) => a.t - b.t);
    const end = Date.parse(body.end) || Date.now();
    const start = Date.parse(body.start) || end - RANGE_HOURS[page.range] * 3600e3;
    trend.series = { points, start, end };
    chartNote(page.range === '1h' ? 'high resolution, from the agent' : 'stored history, one point per 5 min or coarser', false);
    drawCharts(page);
  } catch (err) {
    if (key !== trend.key) return;
    if (trend.series && err.status !== 504) {
      chartNote('Could not refresh: ' + err.message, true);
      return;
    }
    trend.series = null;
    let text = err.message, note = '';
    if (err.status === 504 || (page.range === '1h' && err.status === 503)) {
      text = 'The agent did not answer.';
      note = 'The agent of cluster ' + page.clusterId + ' did not answer (offline?): the 1 h high-resolution series comes from the agent. 24 h and longer ranges are stored by the master.';
    } else if (err.status === 404) {
      text = 'No history for this node.';
      note = err.message;
    }
    for (const chart of CHARTS) chartMessage(chart, text, true);
    chartNote(note, true);
  }
}

function chartNote(text, isError) {
  const el = byId('chart-note');
  setText(el, text);
  setClass(el, isError ? 'muted err' : 'muted');
}

function chartMessage(chart, text, isError) {
  const { message, svg, value } = chart.el;
  show(message, !!text);
  setText(message, text || '');
  setClass(message, isError ? 'msg err' : 'msg');
  if (text) {
    svg.textContent = '';
    svg.dataset.points = '0';
    setText(value, '');
  }
}

function drawCharts(page) {
  if (!page.trend.series) return;
  for (const chart of CHARTS) drawChart(page, chart);
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function drawChart(page, chart) {
  const { points, start, end } = page.trend.series;
  const { svg } = chart.el;
  if (!points.length) { chartMessage(chart, 'No data points in this range yet.', false); return; }
  chartMessage(chart, '', false);
  const w = Math.max(200, svg.clientWidth || 400);
  const h = PLOT.height;
  const t0 = Math.min(start, points[0].t), t1 = Math.max(end, points[points.length - 1].t);
  let max = chart.max || 0;
  if (!chart.max) for (const x of points) for (const [f] of chart.series) max = Math.max(max, x.p[f] || 0);
  max = chart.max || niceMax(max * 1.05);
  const xOf = (t) => PLOT.left + (t - t0) / Math.max(1, t1 - t0) * (w - PLOT.left - PLOT.right);
  const yOf = (v) => PLOT.top + (1 - Math.max(0, Math.min(v, max)) / max) * (h - PLOT.top - PLOT.bottom);
  // A gap longer than three typical steps breaks the line (the node or the agent was away).
  const steps = [];
  for (let i = 1; i < points.length && i < 200; i++) steps.push(points[i].t - points[i - 1].t);
  steps.sort((a, b) => a - b);
  const gap = steps.length ? Math.max(steps[steps.length >> 1] * 3, 1000) : Infinity;

  svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
  svg.textContent = '';
  const withDate = RANGE_HOURS[page.range] >= 24;
  for (const f of [0, 0.5, 1]) {
    const y = yOf(max * f);
    svgElement('line', { class: 'ax', x1: PLOT.left, x2: w - PLOT.right, y1: y, y2: y }, svg);
    svgElement('text', { x: PLOT.left - 4, y: y + 3, 'text-anchor': 'end' }, svg).textContent = (chart.axis || chart.format)(max * f);
  }
  const ticks = w > 520 ? 4 : 2;
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + (t1 - t0) * i / ticks;
    const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
    svgElement('text', { x: xOf(t), y: h - 4, 'text-anchor': anchor }, svg).textContent = chartTime(t, withDate);
  }
  chart.series.forEach(([f], i) => {
    const d = [];
    let prev = -Infinity;
    for (const x of points) {
      const v = x.p[f];
      if (!Number.isFinite(v)) { prev = -Infinity; continue; }
      d.push((x.t - prev > gap ? 'M' : 'L') + xOf(x.t).toFixed(1) + ' ' + yOf(v).toFixed(1));
      prev = x.t;
    }
    svgElement('path', { class: 'line s' + i, d: d.join(''), 'data-series': f }, svg);
  });
  chart.cross = svgElement('line', { class: 'cross', y1: PLOT.top, y2: h - PLOT.bottom, visibility: 'hidden' }, svg);
  chart.plot = { xOf, t0, t1, width: w };
  svg.dataset.points = String(points.length);
  hover(page, chart, chart.pointer ?? null); // a redraw keeps the crosshair where the pointer is
}

// Shows the value under the pointer (clientX), or the latest value when the pointer is away.
function hover(page, chart, clientX) {
  const series = page.trend.series;
  if (!series || !series.points.length || !chart.cross) return;
  const points = series.points;
  let i = points.length - 1;
  if (clientX != null) {
    const { xOf, t0, t1, width } = chart.plot;
    const r = chart.el.svg.getBoundingClientRect();
    const x = (clientX - r.left) / r.width * width;
    const t = t0 + (x - PLOT.left) / (width - PLOT.left - PLOT.right) * (t1 - t0);
    let lo = 0, hi = points.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (points[mid].t < t) lo = mid + 1; else hi = mid; }
    i = lo > 0 && t - points[lo - 1].t < points[lo].t - t ? lo - 1 : lo;
    const cx = xOf(points[i].t).toFixed(1);
    chart.cross.setAttribute('x1', cx); chart.cross.setAttribute('x2', cx);
    chart.cross.setAttribute('visibility', 'visible');
  } else {
    chart.cross.setAttribute('visibility', 'hidden');
  }
  const p = points[i].p;
  setText(chart.el.value, chart.series.map(([f, label]) => (chart.series.length > 1 ? label + ' ' : '') + chart.format(p[f])).join(' · ') +
    ' at ' + chartTime(points[i].t, RANGE_HOURS[page.range] >= 24));
}

/** The range buttons, and redrawing at the new width after a resize. */
export function wireCharts(page) {
  byId('ranges').addEventListener('click', (e) => {
    const range = e.target.closest('button')?.dataset.r;
    if (range && range !== page.range) navigate(page.clusterId, page.nodeName, range);
  });
  let resizeTimer = 0;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => drawCharts(page), 150); });
}
