#!/usr/bin/env bash
# Serving benchmark (make bench-serve): `kiln serve` against a FastAPI + uvicorn + XGBoost
# peer serving the same XGBoost model (100 trees, depth 6, 30 float features), one row per
# request: POST /v1/models/NAME:predict {"instances":[{...one row...}]}.
#
# Both servers run on core 0 (taskset -c 0; Kiln with GOMAXPROCS=1, uvicorn with one worker),
# the load generator on core 1 (taskset -c 1 wrk -t1), on 127.0.0.1 with 32 keep-alive
# connections; each server gets a short warm-up run, then RUNS measured runs. Kiln serves the
# canary split: v1 stable, v2 canary at 10% (PUT /admin/v1/models/NAME/deployment), with its
# request log on (as `kiln serve` always runs); the peer serves v1. Before the load, 50
# rows are predicted through each server and compared with XGBoost's own predictions.
#
# The data, models and bundles are generated once and cached under build/bench-serve.
# Environment: KILN_BENCH_SERVE_DIR, KILN_BENCH_SERVE_DURATION (s, default 10),
# KILN_BENCH_SERVE_WARMUP (s, default 3), KILN_BENCH_SERVE_RUNS (measured runs per server,
# default 3; the table shows the median by requests/s), KILN_BENCH_SERVE_CONNS (default 32),
# KILN_BENCH_SERVE_KILN_ARGS (more kiln serve flags, e.g. --log-in-process),
# KILN_BENCH_SERVE_PORT (default 18080; the peer uses the next port), KILN_BENCH_SERVE_PEER=0
# to skip the peer, KILN_BENCH_SERVE_RATE (the fixed rate, default 20000).
#
# Before its wrk runs, Kiln serves RUNS runs at a fixed rate, RATE requests a second offered by bin/loadgen
# (scripts/bench/loadgen: an open loop, each latency counted from the request's scheduled
# time) on core 1 with the same connections: the latency at that rate, stalls included,
# which wrk's closed loop hides (it stops sending while the server stalls). The peer, far
# below RATE, is not run at it.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${KILN_BENCH_SERVE_DIR:-build/bench-serve}
DURATION=${KILN_BENCH_SERVE_DURATION:-10}
WARMUP=${KILN_BENCH_SERVE_WARMUP:-3}
CONNS=${KILN_BENCH_SERVE_CONNS:-32}
PORT=${KILN_BENCH_SERVE_PORT:-18080}
PEER_PORT=$((PORT + 1))
RUN_PEER=${KILN_BENCH_SERVE_PEER:-1}
RUNS=${KILN_BENCH_SERVE_RUNS:-3}
RATE=${KILN_BENCH_SERVE_RATE:-20000}
PY=/usr/bin/python3
GO=${GO:-go}
MODEL=bench
TOKEN=bench-serve-token

# The peers and the load generator, from Debian (installed when missing and running as root).
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v taskset >/dev/null || missing+=(util-linux)
command -v curl >/dev/null || missing+=(curl)
$PY -c 'import xgboost' 2>/dev/null || missing+=(python3-xgboost)
$PY -c 'import fastapi' 2>/dev/null || missing+=(python3-fastapi)
$PY -c 'import uvicorn' 2>/dev/null || missing+=(python3-uvicorn)
$PY -c 'import uvloop' 2>/dev/null || missing+=(python3-uvloop)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "serve_bench: installing ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  else
    echo "serve_bench: missing ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

mkdir -p "$DIR" bin
$GO build -o bin/kiln ./cmd/kiln
$GO build -o bin/scoregen ./scripts/bench/scoregen
$GO build -o bin/loadgen ./scripts/bench/loadgen
ABS=$(cd "$DIR" && pwd)
if [ ! -f "$DIR/x.f64" ]; then
  bin/scoregen data -rows 200000 -peer-rows 200000 -dir "$DIR"
  rm -f "$DIR/data.parquet" "$DIR"/xgb-v*.json "$DIR/bodies.txt"
fi
[ -f "$DIR/xgb-v2.json" ] || $PY scripts/bench/serve_fastapi.py train "$DIR"
[ -f "$DIR/bodies.txt" ] || $PY scripts/bench/serve_fastapi.py bodies "$DIR" 1000
for v in 1 2; do
  [ -f "$DIR/bundle-v$v/manifest.json" ] || bin/scoregen bundle -estimator xgboost -file "$DIR/xgb-v$v.json" -dir "$DIR/bundle-v$v"
done

server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT

wait_up() { # URL
  for _ in $(seq 200); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$server_pid" 2>/dev/null || { echo "serve_bench: the server exited" >&2; return 1; }
    sleep 0.05
  done
  echo "serve_bench: $1 did not answer" >&2
  return 1
}

# CPU seconds (user+system) of the server process and its children (kiln
# serve's request log writer), and busy seconds of core 0.
server_cpu() {
  local p pids=$server_pid
  for p in $(pgrep -P "$server_pid" 2>/dev/null); do pids+=" $p"; done
  for p in $pids; do cat "/proc/$p/stat" 2>/dev/null; done | awk '{s += $14 + $15} END {printf "%.2f", s / 100}'
}
# drained: wait until the server's children (the request log writer) have
# used no CPU for half a second, so a run's CPU seconds include the log
# writing its requests left behind (the writer child works at idle priority,
# after the load stops; the server bounds what it leaves to it).
drained() {
  local a b
  b=$(server_cpu)
  for _ in $(seq 120); do
    sleep 0.5
    a=$b b=$(server_cpu)
    [ "$a" = "$b" ] && return 0
  done
}
sub() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a - b}'; }
core0_busy() { awk '$1 == "cpu0" {printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / 100}' /proc/stat; }

# load URL NAME: a warm-up run, then RUNS measured runs; prints one JSON line per run:
# wrk's RESULT plus the server's CPU seconds and core 0's busy seconds (steal included) during
# the run: their difference is what other processes, interrupts and the hypervisor took from the
# server's core.
load() {
  local args=(-t1 -c"$CONNS" --latency -s scripts/bench/serve_wrk.lua "$1")
  KILN_BENCH_BODIES="$ABS/bodies.txt" taskset -c 1 wrk -d"${WARMUP}s" "${args[@]}" >/dev/null
  drained
  for i in $(seq "$RUNS"); do
    local c0 b0 r
    c0=$(server_cpu) b0=$(core0_busy)
    r=$(KILN_BENCH_BODIES="$ABS/bodies.txt" taskset -c 1 wrk -d"${DURATION}s" "${args[@]}" | tee "$DIR/wrk-$2-$i.txt" | sed -n 's/^RESULT //p')
    drained
    echo "${r%\}},\"server_cpu_s\":$(sub "$(server_cpu)" "$c0"),\"core0_busy_s\":$(sub "$(core0_busy)" "$b0")}"
  done
}

# fixed_rate URL NAME: RUNS runs of bin/loadgen offering RATE requests a
# second over CONNS connections; one JSON line per run.
fixed_rate() {
  for i in $(seq "$RUNS"); do
    GOMAXPROCS=1 taskset -c 1 bin/loadgen -url "$1" -bodies "$ABS/bodies.txt" -rate "$RATE" \
      -duration "${DURATION}s" -conns "$CONNS" | tee "$DIR/loadgen-$2-$i.txt" | sed -n 's/^RESULT //p'
    drained
  done
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# Kiln: v1 stable alone for the check, then v1 stable + v2 canary at 10% for the load.
rm -rf "$DIR/home"
mkdir -p "$DIR/home"
KILN_HOME="$ABS/home" KILN_ADMIN_TOKEN=$TOKEN GOMAXPROCS=1 taskset -c 0 \
  bin/kiln serve --addr "127.0.0.1:$PORT" --restore "" ${KILN_BENCH_SERVE_KILN_ARGS:-} >"$DIR/kiln.log" 2>&1 &
server_pid=$!
wait_up "http://127.0.0.1:$PORT/healthz"
deploy() { # JSON
  curl -sf -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data "$1" "http://127.0.0.1:$PORT/admin/v1/models/$MODEL/deployment" >/dev/null
}
deploy "{\"stable\":{\"version\":1,\"bundle_uri\":\"$ABS/bundle-v1\"}}"
kiln_diff=$($PY scripts/bench/serve_fastapi.py check "$DIR" "http://127.0.0.1:$PORT/v1/models/$MODEL:predict")
deploy "{\"stable\":{\"version\":1,\"bundle_uri\":\"$ABS/bundle-v1\"},\"canary\":{\"version\":2,\"bundle_uri\":\"$ABS/bundle-v2\"},\"canary_percent\":10}"
# First at a fixed rate offered (an open loop, bin/loadgen): the latency a
# client sees at RATE requests a second, queueing behind a stall included,
# which wrk's closed loop hides. Before wrk's runs: a server just out of
# saturation has a heap several times larger to give back, and its first
# fixed-rate run measured that (p99 17 ms, then 5.9 and 2.4 ms).
kiln_rate=$(fixed_rate "http://127.0.0.1:$PORT/v1/models/$MODEL:predict" kiln)
kiln=$(load "http://127.0.0.1:$PORT/v1/models/$MODEL:predict" kiln)
stats=$(curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/admin/v1/models/$MODEL/stats")
stop_server
# Every request served is in the request log once the server has stopped
# (its log writer child included): the log kept up with the load.
logged=$(bin/scoregen logrows "$DIR/home/requests" "$MODEL")
rm -rf "$DIR/home"

peer=''
peer_diff=""
if [ "$RUN_PEER" = 1 ]; then
  KILN_BENCH_XGB="$ABS/xgb-v1.json" OMP_NUM_THREADS=1 taskset -c 0 \
    $PY -m uvicorn serve_fastapi:app --app-dir scripts/bench --host 127.0.0.1 --port "$PEER_PORT" \
    --workers 1 --loop uvloop --http h11 --no-access-log --log-level warning >"$DIR/peer.log" 2>&1 &
  server_pid=$!
  wait_up "http://127.0.0.1:$PEER_PORT/docs"
  peer_diff=$($PY scripts/bench/serve_fastapi.py check "$DIR" "http://127.0.0.1:$PEER_PORT/v1/models/$MODEL:predict")
  peer=$(load "http://127.0.0.1:$PEER_PORT/v1/models/$MODEL:predict" peer)
  stop_server
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

versions=$($PY -c 'import fastapi, uvicorn, pydantic, xgboost, uvloop; print(f"FastAPI {fastapi.__version__}, uvicorn {uvicorn.__version__} (uvloop {uvloop.__version__}, h11), pydantic {pydantic.VERSION}, XGBoost {xgboost.__version__}")')
$PY - "$kiln" "$peer" "$stats" "$kiln_diff" "$peer_diff" "$load_before" "$load_after" "$versions" "$DURATION" "$CONNS" "$RUNS" "$logged" "$kiln_rate" "$RATE" <<'PYEOF'
import json, statistics, sys
kiln, peer = ([json.loads(l) for l in a.splitlines() if l.strip()] for a in sys.argv[1:3])
stats = json.loads(sys.argv[3])
kiln_diff, peer_diff, before, after, versions, duration, conns, runs, logged = sys.argv[4:13]
fixed = [json.loads(l) for l in sys.argv[13].splitlines() if l.strip()]
rate = float(sys.argv[14])
def rps(r): return r["requests"] / (r["duration_us"] / 1e6)
def median(rs): return sorted(rs, key=rps)[len(rs) // 2]
def row(name, rs):
    r = median(rs)
    bad = sum(x["errors"] + x["non2xx"] for x in rs)
    spread = f"{min(map(rps, rs)):,.0f}-{max(map(rps, rs)):,.0f}"
    other = max(x["core0_busy_s"] - x["server_cpu_s"] for x in rs)
    print(f"{name:<33}{rps(r):>9,.0f}{spread:>17}{r['p50_us'] / 1e3:>8.2f}{r['p99_us'] / 1e3:>8.2f}"
          f"{r['server_cpu_s'] / r['requests'] * 1e6:>9.1f}{other:>9.2f}{bad:>7}")
    return r
print(f"serving, one row per request (XGBoost 100 trees depth 6, 30 features), server on core 0 (1 core),")
print(f"wrk -t1 -c{conns} on core 1, {runs} runs of {duration} s after a warm-up; load average {before} before, {after} after")
print(f"{'server (median run)':<33}{'req/s':>9}{'runs req/s':>17}{'p50 ms':>8}{'p99 ms':>8}{'CPU µs':>9}{'other s':>9}{'errors':>7}")
k = row("kiln serve (canary 10%, log on)", kiln)
if peer:
    p = row("FastAPI + uvicorn + XGBoost", peer)
    print(f"ratio kiln / peer (medians): {rps(k) / rps(p):.1f}x req/s")
vs = {v["version"]: v["requests"] for v in stats["variants"]}
total = sum(vs.values())
print("kiln split: " + ", ".join(f"v{v} {n:,} ({100 * n / total:.1f}%)" for v, n in sorted(vs.items())))
print(f"kiln request log: {int(logged):,} rows for {total:,} requests served" + ("" if int(logged) == total else "  ** ROWS MISSING **"))
print(f"predictions vs XGBoost (50 rows, max abs diff): kiln {kiln_diff}" + (f", peer {peer_diff}" if peer else ""))
if peer:
    print(f"peer: {versions}")
print("CPU µs: the server's CPU time per request, with its request log writer's (counted until the writer is idle after the run);")
print("  other s: the most time in a run that core 0 was busy")
print("  (or stolen by the hypervisor) beyond the server's own CPU time: other processes, interrupts")
if fixed:
    by99 = sorted(fixed, key=lambda r: r["p99_us"])
    f = by99[len(by99) // 2]
    p99s = ", ".join("%.2f" % (r["p99_us"] / 1e3) for r in fixed)
    print(f"kiln serve at a fixed {rate:,.0f} req/s offered (bin/loadgen, open loop, {len(fixed)} runs of {duration} s, median by p99):")
    print(f"  answered {rps(f):,.0f} req/s, p50 {f['p50_us'] / 1e3:.2f} ms, p90 {f['p90_us'] / 1e3:.2f} ms, p99 {f['p99_us'] / 1e3:.2f} ms,"
          f" p99.9 {f['p999_us'] / 1e3:.2f} ms, max {f['max_us'] / 1e3:.2f} ms; runs' p99 {p99s} ms;"
          f" errors {sum(r['errors'] + r['non2xx'] for r in fixed)}")
print("targets: kiln >= 20,000 req/s with p99 <= 5 ms on one core, >= 20x the peer")
PYEOF
