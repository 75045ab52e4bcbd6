#!/usr/bin/env bash
# Measures the release daemon's CPU and RSS over a run, pushing to a real agent every 5 s.
# usage: deploy/measure-daemon.sh BIN_DIR SECONDS [EXTRA_PROCS]
#   cargo build --profile dist -p atlhyper-agent
#   deploy/measure-daemon.sh target/dist 60        # this host as it is
#   deploy/measure-daemon.sh target/dist 60 2000   # with 2,000 more (sleeping) processes
set -euo pipefail
bin=$1; secs=$2; extra=${3:-0}
pids=()
if [ "$extra" -gt 0 ]; then for i in $(seq "$extra"); do sleep 100000 & pids+=($!); done; fi
trap 'kill ${pids[@]} $agent $daemon 2>/dev/null || true' EXIT
AGENT_LISTEN=127.0.0.1:18082 AGENT_MASTER_URL=http://127.0.0.1:1 AGENT_NODE_TOKEN=node-token-measure-000 \
  "$bin/atlhyper-agent" >/dev/null 2>&1 & agent=$!
sleep 1
METRICS_AGENT_ADDR=http://127.0.0.1:18082 METRICS_TOKEN=node-token-measure-000 METRICS_NODE_NAME=measure \
  METRICS_LISTEN=127.0.0.1:19101 "$bin/atlhyper-metrics" >/dev/null 2>&1 & daemon=$!
sleep 6  # first cycles, start-up
t0=$(awk '{print $14+$15}' /proc/$daemon/stat)
sleep "$secs"
t1=$(awk '{print $14+$15}' /proc/$daemon/stat)
hz=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/{print $2}' /proc/$daemon/status)
hwm=$(awk '/VmHWM/{print $2}' /proc/$daemon/status)
procs=$(ls -d /proc/[0-9]* | wc -l)
pushes=$(curl -s 127.0.0.1:19101/metrics | awk '/^atlhyper_metrics_pushes_total/{print $2}')
echo "processes=$procs seconds=$secs cpu_ticks=$((t1-t0)) hz=$hz millicores=$(echo "scale=2; ($t1-$t0)*1000/$hz/$secs" | bc) rss_kib=$rss peak_rss_kib=$hwm pushes=$pushes"
