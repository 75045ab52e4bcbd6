// The page's place lives in the URL fragment: #c=<cluster>&n=<node>&r=<range>, or #v=alerts.

/** Chart ranges and their length in hours. */
export const RANGE_HOURS = { '1h': 1, '24h': 24, '7d': 168, '30d': 720 };

/** The place named by the current fragment (empty strings for what it does not name). */
export function readRoute() {
  const p = new URLSearchParams(location.hash.slice(1));
  const view = p.get('v') === 'alerts' ? 'alerts' : '';
  return { clusterId: p.get('c') || '', nodeName: view ? '' : p.get('n') || '', range: RANGE_HOURS[p.get('r')] ? p.get('r') : '', view };
}

/** Goes to a cluster, a node of it (or '' for the overview) and a chart range; or, when `view`
 * is 'alerts', to the Alerts view with that cluster to go back to. */
export function navigate(clusterId, nodeName, range, view) {
  const p = new URLSearchParams();
  if (view === 'alerts') p.set('v', 'alerts');
  if (clusterId) p.set('c', clusterId);
  if (nodeName && view !== 'alerts') p.set('n', nodeName);
  if (nodeName && range && view !== 'alerts') p.set('r', range);
  const h = '#' + p.toString();
  if (location.hash !== h) location.hash = h;
}
