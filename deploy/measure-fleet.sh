#!/usr/bin/env bash
# Scale-out load run (#16): CLUSTERS x NODES simulated nodes (examples/fleet_load) pushing every
# INTERVAL through two real atlhyper-master processes into one throwaway PostgreSQL (Debian's
# initdb/pg_ctl in a temporary directory, fsync on), then the same load through one master into
# SQLite. Over a window of SECONDS after WARMUP it samples, every 10 s, CPU (utime + stime of
# /proc/PID/stat) and memory (VmRSS; PSS from smaps_rollup, which counts shared memory once) of
# every process: each master, the generator, and PostgreSQL as one group (the postmaster, every
# backend and helper, plus the CPU of children it has reaped), and the database's growth.
#
# usage: deploy/measure-fleet.sh [postgres] [sqlite]         (both when none is named)
#   cargo build --release -p atlhyper-master --bin atlhyper-master -p atlhyper --example fleet_load
#   SECONDS_RUN=600 deploy/measure-fleet.sh postgres sqlite
# settings (environment): BIN_DIR=target/release SECONDS_RUN=600 WARMUP=60 CLUSTERS=100 NODES=100
#   INTERVAL=10s HISTORY_INTERVAL=60s OUT_DIR=(a new temporary directory, kept)
#
# Bytes per node per day. One history row and one tier-0 series row are written per node per
# history interval (5 min by default, 288 a day), one tier-1 (hourly) series row per node per
# hour (24 a day); the latest table holds one row per node whatever the time. The run uses a
# shorter HISTORY_INTERVAL (60 s) so that many intervals end inside the window; the size of a row
# does not depend on the interval (the nine history figures; a series row holds min/avg/max per
# series, however many samples made it). So: bytes per row = growth of the table with its
# indexes / rows added over the window, and per node per day = history row x 288 + series row x
# (288 + 24), the tier-1 row taken as the size of a tier-0 row (the window holds no roll-up).
set -euo pipefail
engines=("$@"); [ ${#engines[@]} -eq 0 ] && engines=(postgres sqlite)
bin=${BIN_DIR:-target/release}
secs=${SECONDS_RUN:-600}; warmup=${WARMUP:-60}
clusters=${CLUSTERS:-100}; nodes=${NODES:-100}
interval=${INTERVAL:-10s}; history_interval=${HISTORY_INTERVAL:-60s}
out=${OUT_DIR:-$(mktemp -d /tmp/measure-fleet-XXXXXX)}
mkdir -p "$out"
hz=$(getconf CLK_TCK)
token_prefix=fleet-load-agent-token-
viewer=fleet-load-viewer-token-0
for f in "$bin/atlhyper-master" "$bin/examples/fleet_load"; do
  [ -x "$f" ] || { echo "missing $f (see usage)" >&2; exit 2; }
done
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

tokens=$(for ((i = 0; i < clusters; i++)); do printf '%s%s=%s,' "$token_prefix" \
  "$(printf 'fleet-%03d' $i)" "$(printf 'fleet-%03d' $i)"; done)
tokens=${tokens%,}

pids=(); pg_data=
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$pg_data" ]; then as_pg "$pg_bin/pg_ctl" -D "$pg_data" stop -m fast >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# Starts a master (env given as arguments) on a port of its choosing; prints PID and port.
start_master() {
  local name=$1; shift
  env -i PATH="$PATH" MASTER_LISTEN_ADDR=127.0.0.1:0 MASTER_AGENT_TOKENS="$tokens" \
    MASTER_VIEWER_TOKEN=$viewer MASTER_HISTORY_INTERVAL="$history_interval" "$@" \
    "$bin/atlhyper-master" >"$out/$name.log" 2>&1 &
  local pid=$! port=
  for _ in $(seq 600); do
    port=$(grep -o 'addr=127.0.0.1:[0-9]*' "$out/$name.log" | head -1 | cut -d: -f2 || true)
    [ -n "$port" ] && break
    kill -0 $pid 2>/dev/null || { echo "$name died:" >&2; tail -20 "$out/$name.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$port" ] || { echo "$name did not listen" >&2; exit 1; }
  echo "$pid $port"
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
# PostgreSQL as one group: the postmaster's own and reaped children's CPU, and every live child.
pg_group() {
  local pm=$1 t r p
  t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"); r=$(rss "$pm"); p=$(pss "$pm")
  for c in $(ps -o pid= --ppid "$pm"); do
    t=$((t + $(ticks "$c"))); r=$((r + $(rss "$c"))); p=$((p + $(pss "$c")))
  done
  echo "$t $r $p"
}

# Samples every 10 s into $out/$engine.samples: time, then ticks rss pss per process label.
sample_loop() {
  local file=$1; shift
  while :; do
    local line="$(date +%s)"
    for spec in "$@"; do
      local label=${spec%%=*} pid=${spec#*=}
      if [ "$label" = postgres ]; then line+=" $label $(pg_group "$pid")"
      else line+=" $label $(ticks "$pid") $(rss "$pid") $(pss "$pid")"; fi
    done
    echo "$line" >>"$file"
    sleep 10
  done
}

# Per process label: CPU % of one core over the window, RSS and PSS at the end, peak RSS.
summarise_samples() {
  awk -v hz="$hz" '
    { for (i = 2; i <= NF; i += 4) { l = $i; if (!(l in t0)) { t0[l] = $(i+1); s0 = $1; order[++n] = l }
        t1[l] = $(i+1); r1[l] = $(i+2); p1[l] = $(i+3); if ($(i+2) > peak[l]) peak[l] = $(i+2) } s1 = $1 }
    END { w = s1 - s0; printf "window %d s (samples every 10 s)\n", w
      for (k = 1; k <= n; k++) { l = order[k]
        printf "  %-10s cpu %6.1f %% of one core  rss %7.1f MiB (peak %7.1f)  pss %7.1f MiB\n", l,
          (t1[l] - t0[l]) / hz / w * 100, r1[l] / 1024, peak[l] / 1024, p1[l] / 1024 } }' "$1"
}

# Database figures: "size history_bytes history_rows series_bytes series_rows latest_bytes wal".
pg_figures() {
  psql -X -qAt -F' ' "$1" -c "SELECT pg_database_size(current_database()),
    (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('history')),
    (SELECT count(*) FROM history), pg_total_relation_size('series'), (SELECT count(*) FROM series),
    pg_total_relation_size('latest'), pg_current_wal_lsn() - '0/0'::pg_lsn"
}
sqlite_figures() {
  local db=$1 size
  size=$(( $(stat -c %s "$db") + $(stat -c %s "$db-wal" 2>/dev/null || echo 0) ))
  echo "$size $(sqlite3 -readonly "$db" "SELECT
    (SELECT sum(d.pgsize) FROM dbstat d JOIN sqlite_master m ON d.name = m.name WHERE m.tbl_name = 'history'),
    (SELECT count(*) FROM history),
    (SELECT sum(d.pgsize) FROM dbstat d JOIN sqlite_master m ON d.name = m.name WHERE m.tbl_name = 'series'),
    (SELECT count(*) FROM series),
    (SELECT sum(d.pgsize) FROM dbstat d JOIN sqlite_master m ON d.name = m.name WHERE m.tbl_name = 'latest'),
    0" | tr '|' ' ')"
}

# Growth between two figure lines, and the per-node-per-day estimate (see the header).
summarise_db() {
  local what=$1 a=$2 b=$3
  awk -v a="$a" -v b="$b" -v secs="$secs" -v n=$((clusters * nodes)) -v what="$what" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    dh = y[2] - x[2]; rh = y[3] - x[3]; ds = y[4] - x[4]; rs = y[5] - x[5]
    hrow = rh > 0 ? dh / rh : 0; srow = rs > 0 ? ds / rs : 0
    printf "%s: size %.1f -> %.1f MiB (%.0f KiB/s over the window, latest churn included)\n", what,
      x[1] / 1048576, y[1] / 1048576, (y[1] - x[1]) / 1024 / secs
    printf "  history +%d rows, +%.1f MiB: %.1f bytes/row; series +%d rows, +%.1f MiB: %.1f bytes/row\n",
      rh, dh / 1048576, hrow, rs, ds / 1048576, srow
    printf "  latest %.1f MiB for %d nodes: %.0f bytes held per node (not per day)\n", y[6] / 1048576, n, y[6] / n
    if (y[7] > 0) printf "  WAL written %.1f MiB (%.0f KiB/s)\n", (y[7] - x[7]) / 1048576, (y[7] - x[7]) / 1024 / secs
    printf "  bytes per node per day at the 5-min default: %.0f (history %.0f x 288 + series %.0f x 312)\n",
      hrow * 288 + srow * 312, hrow, srow }'
}

run_engine() {
  local engine=$1 db_url= db_file= specs=() masters=()
  if [ "$engine" = postgres ]; then
    [ -n "$pg_bin" ] || { echo "PostgreSQL is not installed (apt-get install -y postgresql)" >&2; exit 2; }
    local pg_dir="$out/pg"; mkdir -p "$pg_dir"; [ "$(id -u)" = 0 ] && chown postgres: "$pg_dir"
    pg_data="$pg_dir/data"
    as_pg "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
    local port started=
    for _ in $(seq 20); do
      port=$((20000 + RANDOM % 40000))
      if as_pg "$pg_bin/pg_ctl" -D "$pg_data" -w -t 60 -l "$pg_dir/server.log" start \
          -o "-p $port -c listen_addresses=127.0.0.1 -k $pg_dir -c max_connections=300" >/dev/null; then
        started=1; break
      fi
    done
    [ -n "$started" ] || { echo "PostgreSQL did not start: $(tail -5 "$pg_dir/server.log")" >&2; exit 1; }
    "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres atlhyper
    db_url="postgres://postgres@127.0.0.1:$port/atlhyper"
    for m in a b; do
      read -r pid mport < <(start_master "master-$m" MASTER_DB_URL="$db_url")
      [ -n "$mport" ] || exit 1
      pids+=("$pid"); specs+=("master-$m=$pid"); masters+=("http://127.0.0.1:$mport")
    done
    specs+=("postgres=$(head -1 "$pg_data/postmaster.pid")")
  else
    db_file="$out/sqlite/atlhyper.db"; mkdir -p "$out/sqlite"
    read -r pid mport < <(start_master master MASTER_DB_PATH="$db_file")
    [ -n "$mport" ] || exit 1
    pids+=("$pid"); specs+=("master=$pid"); masters+=("http://127.0.0.1:$mport")
  fi
  local list; list=$(IFS=,; echo "${masters[*]}")
  "$bin/examples/fleet_load" --masters "$list" --clusters "$clusters" --nodes "$nodes" \
    --interval "$interval" --duration "$((warmup + secs + 20))s" --token-prefix "$token_prefix" \
    >"$out/$engine.report.json" 2>"$out/$engine.generator.log" &
  local gen=$!; pids+=("$gen"); specs+=("generator=$gen")
  sleep "$warmup"
  local figures=pg_figures target=$db_url
  [ "$engine" = sqlite ] && figures=sqlite_figures target=$db_file
  local before after
  before=$($figures "$target")
  sample_loop "$out/$engine.samples" "${specs[@]}" & local sampler=$!
  sleep "$secs"
  kill $sampler; wait $sampler 2>/dev/null || true
  after=$($figures "$target")
  wait "$gen" || true
  echo "== $engine: $clusters clusters x $nodes nodes every $interval through ${#masters[@]} master(s)," \
       "history interval $history_interval; logs in $out"
  summarise_samples "$out/$engine.samples"
  summarise_db "$engine" "$before" "$after"
  jq -c '{pushes_acked, pushes_failed, errors, ticks_skipped, nodes_refused, heartbeats_failed,
          latency_ms_p50, latency_ms_p99, latency_ms_max, node_json_bytes, push_body_bytes,
          acked_by_master}' "$out/$engine.report.json"
  # Sustained means every tick pushed and acknowledged: a push still running at the next tick
  # skips that tick, so skipped ticks count against it.
  jq -r '(.pushes_acked + .pushes_failed + .ticks_skipped) as $due |
    "  acked \(.pushes_acked) of \($due) pushes due (\(if $due > 0 then (1000 * .pushes_acked / $due | round) / 10 else 0 end) %), p50 \(.latency_ms_p50) ms, p99 \(.latency_ms_p99) ms"' \
    "$out/$engine.report.json"
  for m in "${masters[@]}"; do
    echo "  $m: nodes online $(curl -s -H "Authorization: Bearer $viewer" "$m/api/v2/fleet" |
      jq '[.clusters[]?.nodes_online // empty] | add')"
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pids=()
  if [ -n "$pg_data" ]; then as_pg "$pg_bin/pg_ctl" -D "$pg_data" stop -m fast >/dev/null; pg_data=; fi
}

date -u +"start %FT%TZ; load average $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
for e in "${engines[@]}"; do run_engine "$e"; done
date -u +"end %FT%TZ; load average $(cut -d' ' -f1-3 /proc/loadavg)"
