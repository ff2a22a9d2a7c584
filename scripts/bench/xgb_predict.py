#!/usr/bin/python3
"""XGBoost's side of BenchmarkPredictXGBoost (internal/model): same model, same data, in memory, 1 thread.

    mkdir -p /tmp/xgbbench
    KILN_XGB_BENCH_DIR=/tmp/xgbbench go test ./internal/model/ -run '^$' -bench PredictXGBoost -benchtime 3x
    /usr/bin/python3 scripts/bench/xgb_predict.py /tmp/xgbbench

The benchmark writes DIR/model.json (100 trees, depth 6, 30 features), DIR/x.f64 (1M x 30 row-major
little-endian float64, 1% NaN) and DIR/kiln_pred.json (Kiln's predictions of the first 1000 rows).
This script times Booster.predict on a DMatrix built beforehand (a fresh one per run, since predict caches
results per DMatrix) and Booster.inplace_predict on the numpy array (nthread=1, best of --repeat runs), prints
rows/s and ns/tree/row, and checks XGBoost's predictions against Kiln's.
"""
import argparse
import json
import time

import numpy as np
import xgboost as xgb


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--features", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()

    booster = xgb.Booster(model_file=f"{a.dir}/model.json")
    booster.set_param({"nthread": 1})
    trees = len(booster.get_dump())
    x = np.fromfile(f"{a.dir}/x.f64", dtype="<f8").reshape(-1, a.features)
    rows = x.shape[0]
    # Booster.predict caches its result per DMatrix: every timed call gets a fresh one, built untimed.
    best, build = float("inf"), 0.0
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        d = xgb.DMatrix(x, missing=np.nan, nthread=1, feature_names=booster.feature_names)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = booster.predict(d)
        best = min(best, time.perf_counter() - t0)
        del d
    print(f"xgboost {xgb.__version__} Booster.predict(DMatrix), 1 thread, {rows} rows x {a.features} features, "
          f"{trees} trees: {rows / best:,.0f} rows/s, {best * 1e9 / (rows * trees):.2f} ns/tree/row (best of {a.repeat})")
    print(f"  (DMatrix construction from numpy, not included: {build:.3f} s)")

    best = float("inf")
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        ipred = booster.inplace_predict(x, missing=np.nan)
        best = min(best, time.perf_counter() - t0)
    print(f"xgboost Booster.inplace_predict(numpy float64), 1 thread: {rows / best:,.0f} rows/s, "
          f"{best * 1e9 / (rows * trees):.2f} ns/tree/row (best of {a.repeat})")
    if np.abs(ipred - pred).max() > 1e-6:
        raise SystemExit("inplace_predict and predict disagree")

    with open(f"{a.dir}/kiln_pred.json") as f:
        kiln = np.array(json.load(f))
    diff = np.abs(kiln - pred[: len(kiln)]).max()
    print(f"  max |Kiln - XGBoost| over the first {len(kiln)} rows: {diff:.3g}")
    if diff > 1e-6:
        raise SystemExit("predictions differ by more than 1e-6")


if __name__ == "__main__":
    main()
