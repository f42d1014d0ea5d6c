"""Worst-class recall: the recall of the class the model serves worst.

A model can reach a good mean recall (``balanced_accuracy``, built into FuseBench) while
ignoring one class almost completely; the minimum over classes exposes that.  Computed by
scikit-learn on the argmax of the logits.  Undefined (NaN) when a class has no sample in
``y_true``: its recall is 0/0, and a stand-in value would rank models on nothing.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import recall_score


def worst_class_recall(y_true, y_pred) -> float:
    """``y_true`` (N,) class indices, ``y_pred`` (N, C) raw logits as FuseBench passes them."""
    scores = np.asarray(y_pred).reshape(len(y_pred), -1)
    truth = np.asarray(y_true).reshape(-1)
    classes = np.arange(scores.shape[1])
    if not np.isin(classes, truth).all():
        return float("nan")
    recalls = recall_score(truth, scores.argmax(axis=1), labels=classes, average=None, zero_division=0)
    return float(np.min(recalls))
