"""Reference values for Ember's SVC and SVR from scikit-learn (libsvm).

Writes tests/fixtures/ml/svm/svm.json: held-out decision values, predictions, support counts
and probabilities for several kernels, and 5-fold cross-validation scores with the fold of every
sample (classic datasets are read by the test from data/datasets/*.csv; synthetic inputs are
stored, rounded to 4 decimals). Run: tools/.venv/bin/python tools/ml/svm_fixtures.py
"""
import json
import pathlib

import numpy as np
from sklearn import datasets
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.svm import SVC, SVR

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "ml" / "svm"

LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "digits": datasets.load_digits,
    "diabetes": datasets.load_diabetes,
}


def folds(y, classification):
    splitter = (StratifiedKFold if classification else KFold)(n_splits=5, shuffle=True,
                                                               random_state=0)
    fold = np.zeros(len(y), dtype=int)
    for f, (_, test) in enumerate(splitter.split(np.zeros((len(y), 1)), y)):
        fold[test] = f
    return fold


def main():
    data = {name: (loader().data, loader().target.astype(float)) for name, loader in LOADERS.items()}
    xc, yc = datasets.make_classification(n_samples=240, n_features=6, n_informative=4,
                                          random_state=4)
    data["synthetic_binary"] = (np.round(xc, 4), yc.astype(float))
    xr, yr = datasets.make_regression(n_samples=200, n_features=5, noise=5.0, random_state=6)
    data["synthetic_regression"] = (np.round(xr, 4), np.round(yr, 4))
    out = {"datasets": {}, "holdout": [], "cv": []}
    for name, (x, y) in data.items():
        entry = {"y": y.tolist(), "fold": folds(y, name not in ("diabetes",
                                                                "synthetic_regression")).tolist()}
        if name.startswith("synthetic"):
            entry["x"] = x.ravel().tolist()
            entry["cols"] = x.shape[1]
        out["datasets"][name] = entry

    holdout = [
        ("iris", dict()),
        ("iris", dict(kernel="poly", degree=3, gamma="auto", coef0=1.0, C=0.5)),
        ("iris", dict(kernel="linear", C=0.1)),
        ("wine", dict(C=10.0)),
        ("wine", dict(C=2.0, class_weight="balanced")),
        ("breast_cancer", dict()),
        ("digits", dict(C=5.0)),
        # One held-out row has tied votes, which break_ties settles differently.
        ("digits", dict(C=0.2, break_ties=True)),
        ("synthetic_binary", dict(kernel="linear", C=1.0)),
        ("synthetic_binary", dict(kernel="sigmoid", gamma=0.05, coef0=0.0, C=2.0)),
        ("synthetic_binary", dict(kernel="rbf", C=3.0, shrinking=False)),
        ("iris", dict(probability=True, random_state=0)),
        ("synthetic_binary", dict(probability=True, random_state=0)),
        ("diabetes", dict(C=100.0, epsilon=5.0)),
        ("synthetic_regression", dict(kernel="linear", C=1.0, epsilon=0.5)),
        ("synthetic_regression", dict(kernel="poly", degree=2, coef0=1.0, C=10.0, epsilon=1.0)),
    ]
    for name, params in holdout:
        x, y = data[name]
        fold = np.array(out["datasets"][name]["fold"])
        train, test = fold != 0, fold == 0
        regression = name in ("diabetes", "synthetic_regression")
        est = (SVR if regression else SVC)(**params).fit(x[train], y[train])
        case = {"dataset": name, "params": {k: str(v) for k, v in params.items()},
                "n_support": np.atleast_1d(est.n_support_).tolist(),
                "predict": est.predict(x[test]).tolist(),
                "intercept": est.intercept_.tolist()}
        if regression:
            case["decision"] = est.predict(x[test]).tolist()
        else:
            case["decision_ovr"] = np.asarray(est.decision_function(x[test][:40])).ravel().tolist()
            est.decision_function_shape = "ovo"
            # Decision values of the first 40 held-out rows keep the fixture small.
            case["decision"] = np.asarray(est.decision_function(x[test][:40])).ravel().tolist()
            if params.get("probability"):
                case["proba"] = est.predict_proba(x[test][:40]).ravel().tolist()
        out["holdout"].append(case)

    for name, params in (("iris", dict()), ("wine", dict()), ("breast_cancer", dict()),
                         ("digits", dict()), ("iris", dict(kernel="linear", C=0.5)),
                         ("diabetes", dict(C=100.0, epsilon=5.0))):
        x, y = data[name]
        fold = np.array(out["datasets"][name]["fold"])
        regression = name == "diabetes"
        scores = []
        # Out-of-fold predictions of every row and, for classifiers, the smallest |one-vs-one
        # decision value| of the row (its closest call), so that the test can compare fold
        # predictions and tell a close call from a wrong one.
        predict = np.zeros(len(y))
        closest = np.zeros(len(y))
        for f in range(5):
            train, test = fold != f, fold == f
            est = (SVR if regression else SVC)(**params).fit(x[train], y[train])
            pred = est.predict(x[test])
            predict[test] = pred
            if not regression:
                dec = np.asarray(est.decision_function(x[test])).reshape(int(test.sum()), -1)
                closest[test] = np.abs(dec).min(axis=1)
            scores.append(r2_score(y[test], pred) if regression else accuracy_score(y[test], pred))
        case = {"dataset": name, "params": {k: str(v) for k, v in params.items()},
                "scores": scores, "mean": float(np.mean(scores)), "predict": predict.tolist()}
        if not regression:
            case["closest_call"] = closest.tolist()
        out["cv"].append(case)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "svm.json").write_text(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
