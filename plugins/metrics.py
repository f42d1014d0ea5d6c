"""Generic metrics, computed with scikit-learn on raw model outputs.

Classification metrics take the argmax of the logits (multiclass) or threshold each
label's logit at 0 (multilabel); regression metrics use the first output column.
"""

import numpy as np
from sklearn import metrics as skm

from benchmark_core import MetricSpec, hookimpl


def class_predictions(y_pred: np.ndarray) -> np.ndarray:
    """Argmax over logits (N, C) -> (N,)."""
    return np.asarray(y_pred).reshape(len(y_pred), -1).argmax(axis=1)


def regression_values(y_pred: np.ndarray) -> np.ndarray:
    return np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)[:, 0]


def accuracy(y_true, y_pred):
    y_true = np.asarray(y_true)
    if y_true.ndim == 2:  # multilabel: mean per-label accuracy of logit > 0
        return float(((np.asarray(y_pred) > 0) == (y_true > 0.5)).mean())
    return float(skm.accuracy_score(y_true, class_predictions(y_pred)))


def f1_macro(y_true, y_pred):
    return float(skm.f1_score(y_true, class_predictions(y_pred), average="macro", zero_division=0))


def f1_weighted(y_true, y_pred):
    return float(skm.f1_score(y_true, class_predictions(y_pred), average="weighted", zero_division=0))


def mae(y_true, y_pred):
    return float(skm.mean_absolute_error(np.asarray(y_true, dtype=np.float64).reshape(-1), regression_values(y_pred)))


def mse(y_true, y_pred):
    return float(skm.mean_squared_error(np.asarray(y_true, dtype=np.float64).reshape(-1), regression_values(y_pred)))


def pearson(y_true, y_pred):
    """Pearson correlation; NaN (undefined) when either side is constant.  Reporting 0.0 there,
    as some code does, would rank a collapsed model above a negatively correlated one; MMSA
    reports NaN too."""
    truth, pred = np.asarray(y_true, dtype=np.float64).reshape(-1), regression_values(y_pred)
    if truth.std() == 0 or pred.std() == 0:
        return float("nan")
    return float(np.corrcoef(pred, truth)[0, 1])


@hookimpl
def register_metrics(register):
    register(MetricSpec("accuracy", accuracy, True, ("multiclass", "multilabel"),
                        "Fraction correct (argmax of logits; multilabel: mean per-label accuracy)."))
    register(MetricSpec("f1_macro", f1_macro, True, ("multiclass",), "Unweighted mean of per-class F1."))
    register(MetricSpec("f1_weighted", f1_weighted, True, ("multiclass",),
                        "Support-weighted mean of per-class F1 (sklearn, y_true first)."))
    register(MetricSpec("mae", mae, False, ("regression",), "Mean absolute error (unclipped)."))
    register(MetricSpec("mse", mse, False, ("regression",), "Mean squared error."))
    register(MetricSpec("corr", pearson, True, ("regression",), "Pearson correlation of prediction and truth (undefined, NaN, for a constant prediction)."))
