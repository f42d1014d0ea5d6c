"""The synthetic suite's documented expectations, checked with cheap linear probes."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from plugins.datasets.synthetic import DEFAULTS, generate, make_loader


def _probe(features, y):
    cut = int(0.7 * len(y))
    model = LogisticRegression(max_iter=2000).fit(features[:cut], y[:cut])
    return model.score(features[cut:], y[cut:])


@pytest.fixture(scope="module")
def data():
    return {kind: generate(kind, **DEFAULTS) for kind in ("redundant", "unique", "mixed", "xor")}


def test_xor_defeats_additive_models_but_not_bilinear(data):
    x1, x2, y = data["xor"]
    assert abs(y.mean() - 0.5) < 0.05
    for features in (x1, x2, np.hstack([x1, x2])):  # unimodal and additive
        assert _probe(features, y) < 0.58
    bilinear = np.hstack([x1, x2, np.einsum("ni,nj->nij", x1, x2).reshape(len(y), -1)])
    assert _probe(bilinear, y) > 0.72


def test_redundant_is_solved_by_either_modality(data):
    x1, x2, y = data["redundant"]
    assert _probe(x1, y) > 0.88 and _probe(x2, y) > 0.88


def test_unique_lives_in_x1_only(data):
    x1, x2, y = data["unique"]
    assert _probe(x1, y) > 0.82 and _probe(x2, y) < 0.58


def test_mixed_needs_both_modalities(data):
    x1, x2, y = data["mixed"]
    both = _probe(np.hstack([x1, x2]), y)
    assert both > 0.88 and both > max(_probe(x1, y), _probe(x2, y)) + 0.08


def test_data_depend_only_on_data_seed():
    load = make_loader("xor", sequence=True)
    a, b, c = load({"n": 60}), load({"n": 60}), load({"n": 60, "data_seed": 1})
    assert a["train"]["x1"] == b["train"]["x1"] and a["train"]["x1"] != c["train"]["x1"]
    lengths = [len(s) for s in a["train"]["x1"]]
    assert min(lengths) >= 4 and max(lengths) <= 8 and len(set(lengths)) > 1  # ragged sequences
