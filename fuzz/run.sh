#!/usr/bin/env bash
# Time-sliced fuzzing of every target on the stable toolchain:
#   fuzz/run.sh SECONDS [TARGET...]        (default: all targets)
#   JOBS=2 fuzz/run.sh 600                 (two targets at a time, one lane per core)
# Each target runs SECONDS under libFuzzer without a sanitizer (`-s none`: what runs on stable;
# `-O -a`: optimised, with debug assertions and overflow checks, so an overflow is a crash;
# the parsers are safe Rust, so a sanitizer would only re-check what the compiler already does).
# The committed corpus archive is unpacked into corpus/<target>/ first (corpus.sh); new inputs
# go there too (pack them with ./corpus.sh pack after cmin), crashes to artifacts/<target>/. A summary line per target
# (executions, execs/s, coverage, crashes) is appended to fuzz/summary.log.
set -uo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
jobs="${JOBS:-1}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
./corpus.sh unpack
# Build once up front so the lanes never wait on each other's cargo lock.

cargo fuzz build -s none -O -a || exit 1

fuzz_one() {
    local t="$1" log="artifacts/$1.log"
    mkdir -p "artifacts/$t" "corpus/$t"
    cargo fuzz run -s none -O -a "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1
    local rc=$?
    local execs rate cov crashes
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    crashes=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
    echo "$(date -u +%FT%TZ) $t secs=$secs rc=$rc execs=${execs:-?} execs_per_s=${rate:-?} ${cov:-cov: ?} artifacts=$crashes" | tee -a summary.log
}

# Lane k takes targets k, k+jobs, k+2*jobs, ...
for ((lane = 0; lane < jobs; lane++)); do
    (
        for ((i = lane; i < ${#targets[@]}; i += jobs)); do
            fuzz_one "${targets[$i]}"
        done
    ) &
done
wait
