#!/usr/bin/python3
"""Generates the XGBoost interop fixtures of internal/xgbjson and internal/model.

Usage: /usr/bin/python3 gen.py OUTDIR      (the committed files: gen.py internal/xgbjson/testdata)
       /usr/bin/python3 gen.py --predict MODEL.json DATA.json   (prints XGBoost's predictions as JSON)

Trains three small gbtree models with XGBoost 1.7 (tree_method=hist, one thread, fixed seed) on data with
missing values, so default directions are learned:
  binary.json      binary:logistic, base_score 0.3, 12 trees depth 4, features unnamed
  regression.json  reg:squarederror, base_score 2, 8 trees depth 3, feature names f_a..f_f
  multiclass.json  multi:softprob, num_class 3, base_score 0.2, 8 rounds (24 trees) depth 4,
                   feature names f_a..f_f
and writes data.json: test rows (null for NaN; including rows sitting exactly on split thresholds and on
float64 values just below them that round to the threshold in float32) with XGBoost's margins and
predictions for every model; the multi-class ones are 3 per row, row-major.
"""
import json
import sys

import numpy as np
import xgboost as xgb

NF = 6
NAMES = ["f_a", "f_b", "f_c", "f_d", "f_e", "f_f"]


def make_data(rng, n):
    x = rng.normal(size=(n, NF))
    x[:, 3] = np.round(x[:, 3] * 2)  # a few distinct values, so thresholds get hit exactly
    x[rng.random(x.shape) < 0.15] = np.nan
    return x


def tojson(x):
    return [[None if np.isnan(v) else float(v) for v in row] for row in x]


def fromjson(rows):
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)


def threshold_rows(booster, rng, base):
    """Rows of base with one feature set to a split threshold (as float32), or to the float64 just below it."""
    model = json.loads(booster.save_raw("json"))
    rows = []
    for tree in model["learner"]["gradient_booster"]["model"]["trees"][:3]:
        for node, left in enumerate(tree["left_children"]):
            if left < 0:
                continue
            f, cond = tree["split_indices"][node], float(np.float32(tree["split_conditions"][node]))
            for v in (cond, np.nextafter(cond, -np.inf)):
                row = base[rng.integers(len(base))].copy()
                row[f] = v
                rows.append(row)
    return np.array(rows)


def flat(v):
    """A prediction array as a list, a multi-class one (rows x classes) row-major."""
    return [float(x) for x in np.ravel(v)]


def predict(booster, x):
    d = xgb.DMatrix(x, missing=np.nan, nthread=1)
    margin = booster.predict(d, output_margin=True)
    pred = booster.predict(d)
    return flat(margin), flat(pred)


def main(out):
    rng = np.random.default_rng(7)
    x = make_data(rng, 600)
    logit = 1.5 * np.nan_to_num(x[:, 0]) - np.nan_to_num(x[:, 1], nan=1.0) + 0.5 * np.nan_to_num(x[:, 3])
    yb = (logit + rng.logistic(size=len(x)) * 0.5 > 0).astype(float)
    yr = 2 + np.nan_to_num(x[:, 2], nan=-1.0) * 3 + np.nan_to_num(x[:, 4]) ** 2 + rng.normal(size=len(x)) * 0.1

    common = {"tree_method": "hist", "nthread": 1, "seed": 1, "eta": 0.3}
    bb = xgb.train({**common, "objective": "binary:logistic", "base_score": 0.3, "max_depth": 4},
                   xgb.DMatrix(x, label=yb, missing=np.nan), num_boost_round=12)
    br = xgb.train({**common, "objective": "reg:squarederror", "base_score": 2.0, "max_depth": 3},
                   xgb.DMatrix(x, label=yr, missing=np.nan, feature_names=NAMES), num_boost_round=8)
    bb.save_model(f"{out}/binary.json")
    br.save_model(f"{out}/regression.json")
    # Multi-class labels from their own generator, so the draws above and below are those of the two
    # original fixtures (their rows stay the same).
    rm = np.random.default_rng(8)
    scores = np.stack([np.nan_to_num(x[:, 0], nan=1.0), np.nan_to_num(x[:, 1]) - 0.3 * np.nan_to_num(x[:, 3]),
                       0.8 * np.nan_to_num(x[:, 2], nan=-1.0) + 0.2], axis=1)
    ym = np.argmax(scores + rm.gumbel(size=scores.shape) * 0.5, axis=1).astype(float)
    bm = xgb.train({**common, "objective": "multi:softprob", "num_class": 3, "base_score": 0.2, "max_depth": 4},
                   xgb.DMatrix(x, label=ym, missing=np.nan, feature_names=NAMES), num_boost_round=8)
    bm.save_model(f"{out}/multiclass.json")

    test = make_data(rng, 80)
    test = np.vstack([test, threshold_rows(bb, rng, test), threshold_rows(br, rng, test),
                      np.full((1, NF), np.nan)])
    test = np.vstack([test, threshold_rows(bm, rng, test)])
    bmargin, bp = predict(bb, test)
    # Feature names must match the regression and multi-class models'.
    d = xgb.DMatrix(test, missing=np.nan, nthread=1, feature_names=NAMES)
    rmargin, rp = flat(br.predict(d, output_margin=True)), flat(br.predict(d))
    mmargin, mp = flat(bm.predict(d, output_margin=True)), flat(bm.predict(d))
    with open(f"{out}/data.json", "w") as f:
        json.dump({"xgboost_version": xgb.__version__, "features": tojson(test),
                   "binary": {"margin": bmargin, "prediction": bp},
                   "regression": {"margin": rmargin, "prediction": rp},
                   "multiclass": {"margin": mmargin, "prediction": mp}}, f)
        f.write("\n")


def predict_main(model_path, data_path):
    booster = xgb.Booster(model_file=model_path)
    with open(data_path) as f:
        x = fromjson(json.load(f)["features"])
    d = xgb.DMatrix(x, missing=np.nan, nthread=1, feature_names=booster.feature_names)
    margin, pred = predict(booster, x) if booster.feature_names is None else (
        flat(booster.predict(d, output_margin=True)), flat(booster.predict(d)))
    json.dump({"margin": margin, "prediction": pred}, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--predict":
        predict_main(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 2:
        main(sys.argv[1])
    else:
        sys.exit(__doc__)
