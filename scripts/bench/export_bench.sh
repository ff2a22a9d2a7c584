#!/usr/bin/env bash
# Edge-export benchmark (make bench-export): what `kiln export` produces for one model, in one
# run, printed as a table:
#
#  (a) the size of the exported executable for linux/amd64, linux/arm64, linux/arm,
#      darwin/arm64, windows/amd64 and wasm (all runtimes built by make runtimes, the bundle
#      appended by kiln export), beside the bare runtime's size, and of the C export;
#  (b) cold start to first prediction of the linux/amd64 executable: wall time of running it on
#      a one-row CSV (hyperfine -N, RUNS runs after 5 warm-ups: the page cache is warm), beside
#      the same for python3 importing XGBoost, loading the model and predicting the row;
#  (c) one-row latency in-process: Model.PredictRows on one decoded row per call
#      (BenchmarkExportPredictRowsOneRow, internal/cexport/bench_test.go; GOMAXPROCS=1, core 0,
#      5 counts of 2 s, median), beside XGBoost's Booster.inplace_predict on a 1-row array
#      (scripts/bench/export_xgb.py; nthread 1, core 0, median of 20,000 timed calls), the same
#      1,000 rows cycled by both;
#  (d) C against Go throughput on the same 100,000 rows (TestCThroughput, KILN_BENCH_C=1; one
#      core): the C batch function against Model.PredictMatrix, and one row per call against
#      Model.PredictRows.
#
# The model: 100 trees of depth 6, binary:logistic, 20 float features, trained by Kiln's GBDT
# on synthetic rows (TestWriteExportBenchBundle writes the bundle, the rows and Go's
# predictions into the benchmark directory); XGBoost loads the bundle's model.json.
#
# The figures are taken only after the 1-minute load average drops below 1 (the builds raise
# it): the script waits up to KILN_EXPORT_BENCH_WAIT seconds (default 900), then measures
# anyway and says so. It prints uptime before and after.
#
# Environment: KILN_EXPORT_BENCH_DIR (default build/bench-export), KILN_EXPORT_BENCH_RUNS
# (cold-start runs, default 50), KILN_EXPORT_BENCH_WAIT, GO. Installs hyperfine and
# python3-xgboost from Debian when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
DIR=${KILN_EXPORT_BENCH_DIR:-build/bench-export}
RUNS=${KILN_EXPORT_BENCH_RUNS:-50}
WAIT=${KILN_EXPORT_BENCH_WAIT:-900}
PY=/usr/bin/python3
TARGETS=(linux/amd64 linux/arm64 linux/arm darwin/arm64 windows/amd64 wasm)
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v taskset >/dev/null || missing+=(util-linux)
command -v gcc >/dev/null || missing+=(gcc)
$PY -c 'import xgboost, numpy' 2>/dev/null || missing+=(python3-xgboost python3-numpy)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "export_bench: installing ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  else
    echo "export_bench: missing ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

mkdir -p "$DIR" bin
DIR=$(cd "$DIR" && pwd)

# 1. Builds: the runtimes, kiln, the cexport test binary (bundle writer and Go benchmarks).
echo "export_bench: building the runtimes, kiln and the cexport tests" >&2
${MAKE:-make} --no-print-directory runtimes GO="$GO" >&2
$GO build -o bin/kiln ./cmd/kiln
$GO test -c -o "$DIR/cexport.test" ./internal/cexport/

# 2. The model bundle, the rows and Go's predictions.
KILN_EXPORT_BENCH_DIR="$DIR" "$DIR/cexport.test" -test.run '^TestWriteExportBenchBundle$' -test.v >"$DIR/bundle.log" 2>&1 ||
  { cat "$DIR/bundle.log" >&2; exit 1; }
grep -o 'wrote .*' "$DIR/bundle.log" >&2

# 3. The exports.
rm -rf "$DIR/exe" "$DIR/c"
mkdir -p "$DIR/exe" "$DIR/c"
sizes=""
for t in "${TARGETS[@]}"; do
  case $t in
    wasm) out="$DIR/exe/bench.wasm" rt=bin/runtimes/kiln-predict-wasip1-wasm.wasm ;;
    windows/*) out="$DIR/exe/bench-${t//\//-}.exe" rt="bin/runtimes/kiln-predict-${t//\//-}.exe" ;;
    *) out="$DIR/exe/bench-${t//\//-}" rt="bin/runtimes/kiln-predict-${t//\//-}" ;;
  esac
  bin/kiln export "$DIR/bundle" --target "$t" -o "$out" --runtimes bin/runtimes >&2
  sizes+="$t $(stat -c %s "$out") $(stat -c %s "$rt")"$'\n'
  # The --lite executable (CSV and JSON Lines only, no --serve).
  lrt="${rt/kiln-predict-/kiln-predict-lite-}"
  case $out in
    *.exe|*.wasm) lout="${out%.*}-lite.${out##*.}" ;;
    *) lout="$out-lite" ;;
  esac
  bin/kiln export "$DIR/bundle" --target "$t" --lite -o "$lout" --runtimes bin/runtimes >&2
  sizes+="$t(lite) $(stat -c %s "$lout") $(stat -c %s "$lrt")"$'\n'
done
bin/kiln export "$DIR/bundle" --format c -o "$DIR/c/bench" >&2
c_bytes=$(($(stat -c %s "$DIR/c/bench.c") + $(stat -c %s "$DIR/c/bench.h")))
gcc -std=c99 -O2 -c -o "$DIR/c/bench.o" "$DIR/c/bench.c"
c_obj=$(size -d "$DIR/c/bench.o" | awk 'NR == 2 {print $1 + $2 + $3}')
bundle_bytes=$(du -cb "$DIR"/bundle/* | tail -1 | cut -f1)

# The executable predicts what Kiln predicts.
EXE="$DIR/exe/bench-linux-amd64"
exe_out=$("$EXE" "$DIR/row.csv")
exe_pred=$(printf '%s\n' "$exe_out" | awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "prediction") c = i} NR == 2 {print $c}')
go_pred=$(head -1 "$DIR/preds.txt")
$PY -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if a == b else f"export_bench: the executable predicts {a!r}, Go {b!r}")' "$exe_pred" "$go_pred"

# 4. Wait for a quiet machine.
waited=0
load1() { cut -d' ' -f1 /proc/loadavg; }
while awk -v l="$(load1)" 'BEGIN {exit !(l >= 1)}'; do
  if [ "$waited" -ge "$WAIT" ]; then
    echo "export_bench: WARNING: load average still $(load1) after ${WAIT}s; measuring anyway" >&2
    break
  fi
  [ $((waited % 60)) = 0 ] && echo "export_bench: load average $(load1), waiting for < 1" >&2
  sleep 10
  waited=$((waited + 10))
done
uptime_before=$(uptime)
echo "export_bench: $uptime_before" >&2

# 5. (b) Cold start, the executable and the Python peer.
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$DIR/cold.json" "$EXE $DIR/row.csv" >&2
hyperfine -N --warmup 2 --runs 20 --export-json "$DIR/cold-peer.json" \
  "env OMP_NUM_THREADS=1 $PY scripts/bench/export_xgb.py cold $DIR" >&2

# 6. (c) One-row latency, Kiln and XGBoost, on core 0.
GOMAXPROCS=1 KILN_EXPORT_BENCH_DIR="$DIR" taskset -c 0 "$DIR/cexport.test" -test.run '^$' \
  -test.bench '^BenchmarkExportPredictRowsOneRow$' -test.benchtime 2s -test.count 5 -test.benchmem \
  >"$DIR/onerow.txt" 2>&1 || { cat "$DIR/onerow.txt" >&2; exit 1; }
OMP_NUM_THREADS=1 taskset -c 0 $PY scripts/bench/export_xgb.py latency "$DIR" >"$DIR/onerow-xgb.json"

# 7. (d) C against Go throughput, on core 0.
KILN_BENCH_C=1 GOMAXPROCS=1 taskset -c 0 "$DIR/cexport.test" -test.run '^TestCThroughput$' -test.v \
  >"$DIR/throughput.txt" 2>&1 || { cat "$DIR/throughput.txt" >&2; exit 1; }
uptime_after=$(uptime)

cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# Uncommitted changes the executables and the Go figures may include (not this benchmark's own
# files).
dirty=$(git status --porcelain -- . ':!internal/cexport' ':!scripts/bench' ':!*.md' ':!Makefile' 2>/dev/null | awk '{print $NF}' | paste -sd' ' -)
$PY - "$DIR" "$sizes" "$c_bytes" "$c_obj" "$bundle_bytes" "$uptime_before" "$uptime_after" "$cpu" "$(nproc)" "$rev" "$dirty" "$RUNS" <<'PYEOF'
import json, re, statistics, sys, time
d, sizes, c_bytes, c_obj, bundle_bytes, up0, up1, cpu, nproc, rev, dirty, runs = sys.argv[1:]
def mb(n): return f"{int(n) / 1e6:.1f} MB"
def met(ok): return "met" if ok else "NOT met"
print(f"edge-export benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {rev}"
      + (f" + uncommitted changes to {dirty}" if dirty else ""))
print(f"machine: {nproc} cores, {cpu}")
print(f"before: {up0.strip()}")
print(f"after:  {up1.strip()}")
print(f"model: 100 trees of depth 6, binary:logistic, 20 features (Kiln GBDT); bundle {int(bundle_bytes):,} bytes")
print()
print("(a) executable size (kiln export --target T)       target <= 10 MB")
print(f"    {'target':<15}{'bytes':>14}{'':>10}{'runtime alone':>16}   ")
for line in sizes.strip().splitlines():
    t, n, rt = line.split()
    print(f"    {t:<15}{int(n):>14,}{mb(n):>10}{int(rt):>16,}   {met(int(n) <= 10_000_000)}")
print(f"    {'C (.c + .h)':<15}{int(c_bytes):>14,}{mb(c_bytes):>10}   (gcc -O2 object: {int(c_obj):,} bytes text+data+bss)")
cold = json.load(open(f"{d}/cold.json"))["results"][0]
peer = json.load(open(f"{d}/cold-peer.json"))["results"][0]
ms = lambda s: f"{s * 1e3:.1f} ms"
print()
print(f"(b) cold start to first prediction, linux/amd64 executable on a one-row CSV (hyperfine -N, {runs} runs)  target <= 50 ms")
print(f"    kiln export executable: median {ms(cold['median'])} (mean {ms(cold['mean'])}, min {ms(cold['min'])}, max {ms(cold['max'])}; "
      f"user {ms(cold['user'])}, system {ms(cold['system'])})   {met(cold['median'] <= 0.050)}")
print(f"    peer, python3 + XGBoost: import, load model.json, predict the row: median {ms(peer['median'])} "
      f"(mean {ms(peer['mean'])}, {len(peer['times'])} runs)")
txt = open(f"{d}/onerow.txt").read()
ns = [float(m) for m in re.findall(r"^BenchmarkExportPredictRowsOneRow\S*\s+\d+\s+([\d.]+) ns/op", txt, re.M)]
allocs = re.findall(r"(\d+) allocs/op", txt)
xgb = json.loads(open(f"{d}/onerow-xgb.json").read())
print()
print("(c) one-row latency in-process, 100 trees depth 6, one core (core 0)  target <= 15 µs")
print(f"    Kiln Model.PredictRows, one row per call: median {statistics.median(ns) / 1e3:.2f} µs "
      f"(counts: {', '.join(f'{x / 1e3:.2f}' for x in ns)} µs; {allocs[-1] if allocs else '?'} allocs)   "
      f"{met(statistics.median(ns) <= 15_000)}")
print(f"    XGBoost {xgb['xgboost']} Booster.inplace_predict, 1-row float32 array: median {xgb['median_us']:.1f} µs "
      f"(mean {xgb['mean_us']:.1f}, p99 {xgb['p99_us']:.1f}; {xgb['calls']:,} calls); ratio {xgb['median_us'] * 1e3 / statistics.median(ns):.0f}x")
print(f"    predictions: XGBoost vs Kiln max |diff| {xgb['max_abs_diff_vs_kiln']:.2g} on the 1,000 rows")
tp = open(f"{d}/throughput.txt").read()
m = re.search(r"RESULT c_batch=(\S+) go_batch=(\S+) c_row=(\S+) go_row=(\S+)", tp)
cb, gb, cr, gr = (float(x) for x in m.groups())
k = lambda r: f"{r / 1e6:.2f}M rows/s"
print()
print("(d) C export vs Go, the same 100,000 rows, one core (best of 5)")
print(f"    batch:            C predict_batch {k(cb)}, Go Model.PredictMatrix {k(gb)} (C/Go {cb / gb:.2f}x)")
print(f"    one row per call: C predict {k(cr)}, Go Model.PredictRows {k(gr)} (C/Go {cr / gr:.2f}x)")
PYEOF
