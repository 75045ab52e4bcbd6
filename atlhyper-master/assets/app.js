// atlhyper-rs dashboard: fleet view, cluster overview, node table, node detail and trend charts.
// Plain DOM code, no dependencies, no build step: this entry module owns the page state and the
// refresh loop; fleet.js, overview.js, cluster.js, node.js and trends.js draw from the state
// they are handed, charts.js draws every chart.

import { refreshAlerts, firingSuffix, renderAlertBadges, renderAlertsView, wireAlerts } from './alerts.js';
import { getJson, onUnauthorized, useViewerToken } from './api.js';
import { emptyClusterTrends, refreshClusterTrends } from './cluster.js';
import { byId, setClass, setText, show, syncOptions } from './dom.js';
import { refreshFleet, renderFleet, wireFleet } from './fleet.js';
import { clockTime, timeAgo } from './format.js';
import { renderNode, wireNode } from './node.js';
import { deriveRows, filterAndSort, renderOverview, wireOverview } from './overview.js';
import { applyTheme, cycleTheme, prefs } from './prefs.js';
import { navigate, readRoute } from './route.js';
import { emptyTrend, refreshCharts, wireCharts } from './trends.js';

// Where "interactive within N ms of script" is measured from.
performance.mark('atlhyper:script');
applyTheme();

const REFRESH_MS = 5000;

/** Everything the page shows, handed to the modules that draw it. */
const page = {
  clusters: null, // the cluster list ({clusterId, status, lastSeen, nodeCount, ...}), sorted by id (null until the first answer)
  clusterId: '',
  overview: null, // the selected cluster's overview response
  overviewError: null,
  lastError: null, // the first error of the last refresh
  rows: [], // one per node of `overview`
  shownRows: [], // `rows` filtered and sorted as the table shows them
  nodeSort: { key: 'name', dir: 1 },
  nameFilter: '',
  statusFilter: 'all',
  pageIndex: 0,
  overviewScrollY: 0, // where the overview was left when a node opened
  nodeName: '', // the open node ('' on the overview)
  node: null, // the open node's full snapshot
  nodeError: null,
  processSort: { key: 'cpu_percent', dir: -1 },
  range: '24h',
  trend: emptyTrend(),
  clusterTrends: emptyClusterTrends(),
  fleet: null, // the fleet rows (GET /api/v2/fleet, or built from the summaries)
  fleetSource: '', // 'fleet' or 'summaries'
  fleetError: null,
  view: '', // 'fleet' on the fleet view, 'alerts' on the Alerts view
  alerts: [], // running alerts (GET /api/v2/alerts)
  alertsError: null,
  firingCounts: null, // firing alerts per cluster and node, counted from `alerts`
  alertsNote: null, // the outcome of the last write: { text, isError, askToken }
  alertsTab: 'now', // 'now', 'history' or 'silences'
  alertFilter: { state: 'firing', cluster: '' }, // the Now tab's filters ('' = any)
  alertHistory: [],
  historyError: null,
  silences: [],
  silencesError: null,
  alertWrites: null, // keys of the rows whose write is under way (set by wireAlerts)
  writeRefused: false, // the token may not write (a viewer, or a write was refused): write buttons hidden
  role: null, // the token's role from GET /api/v2/auth/whoami ('viewer', 'operator'; null: not asked yet)
};

// The refresh loop.
let updatedAt = null;
let refreshTimer = null;
let refreshing = false;
let refreshAgain = false;
let firstDataShown = false;

// ---------- viewer token ----------

const TOKEN_PROMPTS = {
  viewer: ['Viewer token required', 'This master asks for a token.'],
  operator: ['Operator token', 'Silencing and expiring silences need an operator token.'],
};

/** Opens the token prompt: `reason` 'viewer' after a 401, 'operator' after a refused write. */
function askForToken(reason) {
  const dialog = byId('token-dialog');
  if (dialog.open) return;
  const [title, why] = TOKEN_PROMPTS[reason] || TOKEN_PROMPTS.viewer;
  setText(byId('token-title'), title);
  setText(byId('token-reason'), why);
  byId('token-input').value = '';
  dialog.showModal();
}

onUnauthorized(() => askForToken('viewer'));
byId('token-form').addEventListener('submit', () => {
  useViewerToken(byId('token-input').value.trim());
  // Another token: it may write what the last one could not.
  page.writeRefused = false;
  page.role = null;
  page.alertsNote = null;
  if (page.view === 'alerts') renderAlertsView(page);
  refreshSoon();
});

// ---------- banner and connection line ----------

function showBanner(text) {
  const el = byId('banner');
  show(el, !!text);
  if (text) setText(el, text);
}

function showConnection(err) {
  const el = byId('conn');
  if (err) {
    setClass(el, 'conn err');
    setText(el, err.status === 401 ? 'Waiting for a token' : 'Disconnected');
  } else {
    setClass(el, 'conn');
    setText(el, 'Updated ' + clockTime(updatedAt));
  }
}

// ---------- cluster picker ----------

function renderClusterPicker() {
  const select = byId('cluster');
  const list = page.clusters || [];
  if (!list.length) {
    select.disabled = true;
    syncOptions(select, [['', page.clusters ? 'No clusters' : 'Loading…']]);
    return;
  }
  select.disabled = false;
  const known = list.some((c) => c.clusterId === page.clusterId);
  syncOptions(select, [['', 'All clusters']].concat(list.map((c) => [c.clusterId,
    c.clusterId + ' · ' + c.nodeCount + (c.nodeCount === 1 ? ' node' : ' nodes') +
    (c.status === 'online' ? '' : ' · agent ' + (c.status || 'offline')) + firingSuffix(page, c.clusterId)])));
  const value = known && page.view !== 'fleet' ? page.clusterId : '';
  if (select.value !== value) select.value = value;
}

byId('cluster').addEventListener('change', (e) => navigate(e.target.value, '', ''));
byId('back').addEventListener('click', () => navigate(page.clusterId, '', page.range));

function renderThemeButton() { setText(byId('theme'), 'Theme: ' + prefs.theme); }
byId('theme').addEventListener('click', () => { cycleTheme(); renderThemeButton(); });
renderThemeButton();

// ---------- routing ----------

function render() {
  renderClusterPicker();
  const alertsOpen = page.view === 'alerts', fleetOpen = page.view === 'fleet';
  const nodeOpen = !alertsOpen && !fleetOpen && !!page.nodeName;
  show(byId('alerts-view'), alertsOpen);
  show(byId('fleet-view'), fleetOpen);
  show(byId('overview'), !alertsOpen && !fleetOpen && !nodeOpen);
  show(byId('detail'), nodeOpen);
  setClass(byId('fleet-link'), fleetOpen ? 'alerts-link on' : 'alerts-link');
  if (alertsOpen) renderAlertsView(page);
  else if (fleetOpen) renderFleet(page);
  else if (nodeOpen) renderNode(page);
  else renderOverview(page);
  renderAlertBadges(page);
}

function followRoute() {
  const route = readRoute();
  page.view = route.view;
  page.alertsNote = null;
  const clusterChanged = route.clusterId !== page.clusterId;
  const nodeChanged = route.nodeName !== page.nodeName;
  if (clusterChanged) { page.clusterId = route.clusterId; page.overview = null; page.pageIndex = 0; }
  const opening = !page.nodeName && route.nodeName, closing = page.nodeName && !route.nodeName;
  if (opening) page.overviewScrollY = window.scrollY;
  page.nodeName = route.nodeName;
  page.range = route.range || '24h';
  if (clusterChanged || nodeChanged) { page.node = null; page.nodeError = null; }
  page.trend.key = '';
  render();
  // The overview comes back where it was left; a detail opens at its top.
  if (opening) window.scrollTo(0, 0);
  if (closing && !clusterChanged) window.scrollTo(0, page.overviewScrollY);
  if (page.clusterId && page.nodeName) refreshCharts(page, true);
  else if (onClusterPage() && clusterKnown()) refreshClusterTrends(page, true);
  refreshSoon();
}

function onClusterPage() { return !!page.clusterId && !page.nodeName && page.view === ''; }

/** Whether the cluster list (once read) names the selected cluster. */
function clusterKnown() { return !page.clusters || page.clusters.some((c) => c.clusterId === page.clusterId); }

function markFirstData() {
  if (firstDataShown) return;
  firstDataShown = true;
  performance.mark('atlhyper:first-data');
  performance.measure('atlhyper:script-to-interactive', 'atlhyper:script', 'atlhyper:first-data');
}

// ---------- refresh loop ----------

async function refresh() {
  const errors = [];
  // The cluster's figures are asked for together with the list, not one round trip after it:
  // most of a first load is waiting for the master.
  const timing = {};
  const wantOverview = page.clusterId && page.view !== 'fleet';
  const overviewRequest = wantOverview
    ? getJson('/api/v2/clusters/' + encodeURIComponent(page.clusterId) + '/node-metrics?view=overview', timing)
    : null;
  // Settled here, so an answer that is never read (an unknown cluster) is no unhandled rejection.
  overviewRequest?.catch(() => {});
  // The list and the fleet go out at once too: a first load waits for the slower answer, not
  // for their sum. The alerts (badges) are asked once these answered, so they do not compete
  // with the page's figures at the master.
  const listRequest = getJson('/api/v2/clusters');
  listRequest.catch(() => {});
  const fleetRequest = page.view === 'fleet' ? refreshFleet(page, listRequest) : null;
  try {
    // The list in the shape the AtlHyper web reads: {clusters: [...], total}.
    const list = await listRequest;
    page.clusters = list && Array.isArray(list.clusters) ? list.clusters : [];
    page.clusters.sort((a, b) => (a.clusterId < b.clusterId ? -1 : 1));
    renderClusterPicker();
  } catch (err) { errors.push(err); }

  if (fleetRequest) {
    await fleetRequest;
    if (!errors.length && page.fleetError) errors.push(page.fleetError);
    else if (!errors.length && page.view === 'fleet') { renderFleet(page); markFirstData(); }
  }

  // An unknown cluster in the URL is not fetched: the page says it is not known.
  if (wantOverview && clusterKnown() && !errors.length) {
    try {
      // The overview form: the same shape without processes, per-core CPU and sensors (the
      // node page fetches the full snapshot of its one node).
      const overview = await overviewRequest;
      const t0 = performance.now();
      page.overview = overview;
      page.overviewError = null;
      deriveRows(page);
      filterAndSort(page);
      if (!page.nodeName) renderOverview(page);
      const ms = timing.parse + performance.now() - t0;
      markFirstData();
      performance.measure('atlhyper:refresh', { start: t0 - timing.parse, duration: ms });
      performance.measure('atlhyper:refresh:parse', { start: t0 - timing.parse, duration: timing.parse });
    } catch (err) {
      page.overviewError = err;
      errors.push(err);
    }
  }

  const alertsRequest = refreshAlerts(page);
  if (onClusterPage() && clusterKnown() && !errors.length) refreshClusterTrends(page, false);

  if (page.clusterId && page.nodeName && page.view === '' && clusterKnown() && !errors.some((e) => e.status === 0 || e.status === 401)) {
    try {
      page.node = await getJson('/api/v2/clusters/' + encodeURIComponent(page.clusterId) + '/node-metrics/' + encodeURIComponent(page.nodeName));
      page.nodeError = null;
    } catch (err) {
      page.nodeError = err;
      if (err.status === 404) page.node = null;
    }
    renderNode(page);
    if (page.node || !page.nodeError || page.nodeError.status !== 404) refreshCharts(page, false);
  }

  const err = errors[0];
  page.lastError = err || null;
  if (err) {
    showConnection(err);
    if (err.status === 0) {
      showBanner('Cannot reach the master.' + (updatedAt ? ' Showing figures from ' + clockTime(updatedAt) + '.' : '') + ' Retrying every ' + REFRESH_MS / 1000 + ' s.');
    } else if (err.status === 401) {
      showBanner('This master needs a viewer token.');
    } else {
      showBanner(err.message);
    }
  } else {
    updatedAt = Date.now();
    showConnection(null);
    const info = (page.clusters || []).find((c) => c.clusterId === page.clusterId);
    showBanner(info && info.status && info.status !== 'online'
      ? 'The agent of cluster ' + page.clusterId + ' is ' + info.status + ' (last heard ' + timeAgo(info.lastSeen) + '): its nodes count as offline. Figures are its last report.'
      : '');
  }
  await alertsRequest;
  renderClusterPicker();
  renderAlertBadges(page);
  if (page.view === 'alerts') renderAlertsView(page);
  else if (page.view === 'fleet') renderFleet(page);
  else if (!page.nodeName) renderOverview(page);
  else renderNode(page);
}

async function refreshLoop() {
  clearTimeout(refreshTimer);
  if (refreshing) { refreshAgain = true; return; }
  refreshing = true;
  try { await refresh(); } finally { refreshing = false; }
  if (refreshAgain) { refreshAgain = false; refreshLoop(); return; }
  refreshTimer = setTimeout(refreshLoop, REFRESH_MS);
}

function refreshSoon() { clearTimeout(refreshTimer); refreshTimer = setTimeout(refreshLoop, 0); }

// ---------- start ----------

{
  const route = readRoute();
  page.clusterId = route.clusterId; page.nodeName = route.nodeName; page.range = route.range || '24h'; page.view = route.view;
  // The first requests go out before the page wires and draws itself: their answers are on the
  // way while it does (they are handled in later tasks, once all of this has run).
  refreshLoop();
}
wireOverview(page);
wireNode(page);
wireFleet();
wireCharts(page, () => [page.clusterTrends.group]);
wireAlerts(page, askForToken);
window.addEventListener('hashchange', followRoute);
render();
