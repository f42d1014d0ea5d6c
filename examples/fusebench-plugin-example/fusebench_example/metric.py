"""Balanced accuracy: the mean of per-class recalls (chance level is 1/C whatever the class
balance), computed by scikit-learn on the argmax of the logits."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import balanced_accuracy_score


def balanced_accuracy(y_true, y_pred) -> float:
    """``y_true`` (N,) class indices, ``y_pred`` (N, C) raw logits as FuseBench passes them."""
    predicted = np.asarray(y_pred).reshape(len(y_pred), -1).argmax(axis=1)
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true" on tiny splits
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(np.asarray(y_true).reshape(-1), predicted))
