#!/usr/bin/python3
"""Kiln trainer on XGBoost and scikit-learn, under Kiln's container contract.

Inputs (read-only) in $KILN_IN (default /kiln/in): schema.json, params.json
and train.csv / valid.csv, which Kiln writes because the image carries the
label io.kiln.inputs=csv (Debian has no pyarrow to read the Parquet files).
Outputs in $KILN_OUT (default /kiln/out): model.json and metrics.json,
written under temporary names and renamed. Progress goes to stdout as
KILN_PROGRESS lines, the log to stderr. Exit code 2 means bad input.

Algorithms:
  gbdt      xgboost.train with tree_method "hist" and objective
            binary:logistic; model.json is XGBoost's JSON model format.
            params, named and defaulted as in XGBoost: n_estimators (100;
            alias trees), learning_rate (0.3; alias eta), max_depth (6),
            min_child_weight (1), lambda (1; alias l2), alpha (0; alias l1),
            gamma (0), subsample (1), colsample_bytree (1), max_bin (256),
            early_stopping_rounds (0 = off; on the validation rows), threads
            (0 = the container's CPU limit, rounded up).
  logistic  scikit-learn LogisticRegression (lbfgs), minimising mean log-loss
            + l2/2 * |w|^2 like Kiln's reference trainer; model.json is Kiln's
            logistic JSON. params: l2 (1e-4), max_iter (100), tol (1e-8).
"""

import json
import math
import os
import sys
import time
import warnings

IN = os.environ.get("KILN_IN", "/kiln/in")
OUT = os.environ.get("KILN_OUT", "/kiln/out")

# The root file system is read-only: anything that wants a home, a cache or
# a temporary file (matplotlib, joblib, tempfile) gets a directory under OUT.
_scratch = os.environ.get("TMPDIR") or os.path.join(OUT, ".tmp")
for _var in ("HOME", "TMPDIR", "MPLCONFIGDIR", "JOBLIB_TEMP_FOLDER", "XDG_CACHE_HOME"):
    os.environ.setdefault(_var, _scratch)
os.makedirs(_scratch, exist_ok=True)

VERSION = "kiln-xgboost/1"
GBDT_PARAMS = {
    "n_estimators": 100, "learning_rate": 0.3, "max_depth": 6, "min_child_weight": 1.0,
    "lambda": 1.0, "alpha": 0.0, "gamma": 0.0, "subsample": 1.0, "colsample_bytree": 1.0,
    "max_bin": 256, "early_stopping_rounds": 0, "threads": 0,
}
GBDT_ALIASES = {"trees": "n_estimators", "eta": "learning_rate", "l2": "lambda", "l1": "alpha"}
LOGISTIC_PARAMS = {"l2": 1e-4, "max_iter": 100, "tol": 1e-8}
INT_PARAMS = {"n_estimators", "max_depth", "max_bin", "threads", "max_iter", "early_stopping_rounds"}


class BadInput(Exception):
    """Input the trainer cannot use: exit code 2."""


def log(msg):
    print(f"xgboost-trainer: {msg}", file=sys.stderr, flush=True)


def progress(pct, msg):
    print("KILN_PROGRESS " + json.dumps({"pct": round(pct, 1), "msg": msg}), flush=True)


def read_json(name):
    path = os.path.join(IN, name)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise BadInput(f"reading {path}: {e}") from e


def write_atomic(name, write):
    """Calls write(tmp_path), then renames tmp_path to OUT/name."""
    root, ext = os.path.splitext(name)
    tmp = os.path.join(OUT, f".{root}.tmp{ext}")
    write(tmp)
    os.replace(tmp, os.path.join(OUT, name))


def write_json(name, obj):
    def write(path):
        with open(path, "w") as f:
            json.dump(obj, f, allow_nan=False)
    write_atomic(name, write)


def cpu_limit():
    """The cgroup v2 CPU limit rounded up, else the CPUs we may run on."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, len(os.sched_getaffinity(0)))


def parse_params(algorithm, given):
    defaults = {"gbdt": GBDT_PARAMS, "logistic": LOGISTIC_PARAMS}.get(algorithm)
    if defaults is None:
        raise BadInput(f"params.json: unsupported algorithm {algorithm!r} (gbdt, logistic)")
    params = dict(defaults)
    aliases = GBDT_ALIASES if algorithm == "gbdt" else {}
    for key, value in (given or {}).items():
        key = aliases.get(key, key)
        if key not in defaults:
            raise BadInput(f"params.json: unknown parameter {key!r} for algorithm {algorithm} "
                           f"(known: {', '.join(sorted(defaults))})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BadInput(f"params.json: params.{key} must be a number, got {value!r}")
        if key in INT_PARAMS:
            if value != int(value):
                raise BadInput(f"params.json: params.{key} must be a whole number, got {value!r}")
            value = int(value)
        if value < 0:
            raise BadInput(f"params.json: params.{key} must be >= 0, got {value!r}")
        params[key] = value
    if algorithm == "gbdt":
        if params["n_estimators"] < 1:
            raise BadInput("params.json: params.n_estimators must be at least 1")
        if not 1 <= params["max_depth"] <= 31:
            raise BadInput(f"params.json: params.max_depth must be from 1 to 31, got {params['max_depth']}")
        if not 0 < params["learning_rate"] <= 1:
            raise BadInput(f"params.json: params.learning_rate must be in (0, 1], got {params['learning_rate']}")
        for key in ("subsample", "colsample_bytree"):
            if not 0 < params[key] <= 1:
                raise BadInput(f"params.json: params.{key} must be in (0, 1], got {params[key]}")
        if params["max_bin"] < 2:
            raise BadInput("params.json: params.max_bin must be at least 2")
    elif params["max_iter"] < 1:
        raise BadInput("params.json: params.max_iter must be at least 1")
    return params


def read_csv(path):
    """Reads a CSV of numbers (empty fields are missing) as (columns, matrix):
    with pandas when it is installed (fast), else with numpy."""
    import numpy as np
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        df = pd.read_csv(path, dtype="float64", na_values=[""], keep_default_na=False)
        return list(df.columns), df.to_numpy()
    with open(path) as f:
        header = f.readline().rstrip("\r\n").split(",")
        if header == [""]:
            raise ValueError("no header line")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Empty input file" for no rows
            x = np.genfromtxt(f, delimiter=",", dtype="float64", invalid_raise=True, ndmin=2,
                              missing_values="", filling_values=np.nan)
    return header, x.reshape(-1, len(header))


def load_split(name, features, target):
    path = os.path.join(IN, name)
    try:
        columns, x = read_csv(path)
    except (OSError, ValueError) as e:
        raise BadInput(f"reading {path}: {e} (does the image carry the label io.kiln.inputs=csv?)") from e
    index = {c: j for j, c in enumerate(columns)}
    missing = [c for c in features + [target] if c not in index]
    if missing:
        raise BadInput(f"{path}: missing columns {missing}")
    y = x[:, index[target]]
    if len(y) and not ((y == 0) | (y == 1)).all():
        raise BadInput(f"{path}: target {target!r} must be 0 or 1 for a binary task")
    return x[:, [index[c] for c in features]], y


def split_metrics(y, p):
    from sklearn.metrics import log_loss, roc_auc_score
    if len(y) == 0:
        return {}
    m = {"logloss": float(log_loss(y, p, labels=[0, 1]))}
    if 0 < y.sum() < len(y):
        m["auc"] = float(roc_auc_score(y, p))
    return m


def train_gbdt(params, seed, features, xt, yt, xv, yv):
    import xgboost as xgb

    nthread = params["threads"] or cpu_limit()
    booster_params = {
        "objective": "binary:logistic", "tree_method": "hist", "eval_metric": "logloss",
        "max_depth": params["max_depth"], "eta": params["learning_rate"],
        "min_child_weight": params["min_child_weight"], "lambda": params["lambda"],
        "alpha": params["alpha"], "gamma": params["gamma"], "subsample": params["subsample"],
        "colsample_bytree": params["colsample_bytree"], "max_bin": params["max_bin"],
        "seed": seed, "nthread": nthread, "verbosity": 1,
    }
    dtrain = xgb.DMatrix(xt, label=yt, feature_names=features)
    dvalid = xgb.DMatrix(xv, label=yv, feature_names=features) if len(yv) else None
    trees = params["n_estimators"]
    stop = params["early_stopping_rounds"]
    if stop and dvalid is None:
        raise BadInput("params.early_stopping_rounds needs validation rows (split.valid > 0)")

    class Progress(xgb.callback.TrainingCallback):
        def __init__(self):
            self.last = -1

        def after_iteration(self, model, epoch, evals_log):
            done = epoch + 1
            pct = 5 + 90 * done / trees
            if int(pct) // 5 != self.last or done == trees:
                self.last = int(pct) // 5
                progress(pct, f"tree {done}/{trees}")
            return False

    log(f"gbdt: xgboost {xgb.__version__} hist, {len(yt)} train rows, {len(yv)} valid rows, "
        f"{len(features)} features, {trees} trees, depth {params['max_depth']}, "
        f"eta {params['learning_rate']}, {nthread} threads")
    booster = xgb.train(booster_params, dtrain, num_boost_round=trees, callbacks=[Progress()],
                        evals=[(dvalid, "valid")] if stop else (), early_stopping_rounds=stop or None,
                        verbose_eval=False)
    if stop:
        # Keep the trees up to the best round only, so that model.json
        # predicts what the metrics describe.
        booster = booster[: booster.best_iteration + 1]
        log(f"early stopping: best round {booster.num_boosted_rounds()} of {trees}")
    write_atomic("model.json", booster.save_model)
    pt = booster.predict(dtrain)
    pv = booster.predict(dvalid) if dvalid is not None else []
    return booster.num_boosted_rounds(), pt, pv


def train_logistic(params, seed, features, xt, yt, xv, yv):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    if np.isnan(xt).any() or (len(yv) and np.isnan(xv).any()):
        raise BadInput("logistic regression needs complete features: impute the missing values in preprocess")
    progress(10, "fitting logistic regression")
    n = len(yt)
    if params["l2"] > 0:
        clf = LogisticRegression(C=1 / (params["l2"] * n), max_iter=params["max_iter"], tol=params["tol"], random_state=seed)
    else:
        clf = LogisticRegression(penalty=None, max_iter=params["max_iter"], tol=params["tol"], random_state=seed)
    log(f"logistic: scikit-learn lbfgs, {n} train rows, {len(yv)} valid rows, {len(features)} features, "
        f"l2={params['l2']} max_iter={params['max_iter']}")
    clf.fit(xt, yt)
    model = {"type": "logistic", "features": features,
             "weights": [float(w) for w in clf.coef_[0]], "intercept": float(clf.intercept_[0])}
    write_json("model.json", model)
    pt = clf.predict_proba(xt)[:, 1]
    pv = clf.predict_proba(xv)[:, 1] if len(yv) else []
    return int(clf.n_iter_[0]), pt, pv


def main():
    start = time.monotonic()
    progress(0, "loading")
    schema, spec = read_json("schema.json"), read_json("params.json")
    if schema.get("task", "binary") != "binary":
        raise BadInput(f"schema.json: unsupported task {schema.get('task')!r} (binary)")
    features, target = list(schema["features"]), schema["target"]
    algorithm = spec.get("algorithm")
    params = parse_params(algorithm, spec.get("params"))
    seed = int(spec.get("seed", 42))

    import sklearn
    import xgboost

    xt, yt = load_split("train.csv", features, target)
    xv, yv = load_split("valid.csv", features, target)
    if len(yt) == 0:
        raise BadInput("train.csv has no rows")
    progress(5, f"loaded {len(yt)} train and {len(yv)} valid rows")

    fit = train_gbdt if algorithm == "gbdt" else train_logistic
    iterations, pt, pv = fit(params, seed, features, xt, yt, xv, yv)
    metrics = {
        "train": split_metrics(yt, pt), "valid": split_metrics(yv, pv), "iterations": iterations,
        "trainer_version": f"{VERSION} xgboost {xgboost.__version__} scikit-learn {sklearn.__version__}",
    }
    write_json("metrics.json", metrics)
    log(f"done in {time.monotonic() - start:.2f}s: train {metrics['train']}, valid {metrics['valid']}")
    progress(100, "done")


if __name__ == "__main__":
    try:
        main()
    except BadInput as e:
        log(f"bad input: {e}")
        sys.exit(2)
