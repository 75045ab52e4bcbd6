// Time-series charts in SVG, shared by every page. A chart draws series of
// [time_ms, min, avg, max] points: the avg as a line, min..max as a band where they differ, a
// break where a step is missing (never a 0). Charts of one group share the time axis, the
// crosshair and its values, and a drag-to-zoom view with a reset button.

import { setText, show } from './dom.js';
import { axisScale, formatValue, timeLabel, timeZoneName, timeZoneOffsetLabel } from './format.js';

const SVG_NAMESPACE = 'http://www.w3.org/2000/svg';
/** Chart height and plot margins, in SVG pixels. */
const PLOT = { height: 160, left: 44, right: 10, top: 16, bottom: 20 };
/** Series colours (CSS classes c0..c7); more devices than this reuse them. */
const COLOURS = 8;
/** Narrowest drag, in pixels, that zooms (a shorter one is a click). */
const MIN_DRAG_PX = 8;
/** Time-axis steps, ms: the first that gives no more labels than fit. */
const TIME_STEPS = [1, 2, 5, 10, 15, 30].map((s) => s * 1e3)
  .concat([1, 2, 5, 10, 15, 30].map((m) => m * 60e3))
  .concat([1, 2, 3, 6, 12].map((h) => h * 3600e3))
  .concat([1, 2, 3, 7, 14, 30, 61, 91, 182].map((d) => d * 86400e3));

function svgElement(name, attrs, parent) {
  const e = document.createElementNS(SVG_NAMESPACE, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.append(e);
  return e;
}

function element(tag, className, parent) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (parent) parent.append(e);
  return e;
}

// ---------- scales ----------

/** A 1-2-5 step (times a power of ten) that cuts `span` into at most about `count` parts. */
export function niceStep(span, count) {
  if (!(span > 0)) return 1;
  const raw = span / Math.max(1, count);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** Ticks on a 1-2-5 step covering [lo, hi]; the domain is widened to whole steps. */
export function valueTicks(lo, hi, count) {
  if (!(hi > lo)) hi = lo + 1;
  const step = niceStep(hi - lo, count);
  const a = Math.floor(lo / step + 1e-9) * step, b = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let i = 0; a + i * step <= b + step * 1e-9; i++) ticks.push(a + i * step);
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return { lo: a, hi: b, ticks, decimals };
}

/** Time ticks between t0 and t1 (ms) at a round step in the chosen time zone. */
function timeTicks(t0, t1, maxTicks) {
  const span = t1 - t0;
  // Past four days the labels are dates: at least a day between ticks (see xtWidth).
  const minStep = span > 4 * 86400e3 ? 86400e3 : 0;
  const step = TIME_STEPS.find((s) => s >= minStep && span / s <= maxTicks) || TIME_STEPS[TIME_STEPS.length - 1];
  const ticks = [];
  // Align to the step in the zone shown: local midnight, not UTC midnight, for a day step.
  const offset = timeZoneName() === 'UTC' ? 0 : -new Date(t0).getTimezoneOffset() * 60e3;
  for (let t = Math.ceil((t0 + offset) / step) * step - offset; t <= t1; t += step) ticks.push(t);
  return { ticks, withDate: span > 86400e3 || step >= 86400e3, dateOnly: step >= 86400e3 };
}

// ---------- data ----------

/** Index of the first time >= t in an ascending array. */
function lowerBound(ts, t) {
  let lo = 0, hi = ts.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (ts[mid] < t) lo = mid + 1; else hi = mid; }
  return lo;
}

/** The median gap between points, ms (the step when the source does not say it). */
function medianStep(series) {
  const gaps = [];
  for (const s of series) for (let i = 1; i < s.ts.length && gaps.length < 400; i++) gaps.push(s.ts[i] - s.ts[i - 1]);
  gaps.sort((a, b) => a - b);
  return gaps.length ? gaps[gaps.length >> 1] : 0;
}

/**
 * A chart's data from `{ series: [{ device, label?, points: [[ts_ms, min, avg, max]] }], step? (s) }`:
 * sorted columns per series; non-finite values and nulls are missing steps.
 */
function prepare(data) {
  const series = (data.series || []).map((s) => {
    const rows = (s.points || []).filter((p) => Array.isArray(p) && Number.isFinite(p[0]) && Number.isFinite(p[2]));
    rows.sort((a, b) => a[0] - b[0]);
    const col = (i) => rows.map((p) => (Number.isFinite(p[i]) ? p[i] : p[2]));
    const ts = rows.map((p) => p[0]), min = col(1), avg = col(2), max = col(3);
    return { device: s.device || '', label: s.label || s.device || '', ts, min, avg, max,
      band: min.some((v, i) => v !== max[i]) };
  });
  const stepMs = data.step > 0 ? data.step * 1000 : medianStep(series);
  return { series, stepMs, from: data.from, to: data.to };
}

// ---------- groups ----------

/**
 * A set of charts that share the time axis, crosshair and zoom. `resetButton` is shown while
 * zoomed; `onZoom(view)` hears every zoom and reset (view null).
 */
export function createChartGroup({ resetButton, onZoom } = {}) {
  const group = { charts: [], view: null, hoverT: null, resetButton, onZoom: onZoom || (() => {}) };
  if (resetButton) {
    show(resetButton, false);
    resetButton.addEventListener('click', () => zoomTo(group, null));
  }
  return group;
}

/** Zooms every chart of the group to [t0, t1] (null: back to the data's extent). */
export function zoomTo(group, view) {
  group.view = view;
  if (group.resetButton) show(group.resetButton, !!view);
  drawGroup(group);
  group.onZoom(view);
}

/** The time extent the group draws: the zoom, else every chart's data within its range. */
function groupDomain(group) {
  if (group.view) return group.view;
  let t0 = Infinity, t1 = -Infinity;
  for (const c of group.charts) {
    if (!c.data) continue;
    for (const s of c.data.series) {
      if (!s.ts.length) continue;
      t0 = Math.min(t0, s.ts[0]); t1 = Math.max(t1, s.ts[s.ts.length - 1]);
    }
  }
  if (!(t1 >= t0)) return null;
  // One point (a node reporting for the first time) gets a step of room either side.
  if (t1 === t0) { const pad = Math.max(60e3, ...group.charts.map((c) => (c.data ? c.data.stepMs : 0))); t0 -= pad; t1 += pad; }
  return [t0, t1];
}

/**
 * Adds a chart to `parent`: `spec` = { id, title, unit, stacked?, emptyText? }. Returns the
 * chart; give it data with `setChartData`.
 */
export function addChart(group, parent, spec) {
  const div = element('div', 'chart', parent);
  div.dataset.chart = spec.id;
  const head = element('h4', '', div);
  head.append(spec.title);
  const value = element('span', 'v', head);
  const legend = element('div', 'legend', div);
  legend.setAttribute('role', 'group');
  legend.setAttribute('aria-label', spec.title + ' series');
  const svg = svgElement('svg', { role: 'img', 'aria-label': spec.title + ' trend', tabindex: '0', class: 'plot' }, div);
  const tip = element('div', 'tip', div);
  tip.hidden = true;
  const message = element('div', 'msg', div);
  const chart = { group, spec, data: null, hidden: new Set(), el: { div, svg, tip, message, value, legend }, plot: null };
  group.charts.push(chart);
  wirePointer(chart);
  legend.addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    const d = b.dataset.device;
    if (chart.hidden.has(d)) chart.hidden.delete(d); else chart.hidden.add(d);
    drawChart(chart, groupDomain(group));
  });
  return chart;
}

/** Gives a chart its data (see `prepare`) and redraws the group; null clears it. */
export function setChartData(chart, data) {
  chart.data = data ? prepare(data) : null;
  chartMessage(chart, '', false);
  drawGroup(chart.group);
}

/** Shows a message over a chart instead of its plot ('' removes it). */
export function chartMessage(chart, text, isError) {
  const { message, svg, value, legend } = chart.el;
  show(message, !!text);
  setText(message, text || '');
  message.className = isError ? 'msg err' : 'msg';
  if (text) {
    chart.data = null;
    svg.textContent = '';
    svg.dataset.points = '0';
    legend.textContent = '';
    delete legend.dataset.key;
    setText(value, '');
  }
}

/** Redraws every chart of the group (after new data, a resize, a zoom or a time-zone switch). */
export function drawGroup(group) {
  const domain = groupDomain(group);
  for (const c of group.charts) drawChart(c, domain);
}

/** Removes these charts from the group and the page. */
export function removeCharts(group, charts) {
  for (const c of charts) c.el.div.remove();
  group.charts = group.charts.filter((c) => !charts.includes(c));
}

// ---------- drawing ----------

function visibleSeries(chart) {
  return chart.data.series.filter((s) => !chart.hidden.has(s.device));
}

/** For stacked charts: each series' avg raised by the visible ones below it, per time. */
function stackedColumns(series) {
  const base = new Map();
  return series.map((s) => {
    const lo = [], hi = [];
    s.ts.forEach((t, i) => {
      const b = base.get(t) || 0;
      lo.push(b); hi.push(b + s.avg[i]);
      base.set(t, b + s.avg[i]);
    });
    return { ...s, lo, hi };
  });
}

/** Runs of consecutive points (no step missing between them) as [start, end) index pairs. */
function runs(ts, stepMs) {
  const out = [];
  let start = 0;
  for (let i = 1; i <= ts.length; i++) {
    if (i === ts.length || ts[i] - ts[i - 1] > stepMs * 1.5) { out.push([start, i]); start = i; }
  }
  return out;
}

function renderLegend(chart) {
  const { legend } = chart.el;
  const series = chart.data.series;
  const named = series.length > 1 || (series[0] && series[0].device);
  show(legend, !!named);
  const key = series.map((s) => s.device).join('\n');
  if (legend.dataset.key !== key) {
    legend.textContent = '';
    legend.dataset.key = key;
    series.forEach((s, i) => {
      const b = element('button', 'c' + (i % COLOURS), legend);
      b.type = 'button';
      b.dataset.device = s.device;
      b.textContent = s.label;
    });
  }
  for (const b of legend.children) b.setAttribute('aria-pressed', String(!chart.hidden.has(b.dataset.device)));
}

function drawChart(chart, domain) {
  const { svg } = chart.el;
  if (!chart.data) return;
  const all = chart.data.series;
  if (!all.some((s) => s.ts.length) || !domain) {
    chartMessage(chart, chart.spec.emptyText || 'No data points in this range yet.', false);
    return;
  }
  renderLegend(chart);
  const w = Math.max(200, svg.clientWidth || 400), h = PLOT.height;
  const [t0, t1] = domain;
  const stepMs = chart.data.stepMs || (t1 - t0) / 100;
  const shown = visibleSeries(chart);
  const stacked = chart.spec.stacked ? stackedColumns(shown) : null;
  // Value range of what is on screen.
  let lo = Infinity, hi = -Infinity;
  (stacked || shown).forEach((s) => {
    const a = lowerBound(s.ts, t0), b = lowerBound(s.ts, t1 + 1);
    for (let i = a; i < b; i++) {
      lo = Math.min(lo, stacked ? s.lo[i] : s.min[i]);
      hi = Math.max(hi, stacked ? s.hi[i] : s.max[i]);
    }
  });
  if (!(hi >= lo)) { lo = 0; hi = 1; }
  const unit = chart.spec.unit || '';
  // Amounts start at 0; temperatures show their own band.
  if (unit !== '°C') lo = Math.min(lo, 0);
  if (unit === '%' && hi <= 100 && hi > 50) hi = 100;
  const scale = axisScale(unit, Math.max(Math.abs(lo), Math.abs(hi)));
  const yt = valueTicks(lo / scale.div, hi / scale.div, 4);
  const yLo = yt.lo * scale.div, yHi = yt.hi * scale.div;
  const plotW = w - PLOT.left - PLOT.right, plotH = h - PLOT.top - PLOT.bottom;
  const xOf = (t) => PLOT.left + (t - t0) / Math.max(1, t1 - t0) * plotW;
  const yOf = (v) => PLOT.top + (1 - (v - yLo) / (yHi - yLo)) * plotH;
  const f1 = (v) => v.toFixed(1);

  svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
  svg.textContent = '';
  svgElement('text', { class: 'unit', x: 2, y: 10 }, svg).textContent = scale.label;
  for (const v of yt.ticks) {
    const y = f1(yOf(v * scale.div));
    svgElement('line', { class: 'ax', x1: PLOT.left, x2: w - PLOT.right, y1: y, y2: y }, svg);
    svgElement('text', { class: 'yt', x: PLOT.left - 4, y: Number(y) + 3, 'text-anchor': 'end' }, svg).textContent = v.toFixed(yt.decimals);
  }
  const xt = timeTicks(t0, t1, Math.max(2, Math.floor(plotW / (xtWidth(t1 - t0)))));
  for (const t of xt.ticks) {
    const x = xOf(t);
    const anchor = x < PLOT.left + 30 ? 'start' : x > w - PLOT.right - 30 ? 'end' : 'middle';
    svgElement('text', { class: 'xt', x: f1(x), y: h - 5, 'text-anchor': anchor }, svg).textContent = timeLabel(t, xt.withDate, xt.dateOnly);
  }
  const clip = 'clip-' + chart.spec.id.replace(/[^\w-]/g, '_');
  const defs = svgElement('defs', {}, svg);
  svgElement('rect', { x: PLOT.left, y: 0, width: plotW, height: h - PLOT.bottom }, svgElement('clipPath', { id: clip }, defs));
  const layer = svgElement('g', { 'clip-path': 'url(#' + clip + ')' }, svg);
  let drawn = 0;
  (stacked || shown).forEach((s) => {
    const colour = 'c' + (all.indexOf(all.find((x) => x.device === s.device)) % COLOURS);
    const a = Math.max(0, lowerBound(s.ts, t0) - 1), b = Math.min(s.ts.length, lowerBound(s.ts, t1 + 1) + 1);
    const line = [], area = [];
    for (const [r0, r1] of runs(s.ts.slice(a, b), stepMs)) {
      const i0 = a + r0, i1 = a + r1;
      const top = stacked ? s.hi : s.avg;
      for (let i = i0; i < i1; i++) line.push((i === i0 ? 'M' : 'L') + f1(xOf(s.ts[i])) + ' ' + f1(yOf(top[i])));
      if (i1 - i0 === 1) line.push('h0.1');
      if (stacked || s.band) {
        const upper = stacked ? s.hi : s.max, lower = stacked ? s.lo : s.min;
        const pts = [];
        for (let i = i0; i < i1; i++) pts.push(f1(xOf(s.ts[i])) + ' ' + f1(yOf(upper[i])));
        for (let i = i1 - 1; i >= i0; i--) pts.push(f1(xOf(s.ts[i])) + ' ' + f1(yOf(lower[i])));
        area.push('M' + pts.join('L') + 'Z');
      }
      drawn += i1 - i0;
    }
    if (area.length) svgElement('path', { class: (stacked ? 'stack ' : 'band ') + colour, d: area.join('') }, layer);
    svgElement('path', { class: 'line ' + colour, d: line.join(''), 'data-device': s.device }, layer);
  });
  chart.cross = svgElement('line', { class: 'cross', y1: PLOT.top, y2: h - PLOT.bottom, visibility: 'hidden' }, svg);
  chart.sel = svgElement('rect', { class: 'sel', y: PLOT.top, height: plotH, width: 0, visibility: 'hidden' }, svg);
  chart.plot = { xOf, t0, t1, width: w, plotW, stacked, scale };
  svg.dataset.points = String(drawn);
  // The time window and where it lies, for tests and tools that read the drawing.
  svg.dataset.from = String(Math.round(t0));
  svg.dataset.to = String(Math.round(t1));
  svg.dataset.x0 = String(PLOT.left);
  svg.dataset.x1 = String(w - PLOT.right);
  showHover(chart, chart.group.hoverT);
}

/** Room one time label needs, px: a date and time is wider than either (a span of days is
 * labelled with dates only once a day or more lies between ticks). */
function xtWidth(span) { return span > 4 * 86400e3 ? 56 : span > 86400e3 ? 96 : 64; }

// ---------- crosshair, tooltip, zoom ----------

/** The time under a pointer at clientX, in a drawn chart. */
function timeAt(chart, clientX) {
  const { t0, t1, width, plotW } = chart.plot;
  const r = chart.el.svg.getBoundingClientRect();
  const x = (clientX - r.left) / r.width * width;
  return t0 + (x - PLOT.left) / plotW * (t1 - t0);
}

/** The point time nearest to t among the chart's visible series (null when none is near). */
function nearestTime(chart, t) {
  let best = null;
  for (const s of visibleSeries(chart)) {
    const i = lowerBound(s.ts, t);
    for (const j of [i - 1, i]) {
      if (j >= 0 && j < s.ts.length && (best === null || Math.abs(s.ts[j] - t) < Math.abs(best - t))) best = s.ts[j];
    }
  }
  const near = (chart.data.stepMs || Infinity) * 1.5;
  return best !== null && Math.abs(best - t) <= near ? best : null;
}

/** Moves the crosshair of every chart in the group to time t (null hides it). */
function hoverGroup(group, t, source) {
  group.hoverT = t;
  for (const c of group.charts) showHover(c, t, c === source);
}

function showHover(chart, t, withTip) {
  if (!chart.plot || !chart.data || !chart.cross) return;
  const { tip, value } = chart.el;
  const at = t == null ? null : nearestTime(chart, t);
  const unit = chart.spec.unit || '';
  const head = (rows) => rows.slice(0, 3).map(([s, i]) => (s.label ? s.label + ' ' : '') + (i === null ? '—' : formatValue(s.avg[i], unit))).join(' · ');
  if (at === null || at < chart.plot.t0 || at > chart.plot.t1) {
    chart.cross.setAttribute('visibility', 'hidden');
    tip.hidden = true;
    // Away from the chart the header shows the latest values.
    setText(value, head(visibleSeries(chart).filter((s) => s.ts.length).map((s) => [s, s.ts.length - 1])));
    return;
  }
  const x = chart.plot.xOf(at);
  chart.cross.setAttribute('x1', x.toFixed(1)); chart.cross.setAttribute('x2', x.toFixed(1));
  chart.cross.setAttribute('visibility', 'visible');
  const rows = [];
  let total = 0;
  for (const s of visibleSeries(chart)) {
    const i = lowerBound(s.ts, at);
    if (s.ts[i] !== at) { rows.push([s, null]); continue; }
    rows.push([s, i]);
    total += s.avg[i];
  }
  const show1 = (s, i) => (i === null ? 'no data' : formatValue(s.avg[i], unit) +
    (s.band && s.min[i] !== s.max[i] ? ' (' + formatValue(s.min[i], unit) + ' – ' + formatValue(s.max[i], unit) + ')' : ''));
  setText(value, head(rows));
  if (!withTip) { tip.hidden = true; return; }
  tip.textContent = '';
  tip.dataset.t = String(at);
  element('div', 'when', tip).textContent = timeLabel(at, true, false, true) + ' ' + timeZoneOffsetLabel();
  for (const [s, i] of rows) {
    const r = element('div', 'row', tip);
    r.dataset.device = s.device;
    if (i !== null) r.dataset.avg = String(s.avg[i]);
    const k = element('span', 'k c' + (chart.data.series.indexOf(s) % COLOURS), r);
    k.textContent = s.label || chart.spec.title;
    element('span', '', r).textContent = show1(s, i);
  }
  if (chart.spec.stacked && rows.length > 1) element('div', 'row', tip).textContent = 'total ' + formatValue(total, unit);
  tip.hidden = false;
  // Beside the crosshair, on the side with room.
  const frac = x / chart.plot.width;
  tip.style.left = frac < 0.6 ? 'calc(' + (frac * 100).toFixed(1) + '% + 12px)' : '';
  tip.style.right = frac < 0.6 ? '' : 'calc(' + ((1 - frac) * 100).toFixed(1) + '% + 12px)';
}

function wirePointer(chart) {
  const { svg } = chart.el;
  let dragFrom = null;
  const xIn = (clientX) => {
    const r = svg.getBoundingClientRect();
    return Math.max(PLOT.left, Math.min(chart.plot.width - PLOT.right, (clientX - r.left) / r.width * chart.plot.width));
  };
  svg.addEventListener('pointerdown', (e) => {
    if (!chart.plot || e.button !== 0) return;
    dragFrom = e.clientX;
    svg.setPointerCapture?.(e.pointerId);
  });
  svg.addEventListener('pointermove', (e) => {
    if (!chart.plot) return;
    hoverGroup(chart.group, timeAt(chart, e.clientX), chart);
    if (dragFrom !== null && chart.sel) {
      const a = xIn(dragFrom), b = xIn(e.clientX);
      chart.sel.setAttribute('x', Math.min(a, b).toFixed(1));
      chart.sel.setAttribute('width', Math.abs(b - a).toFixed(1));
      chart.sel.setAttribute('visibility', 'visible');
    }
  });
  svg.addEventListener('pointerup', (e) => {
    if (dragFrom === null || !chart.plot) return;
    const r = svg.getBoundingClientRect();
    const px = Math.abs(e.clientX - dragFrom) * chart.plot.width / Math.max(1, r.width);
    const a = timeAt(chart, Math.min(dragFrom, e.clientX)), b = timeAt(chart, Math.max(dragFrom, e.clientX));
    dragFrom = null;
    if (chart.sel) chart.sel.setAttribute('visibility', 'hidden');
    if (px >= MIN_DRAG_PX) zoomTo(chart.group, [Math.max(a, chart.plot.t0), Math.min(b, chart.plot.t1)]);
  });
  svg.addEventListener('pointerleave', () => { if (dragFrom === null) hoverGroup(chart.group, null, null); });
  // Keyboard: arrows walk the points, + zooms in on the point shown, - or Escape (once the
  // tooltip is closed) resets the zoom.
  svg.addEventListener('keydown', (e) => {
    if (!chart.plot || !chart.data) return;
    if (e.key === 'Escape') {
      if (dismissChart(chart.group)) { e.preventDefault(); e.stopPropagation(); }
      return;
    }
    if (e.key === '-') { if (chart.group.view) { e.preventDefault(); zoomTo(chart.group, null); } return; }
    if (e.key === '+' || e.key === '=') { e.preventDefault(); zoomInAt(chart, chart.group.hoverT); return; }
    const s = visibleSeries(chart).find((x) => x.ts.length);
    if (!s) return;
    let t = chart.group.hoverT;
    const i = t == null ? s.ts.length - 1 : lowerBound(s.ts, t);
    if (e.key === 'ArrowLeft') t = s.ts[Math.max(0, (t == null ? i + 1 : i) - 1)];
    else if (e.key === 'ArrowRight') t = s.ts[Math.min(s.ts.length - 1, s.ts[i] === t ? i + 1 : i)];
    else return;
    e.preventDefault();
    hoverGroup(chart.group, t, chart);
  });
  svg.addEventListener('blur', () => hoverGroup(chart.group, null, null));
}

/** Zooms the group to half the drawn span, centred on time `t` (the middle when null). */
function zoomInAt(chart, t) {
  const { t0, t1 } = chart.plot;
  const half = (t1 - t0) / 4;
  const mid = t == null ? (t0 + t1) / 2 : Math.min(t1 - half, Math.max(t0 + half, t));
  zoomTo(chart.group, [mid - half, mid + half]);
}

/**
 * Escape on a group: closes its tooltip and crosshair when shown, else resets its zoom.
 * Returns whether there was something to close.
 */
export function dismissChart(group) {
  if (group.hoverT != null) { hoverGroup(group, null, null); return true; }
  if (group.view) { zoomTo(group, null); return true; }
  return false;
}

/** Redraws the groups `groups()` names at the new width after a resize. */
export function redrawOnResize(groups) {
  let timer = 0;
  window.addEventListener('resize', () => { clearTimeout(timer); timer = setTimeout(() => groups().forEach(drawGroup), 150); });
}
