"""Reference values for Ember's trees and ensembles, computed with scikit-learn 1.9.1.

Writes tests/fixtures/ml/trees/*.txt in a plain format read by tests/ml/*_test.cpp: one array
per line, `name rows cols v0 v1 ...` (row-major, values as Python repr, so doubles round-trip).

- exact_trees.txt: continuous random data, test-set predictions (and class probabilities), node
  count and depth of DecisionTreeClassifier / DecisionTreeRegressor for settings where every
  split is the unique best one (checked here for every node by recomputing all candidate
  splits; deep trees tie in tiny nodes, so the settings keep nodes large enough). Ties are
  broken by scikit-learn's random feature order, which no other implementation can reproduce.
- cv.txt: 5-fold indices (StratifiedKFold for classifiers, KFold for regression; shuffle=True,
  random_state=0) per dataset, and scikit-learn's mean cross-validated accuracy / R^2 of the
  randomized ensembles with default hyperparameters on exactly those folds; for the regression
  forests also the lowest and highest of those scores over random_state 0..9 (`seeds_...`):
  their R^2 on diabetes (442 noisy samples) spans 0.015 (random forest) and 0.024 (extra
  trees) over those seeds, more than the tests' 0.01 margin around seed 0, and another random
  stream (Ember's) can land anywhere in that spread.

Run: tools/.venv/bin/python tools/ml/trees_fixtures.py [--exact-only]   (about a minute)
"""
import pathlib
import sys

import numpy as np
import sklearn
from sklearn import datasets
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor,
                              HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "ml" / "trees"


def line(name, array):
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a.reshape(1, -1)
    values = " ".join(repr(float(v)) for v in a.ravel())
    return f"{name} {a.shape[0]} {a.shape[1]} {values}\n"


def proxies(x_node, y_node, criterion, n_classes, min_leaf):
    """Proxy improvement of every valid split of one node (larger is better)."""
    out = []
    n = len(y_node)
    for f in range(x_node.shape[1]):
        order = np.argsort(x_node[:, f], kind="stable")
        v = x_node[order, f].astype(np.float32)
        pos = np.arange(1, n)
        valid = (v[1:] > v[:-1] + np.float32(1e-7)) & (pos >= min_leaf) & (n - pos >= min_leaf)
        if criterion == "squared_error":
            yl = np.cumsum(y_node[order])[:-1]
            yr = y_node.sum() - yl
            p = yl**2 / pos + yr**2 / (n - pos)
        else:
            onehot = np.eye(n_classes)[y_node[order]]
            cl = np.cumsum(onehot, 0)[:-1]
            cr = onehot.sum(0) - cl
            nl, nr = pos[:, None], (n - pos)[:, None]
            if criterion == "gini":
                p = (cl**2 / nl).sum(1) + (cr**2 / nr).sum(1)
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    hl = -np.nansum(np.where(cl > 0, cl / nl * np.log(cl / nl), 0), 1)
                    hr = -np.nansum(np.where(cr > 0, cr / nr * np.log(cr / nr), 0), 1)
                p = -(pos * hl + (n - pos) * hr)
        out.extend(p[valid])
    return np.sort(np.asarray(out))


def check_unique_splits(m, x, y, criterion, n_classes, min_leaf):
    """Every split of the fitted tree must be the unique best (by a clear margin), so that the
    feature order, which scikit-learn draws at random, and the rounding of equal candidates
    cannot change the tree."""
    t = m.tree_
    paths = m.decision_path(x).toarray().astype(bool)
    for node in range(t.node_count):
        if t.children_left[node] < 0:
            continue
        rows = paths[:, node]
        p = proxies(x[rows], y[rows], criterion, n_classes, min_leaf)
        if len(p) > 1 and p[-1] - p[-2] <= 1e-9 * max(1.0, abs(p[-1])):
            raise SystemExit(f"{m}: node {node} has tied best splits; pick other settings")


def fit_unique(make, x, y, criterion, n_classes, min_leaf):
    m = make().fit(x, y)
    check_unique_splits(m, x, y, criterion, n_classes, min_leaf)
    return m


def exact_trees():
    rng = np.random.default_rng(7)
    n_train, n_test, d = 400, 200, 5
    x = rng.normal(size=(n_train + n_test, d)).round(6)
    logits = np.stack([x[:, 0] + 0.5 * x[:, 1], -x[:, 0] + x[:, 2] * x[:, 3], 0.3 * x[:, 4]], 1)
    y_cls = (logits + 0.4 * rng.normal(size=logits.shape)).argmax(1)
    y_reg = (np.sin(x[:, 0]) * 3 + x[:, 1] * x[:, 2] + 0.2 * rng.normal(size=len(x))).round(6)
    xtr, xte = x[:n_train], x[n_train:]
    out = [line("x_train", xtr), line("x_test", xte),
           line("y_class", y_cls[:n_train]), line("y_reg", y_reg[:n_train])]
    classifiers = {
        "clf_gini_depth3": dict(criterion="gini", max_depth=3),
        "clf_entropy_depth3": dict(criterion="entropy", max_depth=3),
        "clf_entropy_leaves8": dict(criterion="entropy", max_leaf_nodes=8),
        "clf_gini_leaves12": dict(criterion="gini", max_leaf_nodes=12),
    }
    for name, kw in classifiers.items():
        m = fit_unique(lambda: DecisionTreeClassifier(random_state=0, **kw), xtr,
                       y_cls[:n_train], kw["criterion"], 3, kw.get("min_samples_leaf", 1))
        out.append(line(name + "_pred", m.predict(xte)))
        out.append(line(name + "_proba", m.predict_proba(xte)))
        out.append(line(name + "_shape", [m.tree_.node_count, m.get_depth()]))
    regressors = {
        "reg_leaf10": dict(min_samples_leaf=10),
        "reg_depth5_leaf8": dict(max_depth=5, min_samples_leaf=8),
        "reg_leaves20_leaf3": dict(max_leaf_nodes=20, min_samples_leaf=3),
    }
    for name, kw in regressors.items():
        m = fit_unique(lambda: DecisionTreeRegressor(random_state=0, **kw), xtr,
                       y_reg[:n_train], "squared_error", 0, kw.get("min_samples_leaf", 1))
        out.append(line(name + "_pred", m.predict(xte)))
        out.append(line(name + "_shape", [m.tree_.node_count, m.get_depth()]))
    (OUT / "exact_trees.txt").write_text("".join(out))


def load(name):
    return getattr(datasets, "load_" + name)(return_X_y=True)


def cross_val_mean(make, x, y, folds):
    scores = []
    for k in range(5):
        test = folds == k
        m = make().fit(x[~test], y[~test])
        scores.append(m.score(x[test], y[test]))
    return float(np.mean(scores))


def cv_reference():
    out = []
    classifiers = {
        "RandomForestClassifier": lambda: RandomForestClassifier(random_state=0),
        "ExtraTreesClassifier": lambda: ExtraTreesClassifier(random_state=0),
        "HistGradientBoostingClassifier": lambda: HistGradientBoostingClassifier(random_state=0),
    }
    regressors = {
        "RandomForestRegressor": lambda: RandomForestRegressor(random_state=0),
        "ExtraTreesRegressor": lambda: ExtraTreesRegressor(random_state=0),
        "HistGradientBoostingRegressor": lambda: HistGradientBoostingRegressor(random_state=0),
    }
    for name in ["iris", "wine", "breast_cancer", "digits", "diabetes"]:
        x, y = load(name)
        regression = name == "diabetes"
        splitter = (KFold if regression else StratifiedKFold)(5, shuffle=True, random_state=0)
        folds = np.zeros(len(y), dtype=np.int64)
        for k, (_, test) in enumerate(splitter.split(x, y)):
            folds[test] = k
        out.append(line(f"folds_{name}", folds))
        for algo, make in (regressors if regression else classifiers).items():
            score = cross_val_mean(make, x, y, folds)
            out.append(line(f"score_{algo}_{name}", [score]))
            print(f"{algo:32s} {name:14s} {score:.4f}")
            # HistGradientBoosting draws nothing at random on data this small (no early stopping
            # below 10000 samples).
            if not regression or "HistGradientBoosting" in algo:
                continue
            seeds = [score] + [cross_val_mean(lambda: make().set_params(random_state=s), x, y, folds)
                               for s in range(1, 10)]
            out.append(line(f"seeds_{algo}_{name}", [min(seeds), max(seeds)]))
            print(f"{'':32s} {'':14s} seeds 0..9: {min(seeds):.4f} .. {max(seeds):.4f}")
    (OUT / "cv.txt").write_text("".join(out))


def main():
    assert sklearn.__version__ == "1.9.1", sklearn.__version__
    OUT.mkdir(parents=True, exist_ok=True)
    exact_trees()
    if "--exact-only" not in sys.argv:
        cv_reference()


if __name__ == "__main__":
    main()
