"""Writes scikit-learn's bundled classic datasets as CSV files under data/datasets/.

Classification targets are written as their class names (e.g. iris species), so the CSV loader
and the CLI's label mapping are exercised; digits keeps its integer labels. Run with the pinned
venv: tools/.venv/bin/python tools/ml/export_datasets.py
"""
import csv
import pathlib
import re

from sklearn import datasets

OUT = pathlib.Path(__file__).resolve().parents[2] / "data" / "datasets"


def column_name(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def write(name, bunch, label_names=None):
    OUT.mkdir(parents=True, exist_ok=True)
    features = getattr(bunch, "feature_names", None)
    if features is None or len(features) != bunch.data.shape[1]:
        features = [f"x{i}" for i in range(bunch.data.shape[1])]
    header = [column_name(f) for f in features] + ["target"]
    with open(OUT / f"{name}.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row, target in zip(bunch.data, bunch.target):
            label = label_names[int(target)] if label_names is not None else target
            w.writerow([repr(float(v)) if not float(v).is_integer() else str(int(v)) for v in row]
                       + [label if isinstance(label, str) else repr(float(label)) if isinstance(label, float) else int(label)])


def main():
    iris = datasets.load_iris()
    write("iris", iris, list(iris.target_names))
    wine = datasets.load_wine()
    write("wine", wine, list(wine.target_names))
    bc = datasets.load_breast_cancer()
    write("breast_cancer", bc, list(bc.target_names))
    write("digits", datasets.load_digits())
    write("diabetes", datasets.load_diabetes())


if __name__ == "__main__":
    main()
