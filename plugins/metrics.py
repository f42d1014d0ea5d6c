"""Generic metrics, computed with scikit-learn on raw model outputs.

Classification metrics take the argmax of the logits (multiclass) or threshold each
label's logit at 0 (multilabel); ranking metrics (``auroc``) use the logits themselves;
regression metrics use the first output column.

The common metrics are built in so that plugins never register their own copy of one (two
plugins registering ``balanced_accuracy`` would clash and one would be left out).  Where a
metric is mathematically undefined on the data given (a constant prediction for ``corr`` and
``mcc``, a class without positives for ``auroc``, constant targets for ``r2``) it returns NaN,
never a stand-in, so the leaderboard shows "undefined" instead of ranking it.
"""

import warnings

import numpy as np
from sklearn import metrics as skm

from fusebench import MetricSpec, hookimpl


def class_predictions(y_pred: np.ndarray) -> np.ndarray:
    """Argmax over logits (N, C) -> (N,)."""
    return np.asarray(y_pred).reshape(len(y_pred), -1).argmax(axis=1)


def regression_values(y_pred: np.ndarray) -> np.ndarray:
    return np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)[:, 0]


def _class_labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray] | None:
    """(truth, predicted class) as 1-D integer arrays of equal length, or None where the
    fast paths below do not apply (scikit-learn then checks and computes)."""
    truth, pred = np.asarray(y_true), class_predictions(y_pred)
    if truth.ndim != 1 or truth.shape != pred.shape or truth.dtype.kind not in "iu":
        return None
    return truth, pred


def _f1_per_class(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's per-label F1 (labels: the sorted union of truth and prediction, zero
    division 0) and each label's support, computed the way it computes them (2 tp / (t + p) in
    float64), so the averages below equal ``f1_score`` to the last bit."""
    labels, index = np.unique(np.concatenate([truth, pred]), return_inverse=True)
    t, p = index[: len(truth)], index[len(truth):]
    k = len(labels)
    true_sum, pred_sum = np.bincount(t, minlength=k), np.bincount(p, minlength=k)
    tp = np.bincount(t[t == p], minlength=k)
    denom = 1.0 * true_sum.astype(np.float64) + pred_sum.astype(np.float64)
    f1 = np.divide(2.0 * tp.astype(np.float64), denom, out=np.zeros(k), where=denom != 0)
    return f1, true_sum


# accuracy and F1 are computed per stress condition and per bootstrap resample of EMAP, where
# scikit-learn's input validation (milliseconds per call) used to dominate the evaluation time;
# the fast paths are exact (tests/test_metric_fast_paths.py compares them with scikit-learn).

def accuracy(y_true, y_pred):
    y_true = np.asarray(y_true)
    if y_true.ndim == 2:  # multilabel: mean per-label accuracy of logit > 0
        return float(((np.asarray(y_pred) > 0) == (y_true > 0.5)).mean())
    labels = _class_labels(y_true, y_pred)
    if labels is not None:
        return float(np.average(labels[0] == labels[1]))
    return float(skm.accuracy_score(y_true, class_predictions(y_pred)))


def f1_macro(y_true, y_pred):
    labels = _class_labels(y_true, y_pred)
    if labels is not None and len(labels[0]):
        return float(np.average(_f1_per_class(*labels)[0]))
    return float(skm.f1_score(y_true, class_predictions(y_pred), average="macro", zero_division=0))


def f1_weighted(y_true, y_pred):
    labels = _class_labels(y_true, y_pred)
    if labels is not None and len(labels[0]):
        f1, support = _f1_per_class(*labels)
        return float(np.average(f1, weights=support))
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


def balanced_accuracy(y_true, y_pred):
    """Mean per-class recall: chance is 1/C whatever the class balance."""
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true" on small splits
        warnings.simplefilter("ignore", UserWarning)
        return float(skm.balanced_accuracy_score(np.asarray(y_true).reshape(-1), class_predictions(y_pred)))


def precision_macro(y_true, y_pred):
    return float(skm.precision_score(y_true, class_predictions(y_pred), average="macro", zero_division=0))


def recall_macro(y_true, y_pred):
    return float(skm.recall_score(y_true, class_predictions(y_pred), average="macro", zero_division=0))


def mcc(y_true, y_pred):
    """Matthews correlation (multiclass R_K); NaN when the truth or the prediction is a single
    class, where it is 0/0 (scikit-learn reports 0.0 there)."""
    truth, pred = np.asarray(y_true).reshape(-1), class_predictions(y_pred)
    if len(np.unique(truth)) < 2 or len(np.unique(pred)) < 2:
        return float("nan")
    return float(skm.matthews_corrcoef(truth, pred))


def _multilabel(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(y_true) > 0.5).astype(np.int64), (np.asarray(y_pred) > 0).astype(np.int64)


def f1_micro_multilabel(y_true, y_pred):
    truth, pred = _multilabel(y_true, y_pred)
    return float(skm.f1_score(truth, pred, average="micro", zero_division=0))


def f1_macro_multilabel(y_true, y_pred):
    truth, pred = _multilabel(y_true, y_pred)
    return float(skm.f1_score(truth, pred, average="macro", zero_division=0))


def auroc(y_true, y_pred):
    """Area under the ROC curve from the logits: binary (logit difference), multiclass
    (one-vs-rest, macro over classes, on the softmax) or multilabel (macro over labels).
    NaN when some class or label has no positive or no negative sample in ``y_true``."""
    truth = np.asarray(y_true)
    scores = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    if truth.ndim == 2:  # multilabel
        truth = (truth > 0.5).astype(np.int64)
        if np.any(truth.min(axis=0) == truth.max(axis=0)):
            return float("nan")
        return float(skm.roc_auc_score(truth, scores, average="macro"))
    truth = truth.reshape(-1).astype(np.int64)
    n_classes = scores.shape[1]
    if len(np.unique(truth)) < n_classes:
        return float("nan")
    if n_classes == 2:
        return float(skm.roc_auc_score(truth, scores[:, 1] - scores[:, 0]))
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return float(skm.roc_auc_score(truth, shifted / shifted.sum(axis=1, keepdims=True), multi_class="ovr",
                                   average="macro", labels=np.arange(n_classes)))


def rmse(y_true, y_pred):
    truth = np.asarray(y_true, dtype=np.float64).reshape(-1)
    return float(skm.root_mean_squared_error(truth, regression_values(y_pred)))


def r2(y_true, y_pred):
    """Coefficient of determination; NaN for constant targets (0/0)."""
    truth = np.asarray(y_true, dtype=np.float64).reshape(-1)
    if truth.std() == 0:
        return float("nan")
    return float(skm.r2_score(truth, regression_values(y_pred)))


@hookimpl
def register_metrics(register):
    register(MetricSpec("accuracy", accuracy, True, ("multiclass", "multilabel"),
                        "Fraction correct (argmax of logits; multilabel: mean per-label accuracy)."))
    register(MetricSpec("f1_macro", f1_macro, True, ("multiclass",), "Unweighted mean of per-class F1."))
    register(MetricSpec("f1_weighted", f1_weighted, True, ("multiclass",),
                        "Support-weighted mean of per-class F1 (sklearn, y_true first)."))
    register(MetricSpec("mae", mae, False, ("regression",), "Mean absolute error (unclipped)."))
    register(MetricSpec("mse", mse, False, ("regression",), "Mean squared error."))
    register(MetricSpec("corr", pearson, True, ("regression",),
                        "Pearson correlation of prediction and truth (undefined, NaN, for a constant prediction)."))
    register(MetricSpec("balanced_accuracy", balanced_accuracy, True, ("multiclass",),
                        "Mean per-class recall (sklearn balanced_accuracy_score); chance is 1/C."))
    register(MetricSpec("precision_macro", precision_macro, True, ("multiclass",),
                        "Unweighted mean of per-class precision."))
    register(MetricSpec("recall_macro", recall_macro, True, ("multiclass",),
                        "Unweighted mean of per-class recall (equals balanced_accuracy when every class occurs)."))
    register(MetricSpec("mcc", mcc, True, ("multiclass",),
                        "Matthews correlation coefficient (NaN when truth or prediction is one class)."))
    register(MetricSpec("auroc", auroc, True, ("multiclass", "multilabel"),
                        "ROC AUC from the logits (binary; one-vs-rest macro; macro over labels)."))
    register(MetricSpec("f1_micro_multilabel", f1_micro_multilabel, True, ("multilabel",),
                        "Micro-averaged F1 over all labels (logit > 0 = present)."))
    register(MetricSpec("f1_macro_multilabel", f1_macro_multilabel, True, ("multilabel",),
                        "Unweighted mean of per-label F1 (logit > 0 = present)."))
    register(MetricSpec("rmse", rmse, False, ("regression",), "Root mean squared error."))
    register(MetricSpec("r2", r2, True, ("regression",), "Coefficient of determination (NaN for constant targets)."))
