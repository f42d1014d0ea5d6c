"""UCI Multiple Features (mfeat): 2,000 handwritten digits seen through six feature views.

Real multi-view data that ships with FuseBench (``data/mfeat/mfeat.npz``, 2 MB, CC BY 4.0,
attribution in ``data/mfeat/SOURCE.md``), so ``bench run`` works on a fresh machine.  Six
vector modalities - Fourier coefficients (fou, 76), profile correlations (fac, 216),
Karhunen-Loeve coefficients (kar, 64), pixel averages (pix, 240), Zernike moments (zer,
47), morphological features (mor, 6) - and 10 balanced classes.

Split: stratified by class with ``data_seed``, 70/15/15 (1,400 / 300 / 300).  The views
differ in scale by four orders of magnitude (pix 0-6, mor up to 17,572), so by default
each feature is standardised with the *train* split's mean and standard deviation.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import datasets
import numpy as np

from fusebench import DataError, DatasetSpec, TargetSpec, dataset_from_arrays, hookimpl

VIEWS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
TARGET = TargetSpec("multiclass", 10, tuple(str(d) for d in range(10)))
DEFAULTS = {"data_seed": 0, "standardize": True}
FRACTIONS = (0.70, 0.15)  # train, validation; test gets the rest


def data_file() -> Path:
    return Path(str(resources.files("plugins.datasets") / "data" / "mfeat" / "mfeat.npz"))


def read_arrays() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The six views as float32 (2000, D) arrays and the digit labels."""
    with np.load(data_file()) as npz:
        views = {v: npz[v].astype(np.float32) for v in VIEWS}
        labels = npz["label"].astype(np.int64)
    return views, labels


def stratified_split(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Per class: shuffle with ``seed``, then cut 70/15/15 so every split is balanced."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        cut1, cut2 = round(FRACTIONS[0] * len(idx)), round(sum(FRACTIONS) * len(idx))
        for split, chunk in zip(parts, (idx[:cut1], idx[cut1:cut2], idx[cut2:]), strict=True):
            parts[split].append(chunk)
    return {split: np.sort(np.concatenate(chunks)) for split, chunks in parts.items()}


def load(options) -> datasets.DatasetDict:
    opts = {**DEFAULTS, **options}
    unknown = sorted(set(opts) - set(DEFAULTS))
    if unknown:
        raise DataError(f"dataset 'mfeat' has no option(s) {unknown}; it accepts "
                        f"{', '.join(sorted(DEFAULTS))} (--dataset-option mfeat.KEY=VALUE).")
    views, labels = read_arrays()
    splits = stratified_split(labels, int(opts["data_seed"]))
    if opts["standardize"]:
        train = splits["train"]
        for v, x in views.items():
            mean, std = x[train].mean(axis=0), x[train].std(axis=0)
            views[v] = (x - mean) / np.where(std > 0, std, 1.0)
    return datasets.DatasetDict({
        split: dataset_from_arrays({v: ("vector", x[idx]) for v, x in views.items()}, labels[idx], TARGET)
        for split, idx in splits.items()
    })


def build_npz(csv_dir: str | Path, out: str | Path) -> None:
    """Regenerate ``mfeat.npz`` from the six ``mfeat-<view>.csv`` files (header row, label last).

    Integer views are stored as integers (exact); the others as float32, which holds every
    value of the 5-6 significant-digit CSVs.
    """
    arrays, labels = {}, None
    for v, dim in VIEWS.items():
        table = np.loadtxt(Path(csv_dir) / f"mfeat-{v}.csv", delimiter=",", skiprows=1)
        x, y = table[:, :-1], table[:, -1].astype(np.uint8)
        if x.shape[1] != dim or (labels is not None and not np.array_equal(labels, y)):
            raise DataError(f"{csv_dir}/mfeat-{v}.csv: expected {dim} feature columns plus the label, "
                            "rows in the same digit order as the other views.")
        labels = y
        integral = np.array_equal(x, np.round(x)) and x.min() >= 0
        arrays[v] = x.astype(np.uint8 if integral and x.max() < 256 else np.uint16 if integral else np.float32)
    np.savez_compressed(out, label=labels, **arrays)


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="mfeat",
        load=load,
        target=TARGET,
        modalities=tuple(VIEWS),
        metrics=("accuracy", "f1_macro"),
        primary_metric="accuracy",
        reference="R. P. W. Duin, 'Multiple Features' data set, UCI Machine Learning Repository "
                  "(CC BY 4.0), doi:10.24432/C5HC70",
        how_to_obtain="Bundled with FuseBench (plugins/datasets/data/mfeat); nothing to download.",
        description="Real multi-view data: 2,000 digits, six feature views (fou, fac, kar, pix, "
                    "zer, mor), 10 classes; stratified 70/15/15, train-standardised.",
        defaults=DEFAULTS,
    ))
