#!/usr/bin/python3
"""Peers of the batch-scoring benchmark (scripts/bench/score_bench.sh).

    score_peers.py train DIR   fit the models on the first 200k rows of DIR/x.f64, DIR/y.f64:
                               DIR/logistic.json (Kiln's logistic format, from scikit-learn's
                               LogisticRegression) and DIR/xgb.json (XGBoost JSON, 100 trees,
                               depth 6, feature names f0..f29)
    score_peers.py time DIR    time the peers in memory on all rows of DIR/x.f64, one thread:
                               XGBoost Booster.inplace_predict (nthread=1) and scikit-learn
                               predict_proba with the same logistic weights; prints JSON
"""
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

FEATURES = 30
TRAIN_ROWS = 200_000


def load(d):
    x = np.fromfile(f"{d}/x.f64", dtype="<f8").reshape(-1, FEATURES)
    y = np.fromfile(f"{d}/y.f64", dtype="<f8")
    return x, y


def train(d):
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression
    x, y = load(d)
    x, y = x[:TRAIN_ROWS], y[:TRAIN_ROWS]
    names = [f"f{j}" for j in range(FEATURES)]
    lr = LogisticRegression(max_iter=1000).fit(x, y)
    with open(f"{d}/logistic.json", "w") as f:
        json.dump({"type": "logistic", "features": names, "weights": [float(w) for w in lr.coef_[0]],
                   "intercept": float(lr.intercept_[0])}, f)
    dm = xgb.DMatrix(x, label=y, feature_names=names)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "tree_method": "hist",
                         "nthread": 2, "seed": 1}, dm, num_boost_round=100)
    booster.save_model(f"{d}/xgb.json")


def best_of(n, f):
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def timing(d):
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression
    x, _ = load(d)
    rows = x.shape[0]
    booster = xgb.Booster(model_file=f"{d}/xgb.json")
    booster.set_param({"nthread": 1})
    xgb_s = best_of(2, lambda: booster.inplace_predict(x))
    with open(f"{d}/logistic.json") as f:
        m = json.load(f)
    lr = LogisticRegression()
    lr.classes_ = np.array([0.0, 1.0])
    lr.coef_ = np.array([m["weights"]])
    lr.intercept_ = np.array([m["intercept"]])
    sk_s = best_of(3, lambda: lr.predict_proba(x))
    print(json.dumps({"rows": rows, "xgboost_rows_per_s": rows / xgb_s, "sklearn_rows_per_s": rows / sk_s,
                      "xgboost_version": xgb.__version__}))


if __name__ == "__main__":
    {"train": train, "time": timing}[sys.argv[1]](sys.argv[2])
