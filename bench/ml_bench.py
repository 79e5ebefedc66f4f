#!/usr/bin/env python3
"""Classical ML: Ember (build/bin/bench_ml) against scikit-learn on the same data and threads.

One run times fit and predict for each row below with 1 and 2 threads, prints the ratios
(scikit-learn time / Ember time, so > 1 means Ember is faster) and both models' test scores.
Data are synthetic and seeded; they reach Ember as .npy files in a temporary directory.

  tools/.venv/bin/python bench/ml_bench.py [--bin build/bin/bench_ml] [--threads 1,2]
        [--only NAME,...] [--scale 1.0] [--json results.json]
  tools/.venv/bin/python bench/ml_bench.py --grid [--grid-n 10000,100000] [--reps 3] [--only KMeans]
        [--grid-threads 2]

--scale shrinks every row's sample counts (for a quick smoke run); the documented figures use 1.

--grid sweeps shapes instead of one point per row, at --grid-threads threads (default 1): KMeans
(k-means++, n_init=1) fit over n x d x k, and KNeighborsClassifier (k=5) fit + predict of 2,000
queries over n x d. Each cell runs Ember and scikit-learn alternately --reps times and compares
the medians of their process CPU times (other jobs on the machine inflate wall time, not CPU
time); the summary gives the worst ratio of each row, and the load average before and after.
Also LogisticRegression (3 classes, standardized features, fit + predict) over n x d, and
HistGradientBoostingClassifier (binary) over n x d. At more than one thread each cell also
compares the medians of wall times (what parallelism buys; only meaningful on an idle machine,
as a busy sibling core slows both sides, scikit-learn's spinning OpenMP threads most), and CPU
time then includes the time threads spin waiting for work on both sides.

KMeans cells also print both sides' iteration counts (n_iter_, medians) and, unless
--no-equal-init, an equal-start comparison: both sides fit from the same explicit centres
(scikit-learn's kmeans_plusplus with the run's seed, init=ndarray on both sides), so the
iteration counts match and the ratio of CPU time per iteration shows the Lloyd step's cost apart
from the seeding's (the headline ratio stays the default k-means++ fit's).
"""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
from threadpoolctl import threadpool_limits
from sklearn import cluster, ensemble, linear_model, metrics, neighbors, svm
from sklearn.datasets import make_blobs, make_classification, make_regression
from sklearn.preprocessing import StandardScaler

ROOT = pathlib.Path(__file__).resolve().parents[1]


def rows(scale):
    def n(v):
        return max(200, int(v * scale))

    return [
        # name, algorithm, ember params, sklearn factory(threads), data maker, task
        ("RandomForestClassifier (100 trees)", "RandomForestClassifier",
         ["n_estimators=100", "random_state=0"],
         lambda t: ensemble.RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=t),
         lambda: classification(n(100_000), 20), "classification"),
        ("HistGradientBoostingClassifier", "HistGradientBoostingClassifier", ["random_state=0"],
         lambda t: ensemble.HistGradientBoostingClassifier(random_state=0),
         lambda: classification(n(100_000), 20), "classification"),
        ("KMeans (k=8)", "KMeans", ["n_clusters=8", "random_state=0", "n_init=1"],
         lambda t: cluster.KMeans(n_clusters=8, random_state=0, n_init=1),
         lambda: blobs(n(1_000_000), 10, 8), "clustering"),
        ("LogisticRegression", "LogisticRegression", [],
         lambda t: linear_model.LogisticRegression(),
         lambda: classification(n(100_000), 100), "classification"),
        ("Ridge", "Ridge", ["alpha=1.0"], lambda t: linear_model.Ridge(alpha=1.0),
         lambda: regression(n(100_000), 100), "regression"),
        ("SVC (RBF)", "SVC", ["kernel=rbf", "C=1.0"], lambda t: svm.SVC(kernel="rbf", C=1.0),
         lambda: classification(n(10_000), 20), "classification"),
        ("KNeighborsClassifier (k=5)", "KNeighborsClassifier", ["n_neighbors=5"],
         lambda t: neighbors.KNeighborsClassifier(n_neighbors=5, n_jobs=t),
         lambda: classification(n(100_000), 10, n_test=n(10_000)), "classification"),
    ]


def split(x, y, n_test):
    return x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:]


def classification(n, d, n_test=None):
    n_test = n_test or max(n // 5, 100)
    x, y = make_classification(n_samples=n + n_test, n_features=d, n_informative=max(2, d // 2),
                               random_state=0)
    return split(x, y.astype(float), n_test)


def regression(n, d):
    n_test = max(n // 5, 100)
    x, y = make_regression(n_samples=n + n_test, n_features=d, noise=10.0, random_state=0)
    return split(x, y, n_test)


def blobs(n, d, k):
    n_test = max(n // 10, 100)
    x, y = make_blobs(n_samples=n + n_test, n_features=d, centers=k, random_state=0)
    return split(x, y.astype(float), n_test)


# Predict is deterministic and often takes a millisecond or two, so one call says little: the
# best of at least MIN_REPS calls and MIN_TOTAL_S seconds of calls (at most MAX_REPS), the same
# rule as bench_ml applies to Ember.
MIN_REPS, MAX_REPS, MIN_TOTAL_S = 5, 1000, 0.5


def best_time(call):
    best, total, reps = float("inf"), 0.0, 0
    while reps < MIN_REPS or (total < MIN_TOTAL_S and reps < MAX_REPS):
        start = time.perf_counter()
        out = call()
        elapsed = time.perf_counter() - start
        best, total, reps = min(best, elapsed), total + elapsed, reps + 1
    return out, best, reps


def sklearn_run(factory, threads, data, task):
    xtr, ytr, xte, yte = data
    with threadpool_limits(limits=threads):
        os.environ["OMP_NUM_THREADS"] = str(threads)
        model = factory(threads)
        start = time.perf_counter()
        if task == "clustering":
            model.fit(xtr)
        else:
            model.fit(xtr, ytr)
        fit_s = time.perf_counter() - start
        pred, predict_s, reps = best_time(lambda: model.predict(xte))
    if task == "classification":
        score = metrics.accuracy_score(yte, pred)
    elif task == "regression":
        score = metrics.r2_score(yte, pred)
    else:
        score = metrics.adjusted_rand_score(yte, pred)
    return {"fit_s": fit_s, "predict_s": predict_s, "predict_reps": reps, "score": score}


def ember_run(binary, algo, params, threads, files, task, extra=()):
    # --warmup: Ember times its calls in a process that has run them once, as scikit-learn's
    # side runs in this long-lived interpreter (see bench_ml.cpp).
    cmd = [str(binary), "--algo", algo, "--threads", str(threads), "--x-train", files["xtr"],
           "--x-test", files["xte"], "--y-test", files["yte"], "--warmup"]
    if task != "clustering":
        cmd += ["--y-train", files["ytr"]]
    for p in params:
        cmd += ["--param", p]
    cmd += list(extra)
    env = dict(os.environ, EMBER_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        return {"status": "error", "error": out.stderr.strip()}
    return json.loads(out.stdout)


def machine():
    model = platform.processor()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs"


def cpu_time_sklearn(model, xtr, ytr, xte, task, threads=1):
    """(process CPU seconds, wall seconds) of scikit-learn's fit (+ predict unless clustering)."""
    with threadpool_limits(limits=threads):
        start, wall_start = time.process_time(), time.perf_counter()
        if task == "clustering":
            model.fit(xtr)
        else:
            model.fit(xtr, ytr)
            model.predict(xte)
        return time.process_time() - start, time.perf_counter() - wall_start


def kmeans_equal_start(binary, x, k, seed, files, tmp, threads):
    """Both sides' KMeans fit from the same explicit centres: (Ember, scikit-learn) CPU seconds
    per iteration and iteration counts."""
    with threadpool_limits(limits=1):
        init, _ = cluster.kmeans_plusplus(x, k, random_state=seed)
    path = os.path.join(tmp, "init.npy")
    np.save(path, np.ascontiguousarray(init, dtype=np.float64))
    e = ember_run(binary, "KMeans", [], threads, files, "clustering",
                  ["--predict-reps", "1", "--init-centers", path])
    if e.get("status") != "ok":
        raise RuntimeError(f"Ember error: {e.get('error')}")
    model = cluster.KMeans(n_clusters=k, init=init, n_init=1)
    sk, _ = cpu_time_sklearn(model, x, None, None, "clustering", threads)
    return e["fit_cpu_s"] / e["n_iter"], sk / model.n_iter_, e["n_iter"], int(model.n_iter_)


def grid_cells(ns):
    for n in ns:
        for d in (2, 10, 40, 100):
            for k in (3, 10, 50):
                yield ("KMeans", n, d, k)
    for n in ns:
        for d in (2, 10, 40, 100):
            yield ("KNeighborsClassifier", n, d, 5)
    # LogisticRegression: 3 classes (the multinomial fit), standardized features.
    for n in ns:
        for d in (10, 40, 100):
            yield ("LogisticRegression", n, d, 3)
    # HistGradientBoostingClassifier: binary.
    for n in ns:
        for d in (10, 40):
            yield ("HistGradientBoostingClassifier", n, d, 2)


def run_grid(args):
    ns = [int(v) for v in args.grid_n.split(",")]
    threads = args.grid_threads
    os.environ["OMP_NUM_THREADS"] = str(threads)
    load_before = os.getloadavg()
    print(f"grid at {threads} thread(s), medians of {args.reps} alternating runs, process CPU "
          f"time{' (and wall time)' if threads > 1 else ''}; load average before: "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    print(f"{'algorithm':22s} {'n':>8s} {'d':>4s} {'k':>3s} {'ember s':>9s} {'sklearn s':>10s} "
          f"{'ratio':>6s}  {'[wall: ember s, sklearn s, ratio] ' if threads > 1 else ''}"
          f"[KMeans: iterations Ember/sklearn; equal start: iterations, "
          f"s/iteration Ember/sklearn, ratio]")
    worst = {}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        only = [o for o in args.only.split(",") if o]
        for algo, n, d, k in grid_cells(ns):
            if only and algo not in only:
                continue
            if algo == "KMeans":
                x, _ = make_blobs(n_samples=n, n_features=d, centers=k, random_state=0)
                data, task = (x, None, x[:100], None), "clustering"
                params = lambda seed, k=k: [f"n_clusters={k}", "n_init=1",
                                            f"random_state={seed}"]
                factory = lambda seed, k=k: cluster.KMeans(n_clusters=k, n_init=1,
                                                           random_state=seed)
            elif algo in ("LogisticRegression", "HistGradientBoostingClassifier"):
                x, y = make_classification(n_samples=n + 2000, n_features=d, n_classes=k,
                                           n_informative=max(2, d // 2), n_redundant=0,
                                           random_state=0)
                if algo == "LogisticRegression":
                    x = StandardScaler().fit_transform(x)
                data, task = split(x, y.astype(float), 2000), "classification"
                params = lambda seed, algo=algo: ([f"random_state={seed}"]
                                                  if algo != "LogisticRegression" else [])
                factory = lambda seed, algo=algo: (
                    linear_model.LogisticRegression() if algo == "LogisticRegression" else
                    ensemble.HistGradientBoostingClassifier(random_state=seed))
            else:
                x, y = make_classification(n_samples=n + 2000, n_features=d,
                                           n_informative=max(2, d // 2), n_redundant=0,
                                           random_state=0)
                data, task = split(x, y.astype(float), 2000), "classification"
                params = lambda seed, k=k: [f"n_neighbors={k}"]
                factory = lambda seed, k=k: neighbors.KNeighborsClassifier(n_neighbors=k,
                                                                           n_jobs=threads)
            files = {}
            for key, arr in zip(["xtr", "ytr", "xte", "yte"], data):
                if arr is None:
                    arr = np.zeros(len(data[0] if key == "ytr" else data[2]))
                files[key] = os.path.join(tmp, key + ".npy")
                np.save(files[key], np.ascontiguousarray(arr, dtype=np.float64))
            ember_s, sklearn_s, ember_wall, sklearn_wall, iters, same = [], [], [], [], [], []
            for rep in range(args.reps):
                e = ember_run(args.bin, algo, params(rep), threads, files, task,
                              ["--predict-reps", "1"])
                if e.get("status") != "ok":
                    print(f"{algo} n={n} d={d} k={k}: Ember error: {e.get('error')}")
                    break
                predicts = task != "clustering"
                ember_s.append(e["fit_cpu_s"] + (e["predict_cpu_s"] if predicts else 0))
                ember_wall.append(e["fit_s"] + (e["predict_s"] if predicts else 0))
                # KMeans: a different seed each run on both sides, so neither side's one lucky
                # or unlucky initialisation decides the cell.
                model = factory(rep)
                cpu, wall = cpu_time_sklearn(model, data[0], data[1], data[2], task, threads)
                sklearn_s.append(cpu)
                sklearn_wall.append(wall)
                if algo == "KMeans":
                    iters.append((e["n_iter"], int(model.n_iter_)))
                    if args.equal_init:
                        same.append(kmeans_equal_start(args.bin, x, k, rep, files, tmp, threads))
            if not ember_s:
                continue
            em, sk = float(np.median(ember_s)), float(np.median(sklearn_s))
            ratio = sk / em
            row = f"{algo} n={n}" + (f" ({threads} threads, CPU)" if threads > 1 else "")
            worst[row] = min(worst.get(row, float("inf")), ratio)
            cell = {"algo": algo, "n": n, "d": d, "k": k, "threads": threads,
                    "ember_cpu_s": ember_s, "sklearn_cpu_s": sklearn_s, "ratio": ratio}
            extra = ""
            if threads > 1:
                em_w, sk_w = float(np.median(ember_wall)), float(np.median(sklearn_wall))
                wall_row = f"{algo} n={n} ({threads} threads, wall)"
                worst[wall_row] = min(worst.get(wall_row, float("inf")), sk_w / em_w)
                cell.update({"ember_wall_s": ember_wall, "sklearn_wall_s": sklearn_wall,
                             "wall_ratio": sk_w / em_w})
                extra = f"  wall {em_w:.4f} {sk_w:.4f} {sk_w / em_w:5.2f}"
            if iters:
                cell["n_iter"] = iters
                extra += (f"  iter {np.median([i[0] for i in iters]):g}/"
                          f"{np.median([i[1] for i in iters]):g}")
            if same:
                cell["equal_start"] = same
                per_e = float(np.median([s[0] for s in same]))
                per_s = float(np.median([s[1] for s in same]))
                worst[row + " equal start, per iteration"] = min(
                    worst.get(row + " equal start, per iteration", float("inf")), per_s / per_e)
                extra += (f"; equal start iter {np.median([s[2] for s in same]):g}/"
                          f"{np.median([s[3] for s in same]):g}, {per_e * 1e3:.3g}/"
                          f"{per_s * 1e3:.3g} ms/iter, {per_s / per_e:5.2f}")
            results.append(cell)
            print(f"{algo:22s} {n:8d} {d:4d} {k:3d} {em:9.4f} {sk:10.4f} {ratio:6.2f}{extra}",
                  flush=True)
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print("worst ratio (scikit-learn time / Ember time) of each row:")
    for row, r in worst.items():
        print(f"  {row:50s} {r:5.2f}x")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "build" / "bin" / "bench_ml"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--only", default="")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--json", default="")
    ap.add_argument("--grid", action="store_true")
    ap.add_argument("--grid-n", default="10000,100000,1000000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-equal-init", dest="equal_init", action="store_false",
                    help="KMeans grid: skip the equal-start (same explicit centres) comparison")
    # Threads of every grid cell, on both sides (Ember's pool and OpenBLAS, scikit-learn's
    # OpenMP/BLAS and n_jobs); above 1 the cells also report wall time.
    ap.add_argument("--grid-threads", type=int, default=1)
    args = ap.parse_args()
    if args.grid:
        print(f"machine: {machine()}")
        return run_grid(args)
    threads_list = [int(t) for t in args.threads.split(",")]
    only = [o for o in args.only.split(",") if o]
    print(f"machine: {machine()}")
    import sklearn
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, scale {args.scale}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, algo, params, factory, make, task in rows(args.scale):
            if only and algo not in only:
                continue
            data = make()
            files = {}
            for key, arr in zip(["xtr", "ytr", "xte", "yte"], data):
                files[key] = os.path.join(tmp, key + ".npy")
                np.save(files[key], np.ascontiguousarray(arr, dtype=np.float64))
            for t in threads_list:
                e = ember_run(args.bin, algo, params, t, files, task)
                row = {"row": name, "algo": algo, "threads": t, "n_train": len(data[0]),
                       "n_features": data[0].shape[1], "n_test": len(data[2]), "ember": e}
                if e.get("status") == "missing":
                    print(f"{name:36s} threads={t}: missing (not registered in Ember)")
                    results.append(row)
                    continue
                s = sklearn_run(factory, t, data, task)
                row["sklearn"] = s
                results.append(row)
                if e.get("status") != "ok":
                    print(f"{name:36s} threads={t}: Ember error: {e.get('error')}")
                    continue
                print(f"{name:36s} threads={t}: fit {e['fit_s']:8.3f}s vs {s['fit_s']:8.3f}s "
                      f"(x{s['fit_s'] / e['fit_s']:5.2f})  predict {e['predict_s']:9.6f}s vs "
                      f"{s['predict_s']:9.6f}s (x{s['predict_s'] / max(e['predict_s'], 1e-9):5.2f})  "
                      f"score {e.get('score', float('nan')):.4f} vs {s['score']:.4f}", flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
