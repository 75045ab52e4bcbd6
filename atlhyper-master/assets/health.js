// When a node counts as online and as healthy, the same on the overview and the node page.

/** Percent: a node is unhealthy when CPU, memory or any disk is above it. */
export const HEALTH_LIMIT = 90;

/** Why a node snapshot is unhealthy: one line per figure above HEALTH_LIMIT (empty: healthy). */
export function unhealthyReasons(node) {
  const out = [];
  const over = (v) => Number.isFinite(v) && v > HEALTH_LIMIT;
  const cpu = node.cpu?.usage_percent, mem = node.memory?.usage_percent;
  if (over(cpu)) out.push('CPU ' + cpu.toFixed(1) + '% > ' + HEALTH_LIMIT + '%');
  if (over(mem)) out.push('memory ' + mem.toFixed(1) + '% > ' + HEALTH_LIMIT + '%');
  for (const d of node.disks || []) {
    if (over(d.usage_percent)) out.push('disk ' + (d.mount_point || d.device) + ' ' + d.usage_percent.toFixed(1) + '% > ' + HEALTH_LIMIT + '%');
  }
  return out;
}

/** Whether a node snapshot is within HEALTH_LIMIT. */
export function isHealthy(node) { return unhealthyReasons(node).length === 0; }

/** Whether the cluster overview (`node_status`) does not mark `nodeName` offline. */
export function isOnline(overview, nodeName) {
  const status = overview && overview.node_status ? overview.node_status[nodeName] : null;
  return !status || status.state !== 'offline';
}
