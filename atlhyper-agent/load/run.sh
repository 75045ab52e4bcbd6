#!/usr/bin/env bash
# Load runs of the agent and the daemon on loopback. Every run is bounded in time.
#
#   BIN=/work/target-bench/release ./run.sh throughput   # wrk, distinct nodes, full ingest path
#   BIN=... ./run.sh latency      # oha at a fixed 2000 requests/s (needs oha on PATH), then
#                                 # wrk throttled to about 2000/s with distinct nodes
#   BIN=... ./run.sh memory       # 1000 nodes until every ring is full, then the agent's RSS
#   BIN=... ./run.sh daemon       # the node daemon for ~2 minutes: CPU and RSS from /proc
#
# Build first: CARGO_TARGET_DIR=/work/target-bench cargo build --release -p atlhyper-agent --bins
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="${BIN:-/work/target-bench/release}"
PORT="${PORT:-28782}"
DURATION="${DURATION:-20s}"
export LOAD_DIR="$HERE"
python3 "$HERE/make_snapshot.py" "$HERE" >/dev/null

agent_pid=""
cleanup() { if [[ -n "$agent_pid" ]]; then kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

start_agent() {
  if ss -ltn "sport = :$PORT" | grep -q LISTEN; then
    echo "port $PORT is taken by another program; set PORT" >&2; exit 1
  fi
  # The master URL points at a closed port: pushes fail and back off (as in an outage).
  AGENT_LOG_LEVEL=error "$BIN/atlhyper-agent" --listen "127.0.0.1:$PORT" \
    --master-url http://127.0.0.1:9 --cluster-id load "$@" &
  agent_pid=$!
  for _ in $(seq 50); do
    if ! kill -0 "$agent_pid" 2>/dev/null; then echo "agent exited" >&2; exit 1; fi
    curl -fs "http://127.0.0.1:$PORT/health" 2>/dev/null | grep -q '"online"' && return 0
    sleep 0.1
  done
  echo "agent did not start" >&2; exit 1
}

rss() { awk '/VmRSS|VmHWM/ {printf "%s %.1f MiB  ", $1, $2/1024} END {print ""}' "/proc/$1/status"; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

case "${1:-}" in
  throughput)
    start_agent
    NODES=1000 THREADS=2 wrk -t2 -c"${CONNS:-64}" -d"$DURATION" -s "$HERE/post.lua" "http://127.0.0.1:$PORT"
    rss "$agent_pid"
    curl -s "http://127.0.0.1:$PORT/metrics" | grep -E 'snapshots_(received|rejected)_total\{' ;;
  latency)
    start_agent
    RATE="${RATE:-2000}"
    oha --no-tui --latency-correction -z "$DURATION" -q "$RATE" -c "${CONNS:-16}" -m POST \
      -H 'Content-Type: application/json' -D "$HERE/snapshot.json" \
      "http://127.0.0.1:$PORT/metrics/node"
    rss "$agent_pid"
    echo "--- the same rate with distinct nodes (wrk, 20 connections each pausing 10 ms):"
    NODES=1000 THREADS=2 DELAY_MS=10 wrk -t2 -c20 -d"$DURATION" -s "$HERE/post.lua" "http://127.0.0.1:$PORT" | grep -E "requests in|Requests/sec|^p[0-9]"
    ;;
  memory)
    start_agent --ring-capacity 720
    rss "$agent_pid"
    # 1000 nodes x 720 points = 720,000 snapshots fill every ring; run until at least that many.
    NODES=1000 THREADS=2 wrk -t2 -c64 -d"${MEMORY_DURATION:-120s}" -s "$HERE/post.lua" "http://127.0.0.1:$PORT" | grep -E "requests in|Requests/sec"
    curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^atlhyper_agent_(ring_points|nodes)'
    rss "$agent_pid" ;;
  daemon)
    start_agent
    SECS="${SECS:-120}"
    METRICS_LOG_LEVEL=warn METRICS_AGENT_ADDR="127.0.0.1:$PORT" METRICS_NODE_NAME=load-daemon \
      METRICS_COLLECT_INTERVAL=5s "$BIN/atlhyper-metrics" &
    dpid=$!
    sleep 10   # let the first collections and allocations settle
    t0=$(cpu_ticks "$dpid"); s0=$(date +%s.%N)
    sleep "$SECS"
    t1=$(cpu_ticks "$dpid"); s1=$(date +%s.%N)
    hz=$(getconf CLK_TCK)
    awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v hz="$hz" \
      'BEGIN {printf "daemon CPU: %d ticks in %.1f s = %.3f %% of one core\n", b-a, e-s, 100*(b-a)/hz/(e-s)}'
    echo -n "daemon "; rss "$dpid"
    curl -s "http://127.0.0.1:$PORT/metrics" | grep -E 'snapshots_received_total\{outcome="latest"'
    kill -TERM "$dpid"; wait "$dpid" || true ;;
  *)
    sed -n 2,9p "$0"; exit 2 ;;
esac
