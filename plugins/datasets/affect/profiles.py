"""What differs between the affect datasets (MOSI, MOSEI, IEMOCAP, IEMOCAP-6, MUStARD,
UR-FUNNY): file names, label encoding, metrics, folds.

Everything else (readers, caching, the DatasetSpec) is shared; a dataset is one
:class:`AffectProfile`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np

from fusebench import DataError, TargetSpec

from .convert import at_rows

MODALITIES = ("text", "audio", "vision")
EMOTIONS = ("neutral", "happy", "sad", "angry")
SENTIMENT_METRICS = ("mae", "corr", "acc2_nonzero", "f1_nonzero", "acc2_nonneg", "f1_nonneg", "acc5", "acc7")
IEMOCAP_METRICS = tuple(f"{m}_{e}" for e in EMOTIONS for m in ("acc", "f1")) + ("acc_mean", "f1_mean")
# MultiBench reports accuracy for MUStARD and UR-FUNNY; MUStARD's own paper weighted P/R/F1.
BINARY_METRICS = ("accuracy", "f1_weighted")
# The DialogueRNN label indices (declare-lab/conv-emotion DialogueRNN/dataloader.py).
IEMOCAP6_CLASSES = ("happy", "sad", "neutral", "angry", "excited", "frustrated")

Folds = Mapping[str, Sequence[str]]


class LabelReader(Protocol):
    """(raw labels, "file split 'x' field 'y'", sample ids) -> labels in the dataset's encoding."""

    def __call__(self, raw: Any, where: str, ids: Sequence[str] | None = None) -> np.ndarray: ...


def _numeric(raw: Any, where: str) -> np.ndarray:
    array = np.asarray(raw)
    if array.dtype.kind not in "fiub" or array.ndim == 0 or array.size == 0:
        raise DataError(f"{where}: labels have dtype {array.dtype} and shape {array.shape}; expected "
                        "a non-empty numeric array with one entry per sample.")
    return array


def _require_finite(values: np.ndarray, where: str, ids: Sequence[str] | None) -> None:
    """Labels cannot be repaired like feature values (replacing NaN by 0 invents a neutral
    sentiment), and the engine would only see them after conversion, without the file."""
    bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
    if len(bad):
        raise DataError(f"{where}: {len(bad)} non-finite labels (NaN/inf) at {at_rows(bad, ids)}. A label "
                        "cannot be repaired like a feature value; fix or drop those samples in the file "
                        "(or take the file again from its source).")


def sentiment_labels(raw: Any, where: str, ids: Sequence[str] | None = None, *,
                     emotions: bool = False) -> np.ndarray:
    """(N,), (N, 1), MulT (N, 1, 1) - and with ``emotions`` MOSEI's (N, 1, 7): sentiment
    first, then six emotions - -> (N,) float32 sentiment.  Exactly these shapes: taking
    "column 0 of anything" would silently accept a file holding other labels."""
    array = _numeric(raw, where)
    n = len(array)
    accepted = [(n,), (n, 1), (n, 1, 1)] + ([(n, 1, 7)] if emotions else [])
    if array.shape not in accepted:
        extra = (" and (N, 1, 7) (MOSEI: sentiment, then happy, sad, anger, surprise, disgust, fear)"
                 if emotions else "")
        raise DataError(
            f"{where}: labels have shape {array.shape}; the accepted shapes are (N,), (N, 1), (N, 1, 1) "
            f"(one sentiment score per sample){extra}. This file holds other labels; use the "
            "sentiment labels of the MulT/MMSA/SDK release (docs/datasets.md, Accepted formats)."
        )
    values = array.reshape(n, -1)[:, 0].astype(np.float32)
    _require_finite(values, where, ids)
    return values


def iemocap_labels(raw: Any, where: str, ids: Sequence[str] | None = None) -> np.ndarray:
    """MulT (N, 4, 2) per-emotion one-hot -> (N, 4) 0/1 via argmax(-1), order N, H, S, A.
    A tied pair ([0, 0], [1, 1]) is an error: argmax would silently read it as class 0."""
    array = _numeric(raw, where)
    if array.ndim != 3 or array.shape[1:] != (4, 2):
        raise DataError(
            f"{where}: IEMOCAP labels have shape {array.shape}; the MulT protocol expects "
            "(N, 4, 2) - one 2-way one-hot per emotion in the order Neutral, Happy, Sad, "
            "Angry. Use the MulT iemocap_data.pkl / iemocap_data_noalign.pkl files."
        )
    _require_finite(array, where, ids)
    tied = np.flatnonzero((array[..., 0] == array[..., 1]).any(axis=1))
    if len(tied):
        raise DataError(f"{where}: {len(tied)} samples have an emotion whose 2-way label is tied "
                        f"(e.g. [0, 0]) at {at_rows(tied, ids)}, so it says neither absent nor present. "
                        "Each emotion needs a one-hot pair; fix or drop those samples in the file.")
    return array.argmax(axis=-1).astype(np.int64)


def binary_labels(raw: Any, where: str, ids: Sequence[str] | None = None) -> np.ndarray:
    """(N,), (N, 1) or (N, 1, 1) two-class labels -> (N,) int64 0/1.

    MultiBench's files encode the classes as {-1, 1} (sarcasm.pkl) or {0, 1} (humor.pkl),
    MUStARD's own annotations as booleans; MultiBench's classification rule is ``label > 0
    -> 1``.  Other values (a third class, a score) are an error, not thresholded: ``> 0``
    would silently turn them into a binary task the file does not define."""
    array = _numeric(raw, where)
    n = len(array)
    if array.shape not in [(n,), (n, 1), (n, 1, 1)]:
        raise DataError(f"{where}: labels have shape {array.shape}; the accepted shapes are (N,), (N, 1), "
                        "(N, 1, 1) (one binary label per sample, as in MultiBench's sarcasm.pkl / humor.pkl).")
    values = array.reshape(n).astype(np.float64)
    _require_finite(values, where, ids)
    seen = np.unique(values)
    if not (set(seen.tolist()) <= {-1.0, 1.0} or set(seen.tolist()) <= {0.0, 1.0}):
        counts = {float(v): int((values == v).sum()) for v in seen[:10]}
        raise DataError(
            f"{where}: labels take the values {counts} (value: samples{', first 10' if len(seen) > 10 else ''}); "
            "a two-class label encodes its classes as {0, 1} (MultiBench humor.pkl), {-1, 1} (MultiBench "
            "sarcasm.pkl) or booleans, and FuseBench reads > 0 as the positive class. This file holds other "
            "labels (a third class or a score); use the MultiBench file unchanged or re-encode the labels as 0/1."
        )
    return (values > 0).astype(np.int64)


def class_labels(raw: Any, where: str, ids: Sequence[str] | None = None, *,
                 names: Sequence[str]) -> np.ndarray:
    """(N,) or (N, 1) class indices -> (N,) int64, each a whole number in [0, len(names))."""
    array = _numeric(raw, where)
    n = len(array)
    if array.shape not in [(n,), (n, 1)]:
        raise DataError(f"{where}: labels have shape {array.shape}; expected one class index per sample.")
    values = array.reshape(n).astype(np.float64)
    _require_finite(values, where, ids)
    bad = np.flatnonzero((values != np.round(values)) | (values < 0) | (values >= len(names)))
    if len(bad):
        classes = ", ".join(f"{i} {name}" for i, name in enumerate(names))
        raise DataError(f"{where}: {len(bad)} labels are not class indices ({classes}) at {at_rows(bad, ids)}: "
                        f"values {sorted(set(values[bad].tolist()))[:10]}. The file holds another label set; "
                        "use the file of the protocol unchanged (docs/datasets.md).")
    return values.astype(np.int64)


def mosi_std_folds(video_ids: Sequence[str]) -> Folds:
    """The SDK's standard MOSI folds are the sorted video ids split [:52], [52:62], [62:]."""
    ids = sorted(video_ids)
    if len(ids) != 93:
        raise DataError(
            f"the labels .csd holds {len(ids)} videos; the standard CMU-MOSI folds are defined "
            "on all 93 (sorted ids [:52] train, [52:62] valid, [62:] test). Use the complete "
            "CMU_MOSI_Opinion_Labels.csd, or give explicit folds with --dataset-option "
            "mosi.folds=/path/folds.json ({\"train\": [...], \"valid\": [...], \"test\": [...]})."
        )
    return {"train": ids[:52], "valid": ids[52:62], "test": ids[62:]}


def mosei_std_folds(video_ids: Sequence[str]) -> Folds:
    """The SDK's explicit MOSEI fold lists (2249 / 300 / 678 videos), shipped as package data
    with their source (``plugins/datasets/data/cmu_folds/SOURCE.md``), so no SDK is needed."""
    import json
    from importlib import resources

    path = resources.files("plugins.datasets") / "data" / "cmu_folds" / "cmu_mosei_std_folds.json"
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class AffectProfile:
    """One dataset.  ``mult_stem``: MulT's file stem (for the ``mult`` format);
    ``multibench_file``: MultiBench's own pickle for it (for the ``multibench`` format)."""

    name: str
    title: str
    formats: tuple[str, ...]
    target: TargetSpec
    labels: LabelReader
    metrics: tuple[str, ...]
    primary_metric: str
    reference: str
    how_to_obtain: str
    std_folds: Callable[[Sequence[str]], Folds] | None = None
    mult_stem: str | None = None
    multibench_file: str | None = None


SENTIMENT = TargetSpec("regression", 1, ("sentiment",))

MOSI = AffectProfile(
    name="mosi", title="CMU-MOSI", mult_stem="mosi", multibench_file="mosi_raw.pkl",
    formats=("mult", "mmsa", "misa", "mag", "lmf", "csd", "multibench"),
    target=SENTIMENT, labels=sentiment_labels, metrics=SENTIMENT_METRICS, primary_metric="mae",
    reference="Zadeh et al., IEEE Intelligent Systems 2016 (CMU-MOSI)",
    how_to_obtain=(
        "MulT pickles mosi_data.pkl / mosi_data_noalign.pkl from the Multimodal-Transformer "
        "README (github.com/yaohungt/Multimodal-Transformer); MMSA aligned_50.pkl / "
        "unaligned_50.pkl from the MMSA README (github.com/thuiar/MMSA, Google Drive / "
        "BaiduYun); .csd files with CMU-MultimodalSDK (mmdatasdk.mmdataset(cmu_mosi.highlevel "
        "+ cmu_mosi.labels, dir)); MultiBench mosi_raw.pkl from the MultiBench README "
        "(github.com/pliang279/MultiBench, 'mosi' Google Drive folder). Research-use licence from CMU."
    ),
    std_folds=mosi_std_folds,
)
MOSEI = AffectProfile(
    name="mosei", title="CMU-MOSEI", mult_stem="mosei_senti", multibench_file="mosei_raw.pkl",
    formats=("mult", "mmsa", "misa", "mag", "csd", "multibench"),
    target=SENTIMENT, labels=partial(sentiment_labels, emotions=True), metrics=SENTIMENT_METRICS,
    primary_metric="mae",
    reference="Zadeh et al., ACL 2018 (CMU-MOSEI)",
    how_to_obtain=(
        "MulT pickles mosei_senti_data.pkl / mosei_senti_data_noalign.pkl (Multimodal-"
        "Transformer README); MMSA MOSEI/Processed/aligned_50.pkl / unaligned_50.pkl (MMSA "
        "README); .csd files with CMU-MultimodalSDK (cmu_mosei.highlevel + cmu_mosei.labels); "
        "MultiBench mosei_raw.pkl from the MultiBench README (github.com/pliang279/MultiBench, "
        "'mosei' Google Drive folder). Research-use licence from CMU."
    ),
    std_folds=mosei_std_folds,
)
IEMOCAP = AffectProfile(
    name="iemocap", title="IEMOCAP (MulT 4-emotion protocol)", mult_stem="iemocap", formats=("mult", "lmf"),
    target=TargetSpec("multilabel", 4, EMOTIONS), labels=iemocap_labels, metrics=IEMOCAP_METRICS,
    primary_metric="f1_mean",
    reference="Busso et al., LRE 2008 (IEMOCAP); protocol of Tsai et al., ACL 2019 (MulT)",
    how_to_obtain=(
        "MulT pickles iemocap_data.pkl / iemocap_data_noalign.pkl from the Multimodal-"
        "Transformer README (github.com/yaohungt/Multimodal-Transformer). IEMOCAP itself "
        "requires a signed licence from USC SAIL (sail.usc.edu/iemocap)."
    ),
)
IEMOCAP6 = AffectProfile(
    name="iemocap6", title="IEMOCAP (DialogueRNN 6-emotion utterance protocol)", formats=("dialoguernn",),
    target=TargetSpec("multiclass", len(IEMOCAP6_CLASSES), IEMOCAP6_CLASSES),
    labels=partial(class_labels, names=IEMOCAP6_CLASSES), metrics=("f1_weighted", "accuracy"),
    primary_metric="f1_weighted",
    reference="Busso et al., LRE 2008 (IEMOCAP); protocol of Majumder et al., AAAI 2019 (DialogueRNN)",
    how_to_obtain=(
        "IEMOCAP_features_raw.pkl or IEMOCAP_features.pkl from github.com/declare-lab/conv-emotion: "
        "DialogueRNN/DialogueRNN_features.zip (extract it), bc-LSTM-pytorch/IEMOCAP_features/"
        "IEMOCAP_features_raw.pkl or DialogueGCN/IEMOCAP_features/IEMOCAP_features.pkl. "
        "IEMOCAP itself requires a signed licence from USC SAIL (sail.usc.edu/iemocap)."
    ),
)
MUSTARD = AffectProfile(
    name="mustard", title="MUStARD sarcasm (MultiBench)", multibench_file="sarcasm.pkl", formats=("multibench",),
    target=TargetSpec("multiclass", 2, ("not_sarcastic", "sarcastic")), labels=binary_labels,
    metrics=BINARY_METRICS, primary_metric="accuracy",
    reference="Castro et al., ACL 2019 (MUStARD); processed by Liang et al., NeurIPS 2021 (MultiBench)",
    how_to_obtain=(
        "MultiBench sarcasm.pkl from the 'sarcasm' Google Drive folder linked in the MultiBench README "
        "(github.com/pliang279/MultiBench, 'Affective Computing'). The original videos and annotations: "
        "github.com/soujanyaporia/MUStARD."
    ),
)
URFUNNY = AffectProfile(
    name="urfunny", title="UR-FUNNY humor (MultiBench)", multibench_file="humor.pkl", formats=("multibench",),
    target=TargetSpec("multiclass", 2, ("not_humorous", "humorous")), labels=binary_labels,
    metrics=BINARY_METRICS, primary_metric="accuracy",
    reference="Hasan et al., EMNLP 2019 (UR-FUNNY); processed by Liang et al., NeurIPS 2021 (MultiBench)",
    how_to_obtain=(
        "MultiBench humor.pkl from the 'humor' Google Drive folder linked in the MultiBench README "
        "(github.com/pliang279/MultiBench, 'Affective Computing'). The original data: "
        "github.com/ROC-HCI/UR-FUNNY."
    ),
)
PROFILES = (MOSI, MOSEI, IEMOCAP, IEMOCAP6, MUSTARD, URFUNNY)
