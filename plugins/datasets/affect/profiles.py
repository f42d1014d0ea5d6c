"""What differs between MOSI, MOSEI and IEMOCAP: file names, label encoding, metrics, folds.

Everything else (readers, caching, the DatasetSpec) is shared; a dataset is one
:class:`AffectProfile`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np

from benchmark_core import TargetSpec
from benchmark_core.errors import DataError

from .convert import at_rows

MODALITIES = ("text", "audio", "vision")
EMOTIONS = ("neutral", "happy", "sad", "angry")
SENTIMENT_METRICS = ("mae", "corr", "acc2_nonzero", "f1_nonzero", "acc2_nonneg", "f1_nonneg", "acc5", "acc7")
IEMOCAP_METRICS = tuple(f"{m}_{e}" for e in EMOTIONS for m in ("acc", "f1")) + ("acc_mean", "f1_mean")

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
    """The SDK's explicit MOSEI fold lists, from the ``mmsdk`` package when installed."""
    try:
        from mmsdk.mmdatasdk.dataset.standard_datasets.CMU_MOSEI import cmu_mosei_std_folds as f
    except ImportError:
        raise DataError(
            "CMU-MOSEI .csd files need the SDK's standard fold lists, which FuseBench does not "
            "ship: `pip install cmu-multimodal-sdk` (provides mmsdk), or give explicit folds "
            "with --dataset-option mosei.folds=/path/folds.json ({\"train\": [...], "
            "\"valid\": [...], \"test\": [...]} of video ids)."
        ) from None
    return {"train": f.standard_train_fold, "valid": f.standard_valid_fold, "test": f.standard_test_fold}


@dataclass(frozen=True)
class AffectProfile:
    name: str
    title: str
    mult_stem: str
    formats: tuple[str, ...]
    target: TargetSpec
    labels: LabelReader
    metrics: tuple[str, ...]
    primary_metric: str
    reference: str
    how_to_obtain: str
    std_folds: Callable[[Sequence[str]], Folds] | None = None


SENTIMENT = TargetSpec("regression", 1, ("sentiment",))

MOSI = AffectProfile(
    name="mosi", title="CMU-MOSI", mult_stem="mosi", formats=("mult", "mmsa", "csd"),
    target=SENTIMENT, labels=sentiment_labels, metrics=SENTIMENT_METRICS, primary_metric="mae",
    reference="Zadeh et al., IEEE Intelligent Systems 2016 (CMU-MOSI)",
    how_to_obtain=(
        "MulT pickles mosi_data.pkl / mosi_data_noalign.pkl from the Multimodal-Transformer "
        "README (github.com/yaohungt/Multimodal-Transformer); MMSA aligned_50.pkl / "
        "unaligned_50.pkl from the MMSA README (github.com/thuiar/MMSA, Google Drive / "
        "BaiduYun); .csd files with CMU-MultimodalSDK (mmdatasdk.mmdataset(cmu_mosi.highlevel "
        "+ cmu_mosi.labels, dir)). Research-use licence from CMU."
    ),
    std_folds=mosi_std_folds,
)
MOSEI = AffectProfile(
    name="mosei", title="CMU-MOSEI", mult_stem="mosei_senti", formats=("mult", "mmsa", "csd"),
    target=SENTIMENT, labels=partial(sentiment_labels, emotions=True), metrics=SENTIMENT_METRICS,
    primary_metric="mae",
    reference="Zadeh et al., ACL 2018 (CMU-MOSEI)",
    how_to_obtain=(
        "MulT pickles mosei_senti_data.pkl / mosei_senti_data_noalign.pkl (Multimodal-"
        "Transformer README); MMSA MOSEI/Processed/aligned_50.pkl / unaligned_50.pkl (MMSA "
        "README); .csd files with CMU-MultimodalSDK (cmu_mosei.highlevel + cmu_mosei.labels). "
        "Research-use licence from CMU."
    ),
    std_folds=mosei_std_folds,
)
IEMOCAP = AffectProfile(
    name="iemocap", title="IEMOCAP (MulT 4-emotion protocol)", mult_stem="iemocap", formats=("mult",),
    target=TargetSpec("multilabel", 4, EMOTIONS), labels=iemocap_labels, metrics=IEMOCAP_METRICS,
    primary_metric="f1_mean",
    reference="Busso et al., LRE 2008 (IEMOCAP); protocol of Tsai et al., ACL 2019 (MulT)",
    how_to_obtain=(
        "MulT pickles iemocap_data.pkl / iemocap_data_noalign.pkl from the Multimodal-"
        "Transformer README (github.com/yaohungt/Multimodal-Transformer). IEMOCAP itself "
        "requires a signed licence from USC SAIL (sail.usc.edu/iemocap)."
    ),
)
PROFILES = (MOSI, MOSEI, IEMOCAP)
