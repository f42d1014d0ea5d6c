"""Synthetic two-modality tasks with a *known* interaction type (no download needed).

Generator (docs/datasets.md, "Synthetic suite"): latent ``r`` (shared), ``u1``, ``u2``
(unique) ~ N(0, I_k); ``x_m = tanh(A_m [u_m; r]) + noise * eps`` with a fixed random A_m;
scores ``s0 = a.r``, ``s1 = a1.u1``, ``s2 = a2.u2`` for fixed unit vectors.  Labels:

===================  ==========================  ==============  ========  ========  ========
dataset              label                       unimodal x1/x2  additive  bilinear  MLP
===================  ==========================  ==============  ========  ========  ========
synthetic-redundant  1[s0 > 0]                   99 / 100        100       100       100
synthetic-unique     1[s1 > 0]                   99 / 48         98        99        98
synthetic-mixed      1[s0 + s1 + s2 > 0]         82 / 79         98        98        97
synthetic-xor        1[s1 > 0] xor 1[s2 > 0]     47 / 51         **48**    98        98
===================  ==========================  ==============  ========  ========  ========

Test accuracy in % with the defaults (n=2000, latent_dim=1, noise=0.05, data_seed=0, 70/30 cut), measured with
scikit-learn probes: logistic regression on one modality, on [x1; x2] (an additive
model), on [x1; x2; x1 (x) x2] (bilinear, i.e. multiplicative interactions) and a
64-unit MLP on [x1; x2].  Fusion families: unimodal/late/additive/EMAP-projected models
solve redundant, unique and mixed but stay at chance on xor; tensor, bilinear, low-rank,
multiplicative, gated, attention and MLP-head (early, nonlinear) families can solve xor.
``tests/test_datasets_synthetic.py`` checks these expectations.

XOR (parity) is the only one that *forces* interactions: any model whose logit is a sum
of per-modality terms (late fusion, additive fusion, the EMAP projection of anything) is
at chance on it.  ``-seq`` variants present each modality as a variable-length sequence
(the latent signal at every real step, independent noise per step) to exercise sequence
encoders.  The data depend only on ``data_seed``, never on the run seed, so every method
sees identical data.
"""

from __future__ import annotations

import datasets
import numpy as np

from fusebench import DataError, DatasetSpec, TargetSpec, dataset_from_arrays, hookimpl

TARGET = TargetSpec("multiclass", 2, ("negative", "positive"))
LABELS = {
    "redundant": lambda s0, s1, s2: s0 > 0,
    "unique": lambda s0, s1, s2: s1 > 0,
    "mixed": lambda s0, s1, s2: (s0 + s1 + s2) > 0,
    "xor": lambda s0, s1, s2: (s1 > 0) ^ (s2 > 0),
}
DEFAULTS = {"n": 2000, "latent_dim": 1, "dim": 16, "noise": 0.05, "label_noise": 0.0,
            "data_seed": 0, "seq_len": 8}


def generate(kind: str, *, n: int, latent_dim: int, dim: int, noise: float, label_noise: float,
             data_seed: int, sequence: bool = False, seq_len: int = 8):
    """Return (x1, x2, y) as numpy arrays; sequences are lists of (T_i, dim) arrays."""
    rng = np.random.default_rng(data_seed)
    k = latent_dim
    mixing = [rng.normal(0, 1 / np.sqrt(2 * k), size=(2 * k, dim)) for _ in range(2)]
    directions = rng.normal(size=(3, k))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    r, u1, u2 = (rng.normal(size=(n, k)) for _ in range(3))
    s0, s1, s2 = r @ directions[0], u1 @ directions[1], u2 @ directions[2]
    y = LABELS[kind](s0, s1, s2).astype(np.int64)
    flip = rng.random(n) < label_noise
    y = np.where(flip, 1 - y, y)
    clean = [np.tanh(np.concatenate([u, r], axis=1) @ a) for u, a in zip((u1, u2), mixing, strict=True)]
    if not sequence:
        return [(c + noise * rng.normal(size=c.shape)).astype(np.float32) for c in clean] + [y]
    lengths = rng.integers(max(2, seq_len // 2), seq_len + 1, size=(2, n))
    seqs = [
        [(c[i] + noise * rng.normal(size=(lengths[m, i], dim))).astype(np.float32) for i in range(n)]
        for m, c in enumerate(clean)
    ]
    return seqs + [y]


def make_loader(kind: str, sequence: bool):
    name = f"synthetic-{kind}" + ("-seq" if sequence else "")

    def load(options) -> datasets.DatasetDict:
        # An unknown key would otherwise reach generate() as a TypeError (or, for a key it
        # ignores, silently change the run's identity): refuse it with the keys that exist.
        unknown = sorted(set(options) - set(DEFAULTS))
        if unknown:
            raise DataError(f"dataset {name!r} has no option(s) {unknown}; it accepts "
                            f"{', '.join(sorted(DEFAULTS))} (--dataset-option {name}.KEY=VALUE).")
        opts = {**DEFAULTS, **options}
        x1, x2, y = generate(kind, sequence=sequence, **opts)
        n = len(y)
        order = np.random.default_rng(opts["data_seed"] + 1).permutation(n)
        cut1, cut2 = int(0.7 * n), int(0.85 * n)
        parts = {"train": order[:cut1], "validation": order[cut1:cut2], "test": order[cut2:]}
        modality_kind = "sequence" if sequence else "vector"
        pick = (lambda v, idx: [v[i] for i in idx]) if sequence else (lambda v, idx: v[idx])
        return datasets.DatasetDict({
            split: dataset_from_arrays(
                {"x1": (modality_kind, pick(x1, idx)), "x2": (modality_kind, pick(x2, idx))}, y[idx], TARGET)
            for split, idx in parts.items()
        })
    return load


@hookimpl
def register_datasets(register):
    for kind in LABELS:
        for sequence in (False, True):
            name = f"synthetic-{kind}" + ("-seq" if sequence else "")
            register(DatasetSpec(
                name=name,
                load=make_loader(kind, sequence),
                target=TARGET,
                modalities=("x1", "x2"),
                metrics=("accuracy", "f1_macro"),
                primary_metric="accuracy",
                reference="FuseBench synthetic suite after Liang et al., NeurIPS 2023 (PID); "
                          "see docs/datasets.md, Synthetic suite",
                description=f"Two {'sequence' if sequence else 'vector'} modalities, label = "
                            f"{kind} interaction (module docstring lists expected accuracies).",
                defaults={k: v for k, v in DEFAULTS.items() if sequence or k != "seq_len"},
            ))
