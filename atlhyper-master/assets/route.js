// The page's place lives in the URL fragment: `#` or `#v=fleet` for every cluster at a glance,
// `#c=<cluster>&r=<range>` for a cluster, `#c=<cluster>&n=<node>&r=<range>` for a node, or
// `#v=alerts`.

/** Chart ranges and their length in hours. */
export const RANGE_HOURS = { '1h': 1, '6h': 6, '24h': 24, '7d': 168, '30d': 720, '1y': 8760 };

/** The place named by the current fragment (empty strings for what it does not name). */
export function readRoute() {
  const p = new URLSearchParams(location.hash.slice(1));
  const clusterId = p.get('c') || '';
  const view = p.get('v') === 'alerts' ? 'alerts' : clusterId ? '' : 'fleet';
  return { clusterId, nodeName: view ? '' : p.get('n') || '', range: RANGE_HOURS[p.get('r')] ? p.get('r') : '', view };
}

/** Goes to a cluster, a node of it (or '' for the cluster page) and a chart range; or, when
 * `view` is 'alerts', to the Alerts view with that cluster to go back to; no cluster: the fleet. */
export function navigate(clusterId, nodeName, range, view) {
  const p = new URLSearchParams();
  if (view === 'alerts') p.set('v', 'alerts');
  else if (!clusterId) p.set('v', 'fleet');
  if (clusterId) p.set('c', clusterId);
  if (nodeName && view !== 'alerts') p.set('n', nodeName);
  if (clusterId && range && view !== 'alerts') p.set('r', range);
  const h = '#' + p.toString();
  if (location.hash !== h) location.hash = h;
}

/** The fragment of a place, for links. */
export function href(clusterId, nodeName) {
  const p = new URLSearchParams();
  if (clusterId) p.set('c', clusterId); else p.set('v', 'fleet');
  if (nodeName) p.set('n', nodeName);
  return '#' + p.toString();
}
