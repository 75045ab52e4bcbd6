// The cluster page's additions to the overview: cluster-level trends (average and busiest node
// per step, from the stored series) and the busiest nodes right now.

import { addChart, chartMessage, createChartGroup, setChartData } from './charts.js';
import { byId, setClass, setText, show, syncRowCount } from './dom.js';
import { percent } from './format.js';
import { HEALTH_LIMIT } from './health.js';
import { RANGE_HOURS, href } from './route.js';
import { clusterSeries, eachLimited, lastHours } from './series.js';

const CLUSTER_FIGURES = [
  { figure: 'cpu.usage', title: 'CPU', unit: '%' },
  { figure: 'memory.usage', title: 'Memory', unit: '%' },
  { figure: 'fs.usage', title: 'Disk', unit: '%' },
  { figure: 'net.rx_rate', title: 'Network in', unit: 'B/s' },
  { figure: 'net.tx_rate', title: 'Network out', unit: 'B/s' },
];
const SERIES_LABELS = { avg: 'average', max: 'busiest node' };

/**
 * A cluster series as drawn. Each point is [ts, lowest node, mean over nodes, highest node]:
 * of the nodes' averages for `avg` (drawn as the mean in a band from the lowest to the highest
 * node), of the nodes' maxima for `max` (drawn as its highest: the peak of the busiest node).
 */
function clusterLine(s) {
  const points = s.device === 'max' && Array.isArray(s.points)
    ? s.points.map((p) => [p[0], p[3], p[3], p[3]])
    : s.points;
  return { device: s.device, label: SERIES_LABELS[s.device] || s.device, points };
}
/** Reload the trends every this many refreshes (they move at the stored 5-minute pace). */
const RELOAD_EVERY = 12;
/** Rows of each busiest-nodes list. */
const BUSIEST = 5;

/** Cluster-page state: the chart group, what is loaded, and a refresh counter. */
export function emptyClusterTrends() {
  // window: the zoomed window ({from, to} unix ms; null: the range).
  return { group: null, key: '', age: 0, loading: false, window: null };
}

function build(page) {
  const state = page.clusterTrends;
  if (state.group) return;
  // A zoom asks the trends again for the window, at the finer step it allows.
  state.group = createChartGroup({ resetButton: byId('cluster-zoom-reset'), onZoom: (view) => {
    state.window = view ? { from: view[0], to: view[1] } : null;
    if (state.key) refreshClusterTrends(page, true);
  } });
  for (const f of CLUSTER_FIGURES) addChart(state.group, byId('cluster-charts'), { id: 'k-' + f.figure, title: f.title, unit: f.unit });
}

/** Loads the cluster trends of `page.clusterId` over `page.range` when due. */
export async function refreshClusterTrends(page, force) {
  const state = page.clusterTrends;
  build(page);
  for (const b of byId('cluster-ranges').children) {
    setClass(b, b.dataset.r === page.range ? 'on' : '');
    b.setAttribute('aria-pressed', String(b.dataset.r === page.range));
  }
  const key = page.clusterId + '\n' + page.range;
  const fresh = key !== state.key;
  if (state.loading && !fresh) return;
  if (!fresh && !force && ++state.age < RELOAD_EVERY) return;
  state.age = 0;
  state.key = key;
  state.loading = true;
  if (fresh) {
    state.window = null;
    state.group.view = null; // a new place starts unzoomed (no zoom event: its load follows)
    show(byId('cluster-zoom-reset'), false);
    for (const c of state.group.charts) chartMessage(c, 'Loading…', false);
  }
  const window = state.window || lastHours(RANGE_HOURS[page.range]);
  const note = byId('cluster-series-note');
  let missing = 0;
  try {
    await eachLimited(CLUSTER_FIGURES, 3, async (f, i) => {
      const chart = state.group.charts[i];
      try {
        const body = await clusterSeries(page.clusterId, f.figure, window);
        if (state.key !== key) return;
        const series = (Array.isArray(body && body.series) ? body.series : []).map(clusterLine);
        setChartData(chart, { series, step: body && body.step });
      } catch (err) {
        if (state.key !== key) return;
        if (err.status === 404) missing++;
        chartMessage(chart, err.status === 404 ? 'No stored series yet.' : err.message, err.status !== 404);
      }
    });
  } finally {
    state.loading = false;
  }
  if (state.key !== key) return;
  setText(note, missing ? 'No stored series yet: this master keeps no cluster-level history.' : 'average and busiest node per step');
  // Five empty frames say nothing the note does not.
  show(byId('cluster-charts'), missing < CLUSTER_FIGURES.length);
}

/** The busiest online nodes by CPU and by memory, from the latest figures. */
export function renderBusiest(page) {
  const online = page.rows.filter((r) => r.status !== 'offline');
  show(byId('busiest'), online.length > 0);
  for (const [id, key] of [['busy-cpu', 'cpu'], ['busy-mem', 'mem']]) {
    // A partial selection: the top few of a thousand without sorting all of them.
    const top = [];
    for (const r of online) {
      if (top.length < BUSIEST || r[key] > top[top.length - 1][key]) {
        top.push(r);
        top.sort((a, b) => b[key] - a[key] || (a.name < b.name ? -1 : 1));
        if (top.length > BUSIEST) top.pop();
      }
    }
    const tbody = byId(id).tBodies[0];
    syncRowCount(tbody, top.length, 2);
    top.forEach((r, i) => {
      const [name, value] = tbody.rows[i].cells;
      let a = name.firstChild;
      if (!a || a.tagName !== 'A') { name.textContent = ''; a = document.createElement('a'); name.append(a); }
      const link = href(page.clusterId, r.name);
      if (a.getAttribute('href') !== link) a.setAttribute('href', link);
      setText(a, r.name);
      setClass(value, r[key] > HEALTH_LIMIT ? 'num hot' : 'num');
      setText(value, percent(r[key]));
    });
  }
}
