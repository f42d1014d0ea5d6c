"""``example-parity3``: three modalities, each carrying one noisy bit; the label combines the bits.

Generated on the fly from ``data_seed`` (nothing to download, identical on every machine).
Modality ``a`` and ``b`` are vectors, ``c`` is a variable-length sequence (every real step
repeats its bit's direction with fresh noise), so the dataset exercises both encoders.
For sample i with bits ``z_a, z_b, z_c`` in {0, 1}, modality m is
``(2 z_m - 1) * d_m + noise * eps`` for a fixed random unit direction ``d_m``.

``rule="parity"`` (default): label = z_a xor z_b xor z_c; every single modality, and every
additive model, is at chance — it needs a three-way interaction.
``rule="majority"``: label = 1 if at least two bits are set; additive models do well.
"""

from __future__ import annotations

import datasets
import numpy as np

from fusebench import DataError, TargetSpec, dataset_from_arrays

TARGET = TargetSpec("multiclass", 2, ("zero", "one"))
DEFAULTS = {"n": 600, "dim": 6, "seq_dim": 4, "max_len": 6, "noise": 0.5, "rule": "parity", "data_seed": 0}
RULES = {
    "parity": lambda z: z.sum(axis=1) % 2,
    "majority": lambda z: (z.sum(axis=1) >= 2).astype(np.int64),
}


def generate(n: int, dim: int, seq_dim: int, max_len: int, noise: float, rule: str, data_seed: int):
    """Return (a, b, c, y): a, b as (n, dim) arrays, c as a list of (T_i, seq_dim) arrays."""
    if rule not in RULES:
        raise DataError(f"example-parity3: unknown rule {rule!r}; "
                        "use --dataset-option example-parity3.rule=parity|majority")
    if n < 10:
        raise DataError(f"example-parity3: n must be at least 10 (three splits), got {n}")
    rng = np.random.default_rng(data_seed)
    bits = rng.integers(0, 2, size=(n, 3))
    signs = 2.0 * bits - 1.0
    dirs = [rng.normal(size=d) for d in (dim, dim, seq_dim)]
    dirs = [d / np.linalg.norm(d) for d in dirs]
    a = (signs[:, :1] * dirs[0] + noise * rng.normal(size=(n, dim))).astype(np.float32)
    b = (signs[:, 1:2] * dirs[1] + noise * rng.normal(size=(n, dim))).astype(np.float32)
    lengths = rng.integers(max(1, max_len // 2), max_len + 1, size=n)
    c = [(signs[i, 2] * dirs[2] + noise * rng.normal(size=(lengths[i], seq_dim))).astype(np.float32)
         for i in range(n)]
    y = RULES[rule](bits).astype(np.int64)
    return a, b, c, y


def load(options) -> tuple[datasets.DatasetDict, dict]:
    """FuseBench calls this with the dataset's defaults merged with --dataset-option values."""
    opts = {**DEFAULTS, **options}
    a, b, c, y = generate(**opts)
    n = len(y)
    order = np.random.default_rng(opts["data_seed"] + 1).permutation(n)
    cut1, cut2 = int(0.6 * n), int(0.8 * n)
    parts = {"train": order[:cut1], "validation": order[cut1:cut2], "test": order[cut2:]}
    dsd = datasets.DatasetDict({
        split: dataset_from_arrays(
            {"a": ("vector", a[idx]), "b": ("vector", b[idx]), "c": ("sequence", [c[i] for i in idx])},
            y[idx], TARGET)
        for split, idx in parts.items()
    })
    # the optional report is recorded with every run (data provenance)
    report = {"rule": opts["rule"], "positive_rate": round(float(y.mean()), 4)}
    return dsd, report
