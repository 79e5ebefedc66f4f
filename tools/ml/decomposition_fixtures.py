"""Reference values for Ember's PCA and TruncatedSVD from scikit-learn.

Writes tests/fixtures/ml/decomposition/decomposition.json with the input matrices (small,
synthetic, correlated columns) and scikit-learn's fitted attributes and transforms.
Run: tools/.venv/bin/python tools/ml/decomposition_fixtures.py
"""
import json
import pathlib

import numpy as np
from sklearn.decomposition import PCA, TruncatedSVD

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "ml" / "decomposition"


def correlated(rng, rows, cols, rank):
    basis = rng.normal(size=(rank, cols)) * np.linspace(3, 0.5, rank)[:, None]
    return rng.normal(size=(rows, rank)) @ basis + 0.1 * rng.normal(size=(rows, cols)) + 2.0


def pca_case(x, x_new, **params):
    p = PCA(**params).fit(x)
    return {"params": {k: str(v) for k, v in params.items()},
            "n_components": int(p.n_components_),
            "components": p.components_.ravel().tolist(),
            "mean": p.mean_.tolist(),
            "explained_variance": p.explained_variance_.tolist(),
            "explained_variance_ratio": p.explained_variance_ratio_.tolist(),
            "singular_values": p.singular_values_.tolist(),
            "noise_variance": float(p.noise_variance_),
            "transform": p.transform(x_new).ravel().tolist(),
            "inverse_transform": p.inverse_transform(p.transform(x_new)).ravel().tolist()}


def truncated_svd_case(svd, x_new):
    return {"n_components": int(svd.n_components),
            "components": svd.components_.ravel().tolist(),
            "singular_values": svd.singular_values_.tolist(),
            "explained_variance": svd.explained_variance_.tolist(),
            "explained_variance_ratio": svd.explained_variance_ratio_.tolist(),
            "transform": svd.transform(x_new).ravel().tolist()}


def main():
    rng = np.random.RandomState(0)
    # Inputs are rounded to 4 decimals so the stored text is exactly what scikit-learn saw.
    def make(rows, cols, rank):
        return np.round(correlated(rng, rows, cols, rank), 4)
    wide = make(40, 12, 4)     # n < 10 p: "full" under auto
    tall = make(200, 6, 3)     # n >= 10 p: "covariance_eigh" under auto
    big = make(250, 30, 5)
    new_wide, new_tall, new_big = make(5, 12, 4), make(5, 6, 3), make(5, 30, 5)
    out = {"wide": wide.ravel().tolist(), "wide_shape": list(wide.shape),
           "tall": tall.ravel().tolist(), "tall_shape": list(tall.shape),
           "big": big.ravel().tolist(), "big_shape": list(big.shape),
           "new_wide": new_wide.ravel().tolist(), "new_tall": new_tall.ravel().tolist(),
           "new_big": new_big.ravel().tolist()}
    out["pca"] = {
        "wide_full_3": pca_case(wide, new_wide, n_components=3, svd_solver="full"),
        "wide_full_all": pca_case(wide, new_wide, svd_solver="full"),
        "wide_frac": pca_case(wide, new_wide, n_components=0.9, svd_solver="full"),
        "wide_whiten": pca_case(wide, new_wide, n_components=4, whiten=True),
        "tall_auto": pca_case(tall, new_tall, n_components=2),
        "tall_full": pca_case(tall, new_tall, n_components=2, svd_solver="full"),
        "big_randomized": pca_case(big, new_big, n_components=5, svd_solver="randomized",
                                   random_state=0),
        "big_full": pca_case(big, new_big, n_components=5, svd_solver="full"),
        "big_arpack": pca_case(big, new_big, n_components=5, svd_solver="arpack",
                               random_state=0),
        "wide_arpack_default": pca_case(wide, new_wide, svd_solver="arpack", random_state=0),
        "big_mle": pca_case(big, new_big, n_components="mle"),
        "tall_mle": pca_case(tall, new_tall, n_components="mle"),
    }
    # Minka's MLE on the shipped datasets (standardized, as PCA is usually run): the chosen
    # dimension only.
    out["pca_mle_datasets"] = {}
    data_dir = OUT.parents[3] / "data" / "datasets"
    for name in ("iris", "wine", "breast_cancer", "digits", "diabetes"):
        table = np.genfromtxt(data_dir / f"{name}.csv", delimiter=",", names=True)
        columns = [c for c in table.dtype.names if c != "target"]
        x = np.column_stack([table[c] for c in columns])
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
        out["pca_mle_datasets"][name] = {
            "n_components": int(PCA(n_components="mle", svd_solver="full").fit(x).n_components_)}
    out["truncated_svd_arpack"] = truncated_svd_case(
        TruncatedSVD(n_components=4, algorithm="arpack", random_state=0).fit(big), new_big)
    out["truncated_svd"] = truncated_svd_case(
        TruncatedSVD(n_components=4, random_state=0).fit(big), new_big)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "decomposition.json").write_text(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
