"""Reference values for Ember's KMeans, DBSCAN and AgglomerativeClustering from scikit-learn.

Writes tests/fixtures/ml/cluster/cluster.json: small synthetic inputs (rounded to 4 decimals so
the stored text is exactly what scikit-learn saw) with scikit-learn's labels, inertia, centres,
merge trees. Run: tools/.venv/bin/python tools/ml/cluster_fixtures.py
"""
import json
import pathlib

import numpy as np
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans, kmeans_plusplus
from sklearn.datasets import make_blobs, make_moons

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "ml" / "cluster"


def flat(a):
    return np.asarray(a).ravel().tolist()


def main():
    blobs, _ = make_blobs(n_samples=400, n_features=3, centers=5, cluster_std=1.6,
                          random_state=1)
    blobs = np.round(blobs, 4)
    moons, _ = make_moons(n_samples=240, noise=0.08, random_state=2)
    moons = np.round(moons, 4)
    small, _ = make_blobs(n_samples=90, n_features=2, centers=4, cluster_std=1.2, random_state=3)
    small = np.round(small, 4)
    # 27 features: k-means++ sums its distances in 8-feature lanes plus a tail (kmeans.cpp).
    wide, _ = make_blobs(n_samples=300, n_features=27, centers=6, cluster_std=2.0,
                         random_state=4)
    wide = np.round(wide, 4)
    out = {"blobs": flat(blobs), "blobs_cols": 3, "moons": flat(moons), "moons_cols": 2,
           "small": flat(small), "small_cols": 2, "wide": flat(wide), "wide_cols": 27,
           "kmeans": [], "dbscan": [],
           "agglomerative": []}

    rng = np.random.RandomState(5)
    for k, algorithm in ((5, "lloyd"), (5, "elkan"), (8, "lloyd"), (3, "elkan")):
        init = blobs[rng.choice(len(blobs), k, replace=False)]
        km = KMeans(n_clusters=k, init=init, n_init=1, algorithm=algorithm).fit(blobs)
        out["kmeans"].append({"n_clusters": k, "algorithm": algorithm, "init": flat(init),
                              "labels": flat(km.labels_), "inertia": float(km.inertia_),
                              "centers": flat(km.cluster_centers_), "n_iter": int(km.n_iter_),
                              "predict_moons_padded": flat(km.predict(blobs[:20] + 0.5)),
                              "transform": flat(km.transform(blobs[:10]))})
    # k-means++ quality reference: best inertia scikit-learn finds over 10 seeds.
    plusplus = [KMeans(n_clusters=5, random_state=s).fit(blobs).inertia_ for s in range(10)]
    out["kmeans_plusplus"] = {"n_clusters": 5, "inertia_min": float(min(plusplus)),
                              "inertia_median": float(np.median(plusplus))}
    # Ember's k-means++ draws from numpy's RandomState stream: the same seed picks the same rows,
    # and KMeans from it takes scikit-learn's iterations (n_init=3 continues one stream).
    out["kmeans_plusplus_seeds"] = []
    for name, seed, k, n_init in (("blobs", 0, 5, 1), ("blobs", 1, 8, 1), ("blobs", 7, 3, 1),
                                  ("blobs", 2, 5, 3), ("wide", 3, 6, 1), ("wide", 9, 12, 1)):
        data = {"blobs": blobs, "wide": wide}[name]
        _, indices = kmeans_plusplus(data, k, random_state=seed)
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(data)
        out["kmeans_plusplus_seeds"].append({"data": name, "seed": seed, "n_clusters": k,
                                             "n_init": n_init,
                                             "indices": flat(indices),
                                             "inertia": float(km.inertia_),
                                             "n_iter": int(km.n_iter_),
                                             "labels": flat(km.labels_)})

    for data, params in (("moons", dict(eps=0.2, min_samples=5)),
                         ("moons", dict(eps=0.12, min_samples=8, algorithm="brute")),
                         ("blobs", dict(eps=2.2, min_samples=6, metric="manhattan")),
                         ("blobs", dict(eps=1.2, min_samples=4, metric="chebyshev",
                                        algorithm="ball_tree"))):
        x = {"moons": moons, "blobs": blobs}[data]
        db = DBSCAN(**params).fit(x)
        out["dbscan"].append({"data": data, "params": {k: str(v) for k, v in params.items()},
                              "labels": flat(db.labels_),
                              "core_sample_indices": flat(db.core_sample_indices_)})

    for data, params in (("small", dict(n_clusters=4, linkage="ward")),
                         ("small", dict(n_clusters=4, linkage="complete")),
                         ("small", dict(n_clusters=3, linkage="average")),
                         ("small", dict(n_clusters=5, linkage="single")),
                         ("small", dict(n_clusters=4, linkage="average", metric="manhattan")),
                         ("blobs", dict(n_clusters=5, linkage="ward")),
                         ("moons", dict(n_clusters=2, linkage="single"))):
        x = {"moons": moons, "blobs": blobs, "small": small}[data]
        ag = AgglomerativeClustering(**params).fit(x)
        out["agglomerative"].append({"data": data,
                                     "params": {k: str(v) for k, v in params.items()},
                                     "labels": flat(ag.labels_),
                                     "children": flat(ag.children_)})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cluster.json").write_text(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
