#!/usr/bin/python3
"""Golden cases for internal/drift, computed by SciPy.

    gen_scipy.py OUT.json      write the golden cases (go test ./internal/drift -update runs this)
    gen_scipy.py --live        read cases from stdin (JSON), write SciPy's answers to stdout

Inputs are generated here with a fixed seed and rounded to a few decimals so
that the committed file stays small (rounding also makes ties). Non-finite
floats are written as the strings "inf", "-inf" and "nan".
"""
import json
import math
import sys
import warnings

import numpy as np
import scipy
from scipy import special, stats
from scipy.spatial import distance

warnings.simplefilter("ignore")


def enc(x):
    """A float (or nested list of floats) as JSON-safe values."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return [enc(v) for v in x]
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def dec(x):
    if isinstance(x, list):
        return [dec(v) for v in x]
    if isinstance(x, str):
        return float(x)
    return float(x)


def ks(a, b):
    r = stats.ks_2samp(a, b)
    return {"statistic": enc(r.statistic), "pvalue": enc(r.pvalue)}


def wnorm(ref, cur):
    # Evidently's normed Wasserstein distance (wasserstein_distance_norm.py).
    norm = max(np.std(ref), 0.001)
    return stats.wasserstein_distance(ref, cur) / norm


def golden():
    rng = np.random.RandomState(20261202)
    out = {"scipy": scipy.__version__, "numpy": np.__version__}

    def normal(n, loc=0.0, scale=1.0, dec=4):
        return np.round(rng.normal(loc, scale, n), dec)

    # ks_2samp: exact regime (max(n1, n2) <= 10000) and asymptotic regime.
    cases = []

    def add(name, a, b):
        a, b = np.asarray(a, float), np.asarray(b, float)
        c = {"name": name, "a": enc(a), "b": enc(b)}
        c.update(ks(a, b))
        cases.append(c)

    add("tiny equal", [1, 2, 3], [4, 5, 6])
    add("tiny identical", [1, 2, 3], [1, 2, 3])
    add("one each", [0.5], [1.5])
    add("one vs many", [0.0], normal(20))
    add("ties across samples", [1, 1, 2, 2, 3, 3, 3], [1, 2, 2, 2, 4])
    add("all tied", [5, 5, 5, 5], [5, 5])
    add("unsorted negative", [3, -1, 2, -7, 0.5, 9], [-2, 8, 1, 1, 4])
    for n1, n2, shift, d in [(10, 10, 0.0, 4), (10, 10, 1.0, 4), (25, 40, 0.3, 4), (40, 25, 0.3, 4),
                              (100, 100, 0.2, 1), (100, 37, 0.0, 0), (500, 300, 0.1, 2), (300, 500, 0.1, 2),
                              (999, 1000, 0.05, 3), (1000, 1000, 0.0, 1), (2000, 1500, 0.3, 2),
                              (1000, 10000, 0.03, 2), (10000, 10000, 0.02, 2), (7, 9999, 0.5, 4),
                              (64, 96, 0.0, 0), (3000, 3000, 0.08, 1)]:
        add(f"exact {n1}x{n2} shift {shift} round {d}", normal(n1, 0, 1, d), normal(n2, shift, 1, d))
    # Integer data with heavy ties.
    add("poisson ties", rng.poisson(3, 400).astype(float), rng.poisson(3.4, 250).astype(float))
    # Asymptotic regime: max(n1, n2) > 10000.
    for n1, n2, shift, d in [(10001, 30, 0.0, 2), (12000, 800, 0.05, 2), (10500, 5, 1.0, 2),
                              (10001, 2000, 0.01, 2), (15000, 150, 0.2, 2)]:
        add(f"asymptotic {n1}x{n2} shift {shift} round {d}", normal(n1, 0, 1, d), normal(n2, shift, 1, d))
    out["ks"] = cases

    # kstwo.sf(x, n) across the regimes of _kolmogn.
    kt = []
    for n in [1, 2, 3, 5, 10, 30, 100, 140, 141, 500, 1000, 5000, 10000, 50000, 100000, 100001,
              500000, 999999, 2000000]:
        xs = set()
        for target in [0.05, 0.3, 0.6, 0.754, 0.76, 1.0, 2.0, 2.19, 2.21, 3.0, 4.0, 4.1, 8.0, 17.0,
                       19.0, 50.0, 200.0, 369.0, 371.0]:
            x = math.sqrt(target / n)
            if x < 1:
                xs.add(x)
        for x in [0.4 / n, 0.5 / n, 0.75 / n, 1.0 / n, 1.5 / n, 0.49, 0.5, 0.7, 1 - 1.0 / n,
                  1 - 0.5 / n, 0.999]:
            if 0 < x < 1:
                xs.add(x)
        for x in sorted(xs):
            kt.append({"n": n, "x": x, "sf": enc(stats.kstwo.sf(x, n))})
    out["kstwo_sf"] = kt

    sm = []
    for n in [1, 2, 5, 10, 50, 100, 1000, 1012, 1013, 5000, 100000, 1000001]:
        for x in [0.001, 0.01, 0.05, 0.1, 0.3, 0.5, 0.9, 1.0 / n, 2.0 / n, 1 - 1.0 / n, 0.99999]:
            if 0 <= x <= 1:
                sm.append({"n": n, "x": x, "sf": enc(special.smirnov(n, x))})
    out["smirnov"] = sm

    # chisquare(f_obs, f_exp), including Evidently's scaling of the reference
    # counts and zero expected frequencies.
    ch = []
    for k, scale in [(2, 10), (3, 100), (5, 1000), (10, 50), (30, 5), (51, 200), (400, 20), (2000, 30)]:
        ref = rng.poisson(scale, k).astype(float) + 1
        cur = rng.poisson(scale * 1.1, k).astype(float)
        kn = cur.sum() / ref.sum()
        exp = ref * kn
        r = stats.chisquare(cur, exp)
        ch.append({"observed": enc(cur), "expected": enc(exp), "statistic": enc(r.statistic), "pvalue": enc(r.pvalue)})
    for obs in [[10, 12, 9, 11], [100, 0, 3], [1e6, 1.1e6, 0.9e6], [5]]:
        r = stats.chisquare(obs)
        ch.append({"observed": enc(obs), "expected": None, "statistic": enc(r.statistic), "pvalue": enc(r.pvalue)})
    for obs, exp in [([10, 5, 0], [7.5, 7.5, 0.0]), ([10, 5, 3], [9, 9, 0]), ([1000, 2000], [1500, 1500]),
                     ([3, 4], [3.5, 3.5])]:
        r = stats.chisquare(obs, exp)
        ch.append({"observed": enc(obs), "expected": enc(exp), "statistic": enc(r.statistic), "pvalue": enc(r.pvalue)})
    out["chisquare"] = ch

    c2 = []
    for df in [1, 2, 3, 4, 9, 10, 20, 49, 50, 99, 100, 399, 1999, 20000]:
        for q in [0.0, 1e-6, 0.01, 0.3, 0.9, 1.0, 1.1, 1.5, 2.0, 3.0, 5.0, 20.0]:
            x = q * df
            c2.append({"df": df, "x": x, "sf": enc(stats.chi2.sf(x, df))})
        for x in [df + 10 * math.sqrt(2 * df), df + 30 * math.sqrt(2 * df), 1e5]:
            c2.append({"df": df, "x": x, "sf": enc(stats.chi2.sf(x, df))})
    out["chi2_sf"] = c2

    ws = []
    for name, a, b in [
        ("simple", [0, 1, 3], [5, 6, 8]),
        ("identical", [1, 2, 3], [3, 2, 1]),
        ("one each", [0.0], [2.5]),
        ("ties", [1, 1, 1, 2, 2], [1, 2, 2, 2, 3, 3]),
        ("normal shift", normal(500), normal(300, 0.5)),
        ("normal same", normal(1000, 0, 1, 2), normal(1000, 0, 1, 2)),
        ("unequal scale", normal(200, 10, 5), normal(2000, 10, 1)),
        ("big", normal(6000, 0, 1, 2), normal(4000, 0.1, 1, 2)),
    ]:
        a, b = np.asarray(a, float), np.asarray(b, float)
        ws.append({"name": name, "a": enc(a), "b": enc(b), "distance": enc(stats.wasserstein_distance(a, b)),
                   "normed": enc(wnorm(a, b))})
    ca, cb = np.full(50, 3.0), normal(40, 3, 0.01)
    ws.append({"name": "constant reference", "a": enc(ca), "b": enc(cb),
               "distance": enc(stats.wasserstein_distance(ca, cb)), "normed": enc(wnorm(ca, cb))})
    out["wasserstein"] = ws

    js = []
    for p, q in [([1, 0], [0, 1]), ([0.5, 0.5], [0.5, 0.5]), ([1, 2, 3], [3, 2, 1]), ([10, 0, 5], [0, 3, 5]),
                 ([0.2, 0.3, 0.5], [0.25, 0.25, 0.5]), ([1e-9, 1, 1], [1, 1e-9, 1])]:
        js.append({"p": enc(p), "q": enc(q), "distance": enc(distance.jensenshannon(p, q))})
    for k in [5, 50, 1000]:
        p = rng.poisson(20, k).astype(float)
        q = rng.poisson(25, k).astype(float)
        js.append({"p": enc(p), "q": enc(q), "distance": enc(distance.jensenshannon(p, q))})
    out["jensenshannon"] = js
    return out


def live():
    """Answer the Go live test: one result object per input case."""
    cases = json.load(sys.stdin)
    out = []
    for c in cases:
        kind = c["kind"]
        if kind == "ks":
            a, b = np.asarray(dec(c["a"])), np.asarray(dec(c["b"]))
            r = ks(a, b)
            r["wasserstein"] = enc(stats.wasserstein_distance(a, b))
            r["normed"] = enc(wnorm(a, b))
            out.append(r)
        elif kind == "chisquare":
            r = stats.chisquare(dec(c["observed"]), dec(c["expected"]))
            out.append({"statistic": enc(r.statistic), "pvalue": enc(r.pvalue)})
        elif kind == "jensenshannon":
            out.append({"distance": enc(distance.jensenshannon(dec(c["p"]), dec(c["q"])))})
        elif kind == "kstwo":
            out.append({"sf": enc(stats.kstwo.sf(c["x"], c["n"]))})
        else:
            raise SystemExit(f"unknown kind {kind}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1:] == ["--live"]:
        live()
    elif len(sys.argv) == 2:
        with open(sys.argv[1], "w") as f:
            json.dump(golden(), f, separators=(",", ":"))
            f.write("\n")
    else:
        raise SystemExit(__doc__)
