"""Reference values for Ember's nearest-neighbour estimators from scikit-learn.

Writes tests/fixtures/ml/neighbors/neighbors.json: held-out predictions and probabilities for
several (dataset, k, weights, algorithm, metric) settings, raw kneighbors output for one
setting, and 5-fold cross-validation scores with the fold of every sample, so the C++ test can
rerun the same folds. Datasets are read by the test from data/datasets/*.csv (the same arrays).
Run: tools/.venv/bin/python tools/ml/neighbors_fixtures.py
"""
import json
import pathlib

import numpy as np
from sklearn import datasets
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.metrics import accuracy_score, pairwise_distances, r2_score

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "ml" / "neighbors"

LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "digits": datasets.load_digits,
    "diabetes": datasets.load_diabetes,
}


def folds(name, y, classification):
    splitter = (StratifiedKFold if classification else KFold)(n_splits=5, shuffle=True,
                                                               random_state=0)
    fold = np.zeros(len(y), dtype=int)
    for f, (_, test) in enumerate(splitter.split(np.zeros((len(y), 1)), y)):
        fold[test] = f
    return fold


def boundary_ties(x_train, x_test, k, metric, p):
    """Whether the k-th and (k+1)-th nearest training rows are (nearly) equally far: there the
    neighbour set, and so the prediction, depends on rounding and tie-breaking order."""
    kwargs = {"p": float(p)} if metric == "minkowski" else {}
    d = np.sort(pairwise_distances(x_test, x_train, metric=metric, **kwargs), axis=1)
    if k >= d.shape[1]:
        return [False] * len(d)
    return [bool(abs(r[k] - r[k - 1]) <= 1e-9 * max(1.0, abs(r[k]))) for r in d]


def main():
    data = {name: loader() for name, loader in LOADERS.items()}
    out = {"datasets": {}, "holdout": [], "cv": []}
    for name, bunch in data.items():
        classification = name != "diabetes"
        out["datasets"][name] = {
            "y": [float(v) for v in bunch.target],
            "fold": folds(name, bunch.target, classification).tolist(),
        }

    holdout_cases = [
        ("iris", dict(n_neighbors=5)),
        ("iris", dict(n_neighbors=4, algorithm="kd_tree", metric="chebyshev")),
        ("iris", dict(n_neighbors=6, algorithm="ball_tree", metric="minkowski", p=3)),
        ("wine", dict(n_neighbors=7, weights="distance", algorithm="brute")),
        ("wine", dict(n_neighbors=5, algorithm="brute", metric="cosine")),
        ("breast_cancer", dict(n_neighbors=5, algorithm="ball_tree", metric="manhattan")),
        ("breast_cancer", dict(n_neighbors=9, weights="distance", algorithm="kd_tree")),
        ("digits", dict(n_neighbors=3)),
        ("digits", dict(n_neighbors=5, algorithm="ball_tree", metric="hamming")),
        ("digits", dict(n_neighbors=4, weights="distance", algorithm="brute", metric="manhattan")),
        ("diabetes", dict(n_neighbors=5, weights="distance")),
        ("diabetes", dict(n_neighbors=10, algorithm="ball_tree", leaf_size=5)),
    ]
    for name, params in holdout_cases:
        bunch = data[name]
        fold = np.array(out["datasets"][name]["fold"])
        train, test = fold != 0, fold == 0
        classification = name != "diabetes"
        est = (KNeighborsClassifier if classification else KNeighborsRegressor)(**params)
        est.fit(bunch.data[train], bunch.target[train])
        case = {"dataset": name, "params": {k: str(v) for k, v in params.items()},
                "fit_method": est._fit_method,
                "predict": [float(v) for v in est.predict(bunch.data[test])]}
        case["boundary_tie"] = boundary_ties(bunch.data[train], bunch.data[test],
                                             params["n_neighbors"], params.get("metric", "minkowski"),
                                             params.get("p", 2))
        if classification:
            # Probabilities of the first 100 held-out rows keep the fixture small.
            case["proba"] = est.predict_proba(bunch.data[test][:100]).ravel().tolist()
        out["holdout"].append(case)

    # Raw neighbour lists on iris (which has duplicate rows, so ties occur).
    bunch = data["iris"]
    out["kneighbors"] = {"train_rows": 100, "k": 5,
                         "boundary_tie": boundary_ties(bunch.data[:100], bunch.data[100:], 5,
                                                       "euclidean", 2)}
    for algorithm in ("brute", "kd_tree", "ball_tree"):
        est = KNeighborsClassifier(n_neighbors=5, algorithm=algorithm, leaf_size=3).fit(
            bunch.data[:100], bunch.target[:100])
        dist, ind = est.kneighbors(bunch.data[100:])
        out["kneighbors"][algorithm] = {"distances": dist.ravel().tolist(),
                                        "indices": ind.ravel().tolist()}

    cv_cases = [
        ("iris", dict(n_neighbors=5)),
        ("wine", dict(n_neighbors=5)),
        ("breast_cancer", dict(n_neighbors=5, weights="distance")),
        ("digits", dict(n_neighbors=5)),
        ("diabetes", dict(n_neighbors=10)),
        ("diabetes", dict(n_neighbors=10, weights="distance")),
    ]
    for name, params in cv_cases:
        bunch = data[name]
        fold = np.array(out["datasets"][name]["fold"])
        classification = name != "diabetes"
        scores = []
        for f in range(5):
            train, test = fold != f, fold == f
            est = (KNeighborsClassifier if classification else KNeighborsRegressor)(**params)
            est.fit(bunch.data[train], bunch.target[train])
            pred = est.predict(bunch.data[test])
            scores.append(accuracy_score(bunch.target[test], pred) if classification
                          else r2_score(bunch.target[test], pred))
        out["cv"].append({"dataset": name, "params": {k: str(v) for k, v in params.items()},
                          "scores": scores, "mean": float(np.mean(scores))})

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "neighbors.json").write_text(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
