#!/usr/bin/python3
"""SciPy peer of Kiln's drift benchmarks (internal/drift, BenchmarkDrift*).

    drift_scipy.py time [--columns 100] [--rows 1000000]
        Generate the benchmark's shapes with numpy (fixed seed) from the
        distributions of internal/drift/benchdata: column c's reference is
        normal with mean c%7-3 and standard deviation 1+(c%3)/2, its current
        data the same shifted by (0, 0.02, 0.05, 0.1, 0.2)[c%5] standard
        deviations. Time scipy.stats.ks_2samp + scipy.stats.wasserstein_distance
        on each column (1M vs 1M) on one thread, generation excluded; print
        JSON with the total seconds.
    drift_scipy.py stats DIR
        SciPy's statistics on DIR/ref_NNN.f64 and DIR/cur_NNN.f64 (written by
        `go run ./scripts/bench/drift_data -dir DIR` or by the Go test
        TestBenchmarkDataAgainstSciPy), as JSON.
    drift_scipy.py check DIR
        Compare DIR/go.json (drift_data's Kiln statistics) with SciPy's on the
        same files; print the differences, exit 1 if any exceeds 1e-6
        (absolute or relative, whichever is looser).

Run it with Debian's interpreter (/usr/bin/python3 with python3-scipy).
"""
import glob
import json
import os
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy import stats  # noqa: E402

SHIFTS = (0.0, 0.02, 0.05, 0.1, 0.2)


def params(c):
    mean = float(c % 7) - 3
    sd = 1 + (c % 3) * 0.5
    return mean, sd, SHIFTS[c % len(SHIFTS)] * sd


def one_cpu():
    """Pin the process to one CPU, as the Go benchmark runs with -cpu 1."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
        return cpus[-1]
    except (AttributeError, OSError):
        return None


def scipy_stats(ref, cur):
    r = stats.ks_2samp(ref, cur)
    w = stats.wasserstein_distance(ref, cur)
    return {
        "ks": float(r.statistic),
        "ks_pvalue": float(r.pvalue),
        "wasserstein": float(w),
        # Evidently's normed Wasserstein distance.
        "normed": float(w / max(np.std(ref), 0.001)),
    }


def cmd_time(columns, rows):
    cpu = one_cpu()
    rng = np.random.default_rng(20261203)
    total, per = 0.0, []
    for c in range(columns):
        mean, sd, shift = params(c)
        ref = rng.normal(mean, sd, rows)
        cur = rng.normal(mean + shift, sd, rows)
        t0 = time.perf_counter()
        stats.ks_2samp(ref, cur)
        stats.wasserstein_distance(ref, cur)
        dt = time.perf_counter() - t0
        total += dt
        per.append(round(dt, 4))
    json.dump({"peer": "scipy.stats.ks_2samp + wasserstein_distance", "scipy": scipy.__version__,
               "numpy": np.__version__, "columns": columns, "rows": rows, "cpu": cpu,
               "seconds": round(total, 3), "per_column": per}, sys.stdout)
    print()


def load(d, c):
    ref = np.fromfile(os.path.join(d, f"ref_{c:03d}.f64"), dtype="<f8")
    cur = np.fromfile(os.path.join(d, f"cur_{c:03d}.f64"), dtype="<f8")
    return ref, cur


def columns_in(d):
    return sorted(int(os.path.basename(p)[4:7]) for p in glob.glob(os.path.join(d, "ref_*.f64")))


def cmd_stats(d):
    out = []
    for c in columns_in(d):
        s = scipy_stats(*load(d, c))
        s["column"] = c
        out.append(s)
    json.dump(out, sys.stdout)
    print()


def cmd_check(d):
    with open(os.path.join(d, "go.json")) as f:
        kiln = {c["column"]: c for c in json.load(f)}
    worst, bad = 0.0, False
    for c in columns_in(d):
        if c not in kiln:
            continue
        s = scipy_stats(*load(d, c))
        for key in ("ks", "ks_pvalue", "wasserstein", "normed"):
            g, w = kiln[c][key], s[key]
            diff = abs(g - w)
            rel = diff / abs(w) if w else diff
            err = min(diff, rel)
            worst = max(worst, err)
            flag = "" if err <= 1e-6 else "  <-- differs"
            bad = bad or err > 1e-6
            print(f"column {c:3d} {key:11s} kiln {g:.17g}  scipy {w:.17g}  diff {diff:.3g}{flag}")
        k = kiln[c]
        print(f"column {c:3d} streamed normed {k['streamed_normed']:.10g} ± {k['streamed_bound']:.2g} "
              f"(exact {s['normed']:.10g}, off by {abs(k['streamed_normed'] - s['normed']):.2g})")
    print(f"worst difference {worst:.3g} (absolute or relative, whichever is smaller)")
    sys.exit(1 if bad else 0)


def main(argv):
    if len(argv) >= 1 and argv[0] == "time":
        columns, rows = 100, 1_000_000
        args = argv[1:]
        while args:
            if args[0] == "--columns":
                columns, args = int(args[1]), args[2:]
            elif args[0] == "--rows":
                rows, args = int(args[1]), args[2:]
            else:
                raise SystemExit(__doc__)
        cmd_time(columns, rows)
    elif len(argv) == 2 and argv[0] == "stats":
        cmd_stats(argv[1])
    elif len(argv) == 2 and argv[0] == "check":
        cmd_check(argv[1])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
