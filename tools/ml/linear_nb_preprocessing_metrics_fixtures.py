"""Reference values from scikit-learn for Ember's linear models, naive Bayes, preprocessing,
metrics and model selection (tests/ml/*_test.cpp compare against them).

Datasets are read from data/datasets/*.csv exactly as the C++ tests read them (class labels
sorted like scikit-learn's np.unique). Small synthetic inputs are stored in the fixtures.
Run: tools/.venv/bin/python tools/ml/linear_nb_preprocessing_metrics_fixtures.py
"""
import csv
import json
import pathlib
import warnings

import numpy as np
import sklearn
from sklearn import linear_model as lm
from sklearn import metrics as skm
from sklearn import naive_bayes as nb
from sklearn import preprocessing as pp
from sklearn.datasets import make_classification
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

warnings.filterwarnings("ignore")
ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "datasets"
FIX = ROOT / "tests" / "fixtures" / "ml"


def load(name):
    with open(DATA / f"{name}.csv") as f:
        rows = list(csv.reader(f))[1:]
    x = np.array([[float(v) for v in r[:-1]] for r in rows])
    labels = [r[-1] for r in rows]
    try:
        y = np.array([float(v) for v in labels])
    except ValueError:
        y = np.array(labels)
    return x, y


def class_indices(y):
    _, idx = np.unique(y, return_inverse=True)
    return idx


def dump(path, obj):
    obj = {"sklearn_version": sklearn.__version__, **obj}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=None, separators=(",", ":")) + "\n")


def mat(a):
    return np.asarray(a, dtype=float).tolist()


def linear():
    x, y = load("diabetes")
    cases = []

    def add(name, params, est):
        est.fit(x, y)
        cases.append({"algo": name, "params": params, "coef": mat(est.coef_),
                      "intercept": float(est.intercept_),
                      "n_iter": int(getattr(est, "n_iter_", 0) or 0)})

    add("LinearRegression", {}, lm.LinearRegression())
    add("LinearRegression", {"fit_intercept": "False"}, lm.LinearRegression(fit_intercept=False))
    add("Ridge", {}, lm.Ridge())
    add("Ridge", {"alpha": "0.01"}, lm.Ridge(alpha=0.01))
    add("Ridge", {"alpha": "10", "fit_intercept": "False"}, lm.Ridge(alpha=10, fit_intercept=False))
    add("Lasso", {"alpha": "0.1"}, lm.Lasso(alpha=0.1))
    add("Lasso", {"alpha": "0.01"}, lm.Lasso(alpha=0.01))
    add("Lasso", {"alpha": "0.01", "tol": "1e-12", "max_iter": "100000"},
        lm.Lasso(alpha=0.01, tol=1e-12, max_iter=100000))
    add("ElasticNet", {"alpha": "0.01", "l1_ratio": "0.5"}, lm.ElasticNet(alpha=0.01, l1_ratio=0.5))
    add("ElasticNet", {"alpha": "0.001", "l1_ratio": "0.7", "tol": "1e-12", "max_iter": "100000"},
        lm.ElasticNet(alpha=0.001, l1_ratio=0.7, tol=1e-12, max_iter=100000))

    # Rank-deficient design (a duplicated column): lstsq's minimum-norm solution.
    xd = np.hstack([x[:, :3], x[:, :1]])
    ols = lm.LinearRegression().fit(xd, y)
    deficient = {"columns": [0, 1, 2, 0], "coef": mat(ols.coef_), "intercept": float(ols.intercept_)}

    # Every fit here converges (checked below): a fit stopped by max_iter ends wherever its line
    # searches led, which differs between implementations and machines, so it is no reference.
    logistic = []
    for dataset, params, est in [
        ("iris", {"max_iter": "1000"}, lm.LogisticRegression(max_iter=1000)),
        ("iris", {"C": "0.1", "tol": "1e-10", "max_iter": "10000"},
         lm.LogisticRegression(C=0.1, tol=1e-10, max_iter=10000)),
        ("wine", {"C": "1", "tol": "1e-10", "max_iter": "100000"},
         lm.LogisticRegression(tol=1e-10, max_iter=100000)),
        ("iris", {"fit_intercept": "False", "tol": "1e-10", "max_iter": "10000"},
         lm.LogisticRegression(fit_intercept=False, tol=1e-10, max_iter=10000)),
    ]:
        xs, ys = load(dataset)
        est.fit(xs, ys)
        assert est.n_iter_[0] < est.max_iter, (dataset, params)
        logistic.append({"dataset": dataset, "params": params, "coef": mat(est.coef_),
                         "intercept": mat(est.intercept_),
                         "proba_head": mat(est.predict_proba(xs[:10])),
                         "n_iter": int(est.n_iter_[0])})
    # Binary, on a synthetic well-conditioned problem stored in the fixture.
    xb, yb = make_classification(n_samples=200, n_features=5, n_informative=3, random_state=7)
    est = lm.LogisticRegression(C=0.5, tol=1e-10, max_iter=10000).fit(xb, yb)
    binary = {"x": mat(xb), "y": mat(yb), "params": {"C": "0.5", "tol": "1e-10", "max_iter": "10000"},
              "coef": mat(est.coef_), "intercept": mat(est.intercept_),
              "proba": mat(est.predict_proba(xb[:20]))}
    dump(FIX / "linear" / "linear.json",
         {"regression": cases, "rank_deficient": deficient, "logistic": logistic,
          "binary_logistic": binary})


def naive_bayes():
    out = {}
    for dataset in ["iris", "wine"]:
        x, y = load(dataset)
        est = nb.GaussianNB().fit(x, y)
        out[f"gaussian_{dataset}"] = {"proba": mat(est.predict_proba(x)),
                                      "theta": mat(est.theta_), "var": mat(est.var_)}
    x, y = load("iris")
    est = nb.GaussianNB(var_smoothing=0.1).fit(x, y)
    out["gaussian_iris_smooth"] = {"proba": mat(est.predict_proba(x))}
    x, y = load("digits")
    head = slice(0, 20)
    for key, est in [("multinomial", nb.MultinomialNB()), ("multinomial_a05", nb.MultinomialNB(alpha=0.5)),
                     ("bernoulli", nb.BernoulliNB(binarize=4.0)),
                     ("bernoulli_noprior", nb.BernoulliNB(binarize=8.0, fit_prior=False))]:
        est.fit(x, y)
        out[f"{key}_digits"] = {"proba_head": mat(est.predict_proba(x[head])),
                                "predict": mat(est.predict(x))}
    rng = np.random.default_rng(3)
    xc = rng.integers(0, 4, size=(80, 3)).astype(float)
    xc[:, 2] = rng.integers(0, 2, size=80)
    yc = (xc[:, 0] + rng.integers(0, 2, size=80) > 2).astype(float) + (xc[:, 1] > 2)
    est = nb.CategoricalNB(alpha=0.7).fit(xc, yc)
    out["categorical"] = {"x": mat(xc), "y": mat(yc), "alpha": 0.7, "proba": mat(est.predict_proba(xc))}
    dump(FIX / "naive_bayes" / "naive_bayes.json", out)


def preprocessing():
    x, _ = load("wine")
    out = {"wine_rows": 20}
    out["standard"] = mat(pp.StandardScaler().fit(x).transform(x[:20]))
    out["standard_nomean"] = mat(pp.StandardScaler(with_mean=False).fit(x).transform(x[:20]))
    out["minmax"] = mat(pp.MinMaxScaler().fit(x).transform(x[:20]))
    out["minmax_range"] = mat(pp.MinMaxScaler(feature_range=(-2, 3)).fit(x).transform(x[:20]))
    out["robust"] = mat(pp.RobustScaler().fit(x).transform(x[:20]))
    out["robust_q"] = mat(pp.RobustScaler(quantile_range=(10, 80)).fit(x).transform(x[:20]))
    xi, _ = load("iris")
    out["poly_input"] = mat(xi[:5])
    out["poly2"] = mat(pp.PolynomialFeatures(2).fit_transform(xi[:5]))
    out["poly3_interaction_nobias"] = mat(
        pp.PolynomialFeatures(3, interaction_only=True, include_bias=False).fit_transform(xi[:5]))
    xo = np.array([[1, 10.5], [3, 10.5], [2, -1], [1, 7], [3, 7]], dtype=float)
    out["onehot_input"] = mat(xo)
    out["onehot"] = mat(pp.OneHotEncoder(sparse_output=False).fit_transform(xo))
    xq = np.array([[2, 7], [4, 10.5]], dtype=float)
    out["onehot_ignore_query"] = mat(xq)
    out["onehot_ignore"] = mat(pp.OneHotEncoder(sparse_output=False, handle_unknown="ignore")
                               .fit(xo).transform(xq))
    yl = np.array([5.0, -1.0, 3.5, 5.0, 3.5])
    out["label_input"] = mat(yl)
    out["label_encoded"] = mat(pp.LabelEncoder().fit_transform(yl))
    dump(FIX / "preprocessing" / "preprocessing.json", out)


def metrics_and_selection():
    rng = np.random.default_rng(11)
    n = 60
    yt = rng.integers(0, 3, size=n)
    yp = np.where(rng.random(n) < 0.6, yt, rng.integers(0, 3, size=n))
    proba = rng.random((n, 3)) + np.eye(3)[yt] * 0.8
    proba /= proba.sum(axis=1, keepdims=True)
    ytb = rng.integers(0, 2, size=n)
    score = np.round(rng.random(n) + 0.5 * ytb, 1)  # rounded: ties exercise the ROC sweep
    ypb = (rng.random(n) < 0.3).astype(int) ^ ytb
    yr = rng.normal(size=n) * 3
    yrp = yr + rng.normal(size=n)
    out = {"y_true": mat(yt), "y_pred": mat(yp), "proba": mat(proba), "y_true_binary": mat(ytb),
           "y_pred_binary": mat(ypb), "score_binary": mat(score), "y_reg": mat(yr), "y_reg_pred": mat(yrp)}
    m = {"accuracy": skm.accuracy_score(yt, yp), "confusion": mat(skm.confusion_matrix(yt, yp))}
    for avg in ["micro", "macro", "weighted"]:
        m[f"precision_{avg}"] = skm.precision_score(yt, yp, average=avg)
        m[f"recall_{avg}"] = skm.recall_score(yt, yp, average=avg)
        m[f"f1_{avg}"] = skm.f1_score(yt, yp, average=avg)
    m["precision_binary"] = skm.precision_score(ytb, ypb)
    m["recall_binary"] = skm.recall_score(ytb, ypb)
    m["f1_binary"] = skm.f1_score(ytb, ypb)
    m["roc_auc_binary"] = skm.roc_auc_score(ytb, score)
    m["roc_auc_ovr_macro"] = skm.roc_auc_score(yt, proba, multi_class="ovr", average="macro")
    m["log_loss"] = skm.log_loss(yt, proba)
    m["mse"] = skm.mean_squared_error(yr, yrp)
    m["mae"] = skm.mean_absolute_error(yr, yrp)
    m["r2"] = skm.r2_score(yr, yrp)
    xi, yi = load("iris")
    m["silhouette_iris"] = skm.silhouette_score(xi, class_indices(yi))
    la = rng.integers(0, 4, size=n)
    lb = np.where(rng.random(n) < 0.5, la, rng.integers(0, 5, size=n))
    out["ari_a"] = mat(la)
    out["ari_b"] = mat(lb)
    m["ari"] = skm.adjusted_rand_score(la, lb)
    out["expected"] = m

    folds = {}
    for dataset in ["iris", "wine", "breast_cancer", "digits"]:
        _, y = load(dataset)
        folds[dataset] = [mat(test) for _, test in StratifiedKFold(5).split(np.zeros(len(y)), y)]
    folds["kfold_n10_k3"] = [mat(test) for _, test in KFold(3).split(np.zeros(10))]
    out["stratified_folds"] = folds

    cv = []
    def add_cv(dataset, name, est, params, metric=None):
        x, y = load(dataset)
        scores = cross_val_score(est, x, y, cv=5, scoring=metric)
        cv.append({"dataset": dataset, "algo": name, "params": params, "metric": metric or "",
                   "scores": mat(scores), "mean": float(scores.mean())})
    # Logistic regression only where every fold's fit converges (unscaled breast_cancer and
    # digits need more than 10000 iterations), with the out-of-fold decision values so that the
    # test can tell a close call from a wrong prediction.
    for ds, max_iter in [("iris", 1000), ("wine", 10000)]:
        x, y = load(ds)
        decision = np.zeros((len(y), len(np.unique(y))))
        for train, test in StratifiedKFold(5).split(x, y):
            est = lm.LogisticRegression(max_iter=max_iter).fit(x[train], y[train])
            assert est.n_iter_[0] < max_iter, ds
            decision[test] = est.decision_function(x[test])
        add_cv(ds, "LogisticRegression", lm.LogisticRegression(max_iter=max_iter),
               {"max_iter": str(max_iter)})
        cv[-1]["decision"] = mat(decision)
    for ds in ["iris", "wine", "breast_cancer", "digits"]:
        add_cv(ds, "GaussianNB", nb.GaussianNB(), {})
    add_cv("digits", "MultinomialNB", nb.MultinomialNB(), {})
    add_cv("digits", "BernoulliNB", nb.BernoulliNB(binarize=4.0), {"binarize": "4.0"})
    add_cv("iris", "GaussianNB", nb.GaussianNB(), {}, "f1_macro")
    add_cv("breast_cancer", "GaussianNB", nb.GaussianNB(), {}, "roc_auc")
    add_cv("wine", "GaussianNB", nb.GaussianNB(), {}, "neg_log_loss")
    for name, est, params in [("LinearRegression", lm.LinearRegression(), {}),
                              ("Ridge", lm.Ridge(alpha=0.1), {"alpha": "0.1"}),
                              ("Lasso", lm.Lasso(alpha=0.05), {"alpha": "0.05"}),
                              ("ElasticNet", lm.ElasticNet(alpha=0.001), {"alpha": "0.001"})]:
        add_cv("diabetes", name, est, params)
    add_cv("diabetes", "Ridge", lm.Ridge(), {}, "neg_mean_squared_error")
    out["cross_val_score"] = cv
    dump(FIX / "metrics" / "metrics.json", out)


if __name__ == "__main__":
    linear()
    naive_bayes()
    preprocessing()
    metrics_and_selection()
