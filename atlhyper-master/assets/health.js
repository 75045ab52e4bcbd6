// When a node counts as online and as healthy, the same on the overview and the node page.

/** Percent: a node is unhealthy when CPU, memory or any disk is above it. */
export const HEALTH_LIMIT = 90;

/** Whether a node snapshot is within HEALTH_LIMIT. */
export function isHealthy(node) {
  const disks = node.disks || [];
  return (node.cpu?.usage_percent ?? 0) <= HEALTH_LIMIT && (node.memory?.usage_percent ?? 0) <= HEALTH_LIMIT &&
    disks.every((d) => d.usage_percent <= HEALTH_LIMIT);
}

/** Whether the cluster overview (`node_status`) does not mark `nodeName` offline. */
export function isOnline(overview, nodeName) {
  const status = overview && overview.node_status ? overview.node_status[nodeName] : null;
  return !status || status.state !== 'offline';
}
