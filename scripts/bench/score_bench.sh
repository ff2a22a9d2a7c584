#!/usr/bin/env bash
# Batch-scoring benchmark (make bench-score): 10M rows x 30 float features in one
# Parquet file, Parquet -> Parquet on one core (GOMAXPROCS=1 and taskset -c 0), for a
# logistic regression and a GBDT (100 trees, depth 6, XGBoost JSON), against XGBoost's
# own predictor (inplace_predict, nthread=1) and scikit-learn predict_proba, in memory.
# The data, models and bundles are generated once and cached under build/bench-score.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${KILN_BENCH_SCORE_DIR:-build/bench-score}
ROWS=${KILN_BENCH_SCORE_ROWS:-10000000}
PY=/usr/bin/python3
mkdir -p "$DIR" bin
go build -o bin/kiln ./cmd/kiln
go build -o bin/scoregen ./scripts/bench/scoregen
if [ ! -f "$DIR/data.parquet" ] || [ "$(cat "$DIR/rows" 2>/dev/null)" != "$ROWS" ]; then
  bin/scoregen data -rows "$ROWS" -dir "$DIR"
  echo "$ROWS" > "$DIR/rows"
  rm -f "$DIR/xgb.json" "$DIR/logistic.json"
fi
if ! $PY -c 'import xgboost, sklearn' 2>/dev/null; then
  echo "score_bench: /usr/bin/python3 lacks xgboost or scikit-learn (apt install python3-xgboost python3-sklearn)" >&2
  exit 1
fi
[ -f "$DIR/xgb.json" ] || $PY scripts/bench/score_peers.py train "$DIR"
bin/scoregen bundle -estimator logistic -file "$DIR/logistic.json" -dir "$DIR/bundle-logistic"
bin/scoregen bundle -estimator xgboost -file "$DIR/xgb.json" -dir "$DIR/bundle-xgboost"

PIN=""
command -v taskset >/dev/null && PIN="taskset -c 0"
# Each model is scored RUNS times (default 3) after a sync, so that writeback of
# earlier files does not land in a timed run; the best run is reported (as the
# peers report their best), with the median and the largest peak RSS beside it.
RUNS=${KILN_BENCH_SCORE_RUNS:-3}
declare -A RPS RSS MED
for m in logistic xgboost; do
  runs=()
  for _ in $(seq "$RUNS"); do
    rm -rf "$DIR/out-$m.parquet"
    sync
    runs+=("$(GOMAXPROCS=1 $PIN bin/kiln score "$DIR/bundle-$m" "$DIR/data.parquet" "$DIR/out-$m.parquet" --passthrough id --json 2>/dev/null | tr -d '\n')")
  done
  rm -rf "$DIR/out-$m.parquet"
  read -r RPS[$m] MED[$m] RSS[$m] < <(printf '%s\n' "${runs[@]}" | $PY -c '
import json, statistics, sys
r = [json.loads(l) for l in sys.stdin if l.strip()]
rps = [x["rows_per_second"] for x in r]
print(max(rps), statistics.median(rps), max(x["peak_rss_mib"] for x in r))')
  echo "kiln score $m: best $(printf '%.0f' "${RPS[$m]}") rows/s, median $(printf '%.0f' "${MED[$m]}") rows/s over $RUNS runs" >&2
done
peers=$($PIN $PY scripts/bench/score_peers.py time "$DIR")
$PY - "$ROWS" "${RPS[logistic]}" "${RSS[logistic]}" "${RPS[xgboost]}" "${RSS[xgboost]}" "$peers" <<'PYEOF'
import json, sys
rows, lr, lr_rss, xg, xg_rss, peers = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), json.loads(sys.argv[6])
print(f"batch scoring, {rows:,} rows x 30 float64 features, Parquet -> Parquet, 1 core")
print(f"{'model':<22}{'Kiln rows/s':>14}{'peak RSS':>12}{'peer (in memory)':>30}{'peer rows/s':>14}{'ratio':>8}")
print(f"{'GBDT 100x depth 6':<22}{xg:>14,.0f}{xg_rss:>9.0f} MiB{'XGBoost ' + peers['xgboost_version'] + ' inplace_predict':>30}{peers['xgboost_rows_per_s']:>14,.0f}{xg / peers['xgboost_rows_per_s']:>7.2f}x")
print(f"{'logistic':<22}{lr:>14,.0f}{lr_rss:>9.0f} MiB{'scikit-learn predict_proba':>30}{peers['sklearn_rows_per_s']:>14,.0f}{lr / peers['sklearn_rows_per_s']:>7.2f}x")
print(f"Kiln: best of the runs (medians above); peak RSS: largest of the runs")
print(f"targets: GBDT >= 1.0x XGBoost; logistic >= 4,000,000 rows/s; peak RSS <= 512 MiB (peers on {peers['rows']:,} rows)")
PYEOF
