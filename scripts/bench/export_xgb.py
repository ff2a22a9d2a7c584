#!/usr/bin/python3
"""XGBoost's side of the edge-export benchmark (scripts/bench/export_bench.sh).

    export_xgb.py latency DIR [--calls N] [--warmup N]
        XGBoost's own one-row prediction of the benchmark's model: DIR/bundle/model.json
        (the Kiln bundle's estimator file, XGBoost JSON) loaded into a Booster with
        nthread=1, then Booster.inplace_predict on a 1-row float32 NumPy array per call,
        cycling through the 1,000 rows of DIR/rows.csv (the rows Kiln's one-row benchmark
        cycles through). Each call is timed with time.perf_counter_ns; prints one JSON line:
        median, mean and p99 in microseconds, the calls, and the largest difference from
        Kiln's predictions of the same rows (DIR/preds.txt).
    export_xgb.py cold DIR
        The cold-start peer: import NumPy and XGBoost, load the model, read DIR/row.csv,
        predict it and print the probability (what the exported executable does, timed from
        outside by hyperfine).

Debian bookworm's python3-xgboost (1.7.4) and python3-numpy; run with OMP_NUM_THREADS=1.
"""
import sys


def cold(d):
    import numpy as np
    import xgboost as xgb

    b = xgb.Booster(model_file=f"{d}/bundle/model.json")
    b.set_param({"nthread": 1})
    x = np.genfromtxt(f"{d}/row.csv", delimiter=",", skip_header=1, ndmin=2)
    print(float(b.inplace_predict(x)[0]))


def latency(d, calls, warmup):
    import json
    import statistics
    import time

    import numpy as np
    import xgboost as xgb

    b = xgb.Booster(model_file=f"{d}/bundle/model.json")
    b.set_param({"nthread": 1})
    x = np.genfromtxt(f"{d}/rows.csv", delimiter=",", skip_header=1, ndmin=2)
    rows = [np.ascontiguousarray(x[i : i + 1], dtype=np.float32) for i in range(len(x))]
    kiln = np.loadtxt(f"{d}/preds.txt")
    got = np.array([float(b.inplace_predict(r)[0]) for r in rows])
    diff = float(np.max(np.abs(got - kiln)))
    predict = b.inplace_predict
    n = len(rows)
    for i in range(warmup):
        predict(rows[i % n])
    times = [0] * calls
    clock = time.perf_counter_ns
    for i in range(calls):
        r = rows[i % n]
        t0 = clock()
        predict(r)
        times[i] = clock() - t0
    times.sort()
    print(json.dumps({
        "median_us": statistics.median(times) / 1e3,
        "mean_us": statistics.fmean(times) / 1e3,
        "p99_us": times[int(0.99 * (calls - 1))] / 1e3,
        "calls": calls,
        "max_abs_diff_vs_kiln": diff,
        "xgboost": xgb.__version__,
        "numpy": np.__version__,
    }))


def main(argv):
    if len(argv) < 3 or argv[1] not in ("latency", "cold"):
        sys.exit(__doc__)
    d = argv[2]
    if argv[1] == "cold":
        cold(d)
        return
    calls, warmup = 20000, 2000
    args = argv[3:]
    while args:
        flag, val, args = args[0], int(args[1]), args[2:]
        if flag == "--calls":
            calls = val
        elif flag == "--warmup":
            warmup = val
        else:
            sys.exit(f"unknown flag {flag}")
    latency(d, calls, warmup)


if __name__ == "__main__":
    main(sys.argv)
