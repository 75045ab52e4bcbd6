#!/usr/bin/env bash
# Time-sliced fuzzing of every target: `fuzz/run.sh SECONDS [TARGET...]` (default: all targets).
# Each target runs SECONDS under libFuzzer + AddressSanitizer; new inputs go to corpus/<target>/
# (only the seed-* files are committed), crashes to artifacts/<target>/. A summary line per target
# (executions, execs/s, coverage, crashes) is appended to fuzz/summary.log.
set -uo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
for t in "${targets[@]}"; do
    log="artifacts/$t.log"
    mkdir -p "artifacts/$t" "corpus/$t"
    cargo fuzz run -O "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    crashes=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
    echo "$(date -u +%FT%TZ) $t secs=$secs rc=$rc execs=${execs:-?} execs_per_s=${rate:-?} ${cov:-cov: ?} artifacts=$crashes" | tee -a summary.log
done
