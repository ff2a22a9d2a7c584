#!/usr/bin/env bash
# Monitor-window benchmark (make bench-monitor): one MonitorWindow call over 1,000,000 served rows
# x 30 float64 features in 10 request log files (with prediction IDs, served over the 10-minute
# window), a logistic model registered with 100,000 training rows and a 20,000-row holdout, and
# labels for half of the rows in 5 batches pushed with labels.Push (all joined): label accounting,
# the join of the window's labels, drift of the 30 features and the predictions, live metrics. On
# one core (GOMAXPROCS=1, -test.cpu 1, taskset -c 0 when available), once (-test.benchtime 1x).
#
# The data are written by the benchmark itself (BenchmarkMonitorWindow,
# activities/monitor_bench_test.go) once, in a process of its own, and cached under
# $KILN_MONITOR_BENCH_DIR (default build/bench-monitor); the timed process then only pushes the
# labels into a fresh registry and measures the window. KILN_MONITOR_BENCH_ROWS sets a smaller scale.
#
# Peak RSS: GNU time (/usr/bin/time -v) reports the largest resident set of the process tree, which
# includes the activities tests' TestMain building the reference trainer with `go build` before the
# benchmark starts; the benchmark's own peak-rss-MiB is the test process's VmHWM over the
# MonitorWindow call alone (reset through /proc/self/clear_refs before it). Both are printed.
#
# Run it on a quiet machine (the load average is printed). GO names the go command (default go).
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
DIR=${KILN_MONITOR_BENCH_DIR:-build/bench-monitor}
ROWS=${KILN_MONITOR_BENCH_ROWS:-1000000}
mkdir -p "$DIR" bin
DIR=$(cd "$DIR" && pwd)
export KILN_MONITOR_BENCH=1 KILN_MONITOR_BENCH_DIR="$DIR" KILN_MONITOR_BENCH_ROWS="$ROWS"

$GO test -c -o bin/monitor-bench.test ./activities/
BENCH=(-test.run '^$' -test.bench '^BenchmarkMonitorWindow$' -test.benchtime 1x -test.count 1 -test.v)

# 1. The data, once (a no-op when a complete copy of this scale is cached).
if ! KILN_MONITOR_BENCH_PREPARE=1 bin/monitor-bench.test "${BENCH[@]}" >"$DIR/prepare.log" 2>&1; then
  cat "$DIR/prepare.log" >&2
  exit 1
fi
grep -E 'generat' "$DIR/prepare.log" >&2 || true
sync

# 2. Timed: one MonitorWindow on one core, under GNU time.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
PIN=()
command -v taskset >/dev/null && PIN=(taskset -c 0)
if ! GOMAXPROCS=1 /usr/bin/time -v -o "$DIR/time.txt" "${PIN[@]}" bin/monitor-bench.test "${BENCH[@]}" -test.cpu 1 -test.benchmem >"$DIR/bench.txt" 2>&1; then
  cat "$DIR/bench.txt" >&2
  exit 1
fi
cat "$DIR/bench.txt" >&2
line=$(grep -E '^BenchmarkMonitorWindow' "$DIR/bench.txt" | grep -E 'ns/op' | tail -1)
rss_kb=$(awk -F': *' '/Maximum resident set size/ {print $2}' "$DIR/time.txt")
load="$load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after"

awk -v line="$line" -v rss_kb="$rss_kb" -v rows="$ROWS" -v load="$load" '
function commas(x,   s, out) {
  s = sprintf("%.0f", x); out = ""
  while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
  return s out
}
BEGIN {
  n = split(line, f, /[ \t]+/)
  for (i = 3; i < n; i += 2) v[f[i + 1]] = f[i]
  secs = v["ns/op"] / 1e9
  printf "monitor benchmark: MonitorWindow over %s served rows x 30 float64 features in 10 request log files, %s labels in 5 batches, 100,000 training rows, 20,000 holdout rows, 1 core\n", commas(rows), commas(rows / 2)
  printf "  (load average %s; a busy machine slows the figures: take them from a quiet one)\n", load
  printf "  seconds: %.2f\n", secs
  printf "  rows/s: %s\n", commas(v["rows/s"])
  printf "  peak RSS MiB: %.0f (GNU time, whole process tree); %.0f during the call (VmHWM); peak heap in use %.0f MiB\n", rss_kb / 1024, v["peak-rss-MiB"], v["peak-heap-MiB"]
  if (rows == 1000000) {
    printf "  target <= 5 s on one core: %s\n", secs <= 5 ? "met" : "NOT met"
  } else {
    printf "  the target (<= 5 s on one core) is for 1,000,000 rows: not compared at this scale\n"
  }
}'
