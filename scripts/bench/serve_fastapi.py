#!/usr/bin/python3
"""The Python peer of the serving benchmark (scripts/bench/serve_bench.sh): the same
XGBoost model that Kiln serves, behind a plain FastAPI app, written as a user would.

    KILN_BENCH_XGB=DIR/xgb-v1.json uvicorn serve_fastapi:app --workers 1
        POST /v1/models/{name}:predict  {"instances": [{"f0": 0.1, ...}, ...]}
        -> {"predictions": [...]}

The helpers below the app prepare the benchmark (run with /usr/bin/python3):

    serve_fastapi.py train DIR      fit DIR/xgb-v1.json and DIR/xgb-v2.json (XGBoost JSON,
                                    100 trees, depth 6, features f0..f29; v2 with other
                                    seeds and row subsampling: the canary) on DIR/x.f64,
                                    DIR/y.f64 (written by scoregen data)
    serve_fastapi.py bodies DIR N   write DIR/bodies.txt: one request body per line, one
                                    instance each, from the last N rows of DIR/x.f64
    serve_fastapi.py check DIR URL  predict the first bodies with the booster in this
                                    process and through URL; print the largest difference
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from typing import Dict, List  # noqa: E402

import numpy as np  # noqa: E402
import xgboost as xgb  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from pydantic import BaseModel  # noqa: E402

FEATURES = [f"f{j}" for j in range(30)]


class PredictRequest(BaseModel):
    instances: List[Dict[str, float]]


class PredictResponse(BaseModel):
    predictions: List[float]


app = FastAPI()
booster = None


@app.on_event("startup")
def load_model():
    global booster
    booster = xgb.Booster(model_file=os.environ.get("KILN_BENCH_XGB", "xgb.json"))
    booster.set_param({"nthread": 1})


@app.post("/v1/models/{name}:predict", response_model=PredictResponse)
async def predict(name: str, req: PredictRequest):
    x = np.array([[inst[f] for f in FEATURES] for inst in req.instances], dtype=np.float64)
    return PredictResponse(predictions=booster.inplace_predict(x).tolist())


# --- benchmark preparation (not part of the app) ---------------------------------------


def _load(d):
    x = np.fromfile(f"{d}/x.f64", dtype="<f8").reshape(-1, len(FEATURES))
    y = np.fromfile(f"{d}/y.f64", dtype="<f8")
    return x, y


def _train(d):
    x, y = _load(d)
    dm = xgb.DMatrix(x, label=y, feature_names=FEATURES)
    base = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "tree_method": "hist", "nthread": 2}
    for version, extra in ((1, {"seed": 1}), (2, {"seed": 2, "subsample": 0.8, "colsample_bytree": 0.8})):
        b = xgb.train({**base, **extra}, dm, num_boost_round=100)
        b.save_model(f"{d}/xgb-v{version}.json")


def _bodies(d, n):
    import json
    x, _ = _load(d)
    with open(f"{d}/bodies.txt", "w") as f:
        for row in x[-n:]:
            f.write(json.dumps({"instances": [{k: float(v) for k, v in zip(FEATURES, row)}]}) + "\n")


def _check(d, url):
    import json
    import urllib.request
    b = xgb.Booster(model_file=f"{d}/xgb-v1.json")
    worst = 0.0
    with open(f"{d}/bodies.txt") as f:
        bodies = [next(f) for _ in range(50)]
    for body in bodies:
        inst = json.loads(body)["instances"]
        want = b.inplace_predict(np.array([[i[k] for k in FEATURES] for i in inst]))
        req = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
        got = json.load(urllib.request.urlopen(req))["predictions"]
        worst = max(worst, float(np.max(np.abs(np.array(got) - want))))
    print(f"{worst:.3g}")


if __name__ == "__main__":
    import sys
    cmd = sys.argv[1]
    if cmd == "train":
        _train(sys.argv[2])
    elif cmd == "bodies":
        _bodies(sys.argv[2], int(sys.argv[3]))
    elif cmd == "check":
        _check(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd!r}")
