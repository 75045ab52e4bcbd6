// The stored series routes of the master, and the step a range is asked at. A master without
// them (older, or before any series is stored) answers 404: callers show "no stored series yet".

import { getJson } from './api.js';

/** Steps the stored series are asked at, seconds: the first that gives at most MAX_POINTS. */
const STEPS = [300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800];
const MAX_POINTS = 360;

/** The step for a range of `hours` (never finer than the stored 5 minutes). */
export function stepFor(hours) {
  const want = hours * 3600 / MAX_POINTS;
  return STEPS.find((s) => s >= want) || STEPS[STEPS.length - 1];
}

/** The window of the last `hours`, unix ms. */
export function lastHours(hours) {
  const to = Date.now();
  return { from: to - hours * 3600e3, to };
}

/** The query of a window, at the step that fits its length (a zoomed window gets a finer one). */
function rangeQuery(window) {
  const from = Math.floor(window.from), to = Math.ceil(window.to);
  return '&from=' + from + '&to=' + to + '&step=' + stepFor((to - from) / 3600e3);
}

const enc = encodeURIComponent;

/** `{figures: [{figure, unit, devices}]}` of a node. */
export function nodeFigures(clusterId, nodeName) {
  return getJson('/api/v2/clusters/' + enc(clusterId) + '/node-metrics/' + enc(nodeName) + '/series');
}

/** One figure of a node (every device) over a window ({from, to} unix ms). */
export function nodeSeries(clusterId, nodeName, figure, window) {
  return getJson('/api/v2/clusters/' + enc(clusterId) + '/node-metrics/' + enc(nodeName) + '/series?figure=' + enc(figure) +
    rangeQuery(window));
}

/** A cluster-level figure (devices `avg` and `max`) over a window ({from, to} unix ms). */
export function clusterSeries(clusterId, figure, window) {
  return getJson('/api/v2/clusters/' + enc(clusterId) + '/series?figure=' + enc(figure) + rangeQuery(window));
}

/** Runs `task` over `items`, at most `limit` at a time. */
export async function eachLimited(items, limit, task) {
  let next = 0;
  const worker = async () => { while (next < items.length) { const i = next++; await task(items[i], i); } };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
