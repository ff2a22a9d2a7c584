#!/usr/bin/python3
"""GBDT parity benchmark: XGBoost `hist` on the data Kiln's BenchmarkGBDTTrain uses.

Reads the files written by `go run ./scripts/bench/gbdt_data -out DIR` (format in
internal/gbdt/gbdtdata: "KGBD", uint32 rows, uint32 features, float64 columns, float64
labels), trains XGBoost with Kiln's defaults (binary:logistic, 100 rounds, eta 0.3,
max_depth 6, lambda 1, min_child_weight 1, max_bin 256, base_score 0.5) and prints, per
data set, the holdout AUC and the best training time over --repeat runs, in the same
shape as `go test -bench` lines so both can be read side by side.

Usage: /usr/bin/python3 scripts/bench/gbdt_parity.py DIR [--nthread N] [--repeat R]
"""
import argparse
import os
import struct
import sys
import time

try:
    import numpy as np
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score
except ImportError as e:  # pragma: no cover
    sys.exit(f"gbdt_parity: {e}; run it with /usr/bin/python3 (Debian python3-xgboost, python3-sklearn)")


def read(path):
    with open(path, "rb") as f:
        if f.read(4) != b"KGBD":
            sys.exit(f"gbdt_parity: {path}: not a KGBD file")
        rows, feats = struct.unpack("<II", f.read(8))
        data = np.fromfile(f, dtype="<f8")
    if data.size != rows * (feats + 1):
        sys.exit(f"gbdt_parity: {path}: {data.size} values, want {rows * (feats + 1)}")
    x = data[: rows * feats].reshape(feats, rows).T.copy()
    return x, data[rows * feats:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--nthread", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sets", default="breast_cancer,synthetic")
    args = ap.parse_args()
    params = {
        "objective": "binary:logistic", "tree_method": "hist", "eta": 0.3, "max_depth": 6,
        "lambda": 1.0, "min_child_weight": 1.0, "gamma": 0.0, "max_bin": 256,
        "base_score": 0.5, "nthread": args.nthread, "seed": 0, "verbosity": 0,
    }
    print(f"xgboost {xgb.__version__}, nthread {args.nthread}")
    for name in args.sets.split(","):
        xtr, ytr = read(os.path.join(args.dir, f"{name}_train.bin"))
        xte, yte = read(os.path.join(args.dir, f"{name}_test.bin"))
        best = None
        for _ in range(args.repeat):
            # Timed like Kiln's Train: binning (DMatrix construction) plus boosting.
            t0 = time.perf_counter()
            dtrain = xgb.DMatrix(xtr, label=ytr, missing=np.nan, nthread=args.nthread)
            bst = xgb.train(params, dtrain, num_boost_round=100)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        auc = roc_auc_score(yte, bst.predict(xgb.DMatrix(xte, missing=np.nan)))
        print(f"XGBoostHist/{name}\t{args.repeat}\t{best * 1e9:.0f} ns/op\t{auc:.4f} AUC\t{args.nthread} threads")


if __name__ == "__main__":
    main()
