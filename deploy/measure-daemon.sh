#!/usr/bin/env bash
# Measures the release daemon's CPU and RSS over a run, pushing to a real agent every INTERVAL,
# side by side with prometheus-node-exporter (when installed) scraped at the same interval with
# the collectors that cover the same ground (it reads no process), both over the same window.
# usage: deploy/measure-daemon.sh BIN_DIR SECONDS [EXTRA_PROCS] [INTERVAL]
#   cargo build --profile dist -p atlhyper-agent
#   deploy/measure-daemon.sh target/dist 60              # this host as it is, every 5 s
#   deploy/measure-daemon.sh target/dist 60 2000 1s      # 2,000 more (sleeping) processes, every 1 s
# CPU is utime + stime of /proc/PID/stat (all threads, clock ticks): run long enough for many ticks.
set -euo pipefail
bin=$1; secs=$2; extra=${3:-0}; interval=${4:-5s}
ne_bin=/usr/bin/prometheus-node-exporter
pids=(); agent=; daemon=; ne=; scraper=
if [ "$extra" -gt 0 ]; then for i in $(seq "$extra"); do sleep 100000 & pids+=($!); done; fi
trap 'kill ${pids[@]} $agent $daemon $ne $scraper 2>/dev/null || true' EXIT
AGENT_LISTEN=127.0.0.1:18082 AGENT_MASTER_URL=http://127.0.0.1:1 AGENT_NODE_TOKEN=node-token-measure-000 \
  "$bin/atlhyper-agent" >/dev/null 2>&1 & agent=$!
sleep 1
METRICS_AGENT_ADDR=http://127.0.0.1:18082 METRICS_TOKEN=node-token-measure-000 METRICS_NODE_NAME=measure \
  METRICS_LISTEN=127.0.0.1:19101 METRICS_COLLECT_INTERVAL=$interval "$bin/atlhyper-metrics" >/dev/null 2>&1 & daemon=$!
if [ -x "$ne_bin" ]; then
  "$ne_bin" --web.listen-address=127.0.0.1:19100 --collector.disable-defaults --collector.cpu \
    --collector.meminfo --collector.diskstats --collector.filesystem --collector.netdev \
    --collector.loadavg --collector.hwmon --collector.thermal_zone --collector.pressure >/dev/null 2>&1 & ne=$!
  step=${interval%s}
  ( while :; do curl -s --compressed -o /dev/null 127.0.0.1:19100/metrics || true; sleep "$step"; done ) & scraper=$!
fi
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
cycles() { curl -s 127.0.0.1:19101/metrics | awk '/^atlhyper_metrics_cycles_total/{print $2}'; }
sleep 6  # first cycles, start-up
t0=$(ticks $daemon); c0=$(cycles); [ -n "$ne" ] && n0=$(ticks $ne)
sleep "$secs"
t1=$(ticks $daemon); c1=$(cycles); [ -n "$ne" ] && n1=$(ticks $ne)
hz=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/{print $2}' /proc/$daemon/status)
hwm=$(awk '/VmHWM/{print $2}' /proc/$daemon/status)
listed=(/proc/[0-9]*); procs=${#listed[@]}
pushes=$(curl -s 127.0.0.1:19101/metrics | awk '/^atlhyper_metrics_pushes_total/{print $2}')
n=$(echo "$c1 - $c0" | bc)
echo "processes=$procs seconds=$secs interval=$interval cycles=$n cpu_ticks=$((t1-t0)) hz=$hz" \
  "millicores=$(echo "scale=2; ($t1-$t0)*1000/$hz/$secs" | bc)" \
  "ms_per_cycle=$(echo "scale=3; ($t1-$t0)*1000/$hz/$n" | bc) rss_kib=$rss peak_rss_kib=$hwm pushes=$pushes"
if [ -n "$ne" ]; then
  ne_rss=$(awk '/VmRSS/{print $2}' /proc/$ne/status)
  echo "node_exporter cpu_ticks=$((n1-n0)) millicores=$(echo "scale=2; ($n1-$n0)*1000/$hz/$secs" | bc)" \
    "rss_kib=$ne_rss daemon/node_exporter=$(echo "scale=2; ($t1-$t0)/($n1-$n0)" | bc)"
fi
