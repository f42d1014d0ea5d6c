"""BasicMotions: a real two-sensor sequence dataset that ships with FuseBench.

80 smart-watch recordings of four activities (Standing, Running, Walking, Badminton), 100
steps at 10 Hz; channels 1-3 are the accelerometer and 4-6 the gyroscope, so the dataset
has two *sequence* modalities of the same events (``data/basicmotions``, BSD-3 via sktime,
attribution in ``data/basicmotions/SOURCE.md``).  It exercises the real sequence paths -
LSTM encoders, crossmodal attention, time-step drop, early fusion over time - on real data.

Split: the distributed 40/40 train/test split is kept; the archive has no validation set,
so 20 % of each class of train (2 of 10 recordings) is carved off with ``data_seed`` as
validation (32 / 8 / 40).  Channels are standardised with the training part's mean and
standard deviation.  With 40 test recordings one recording is 2.5 points of accuracy: the
leaderboard's intervals and underpowered-comparison warnings are meant for exactly this.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fusebench import DatasetSpec, TargetSpec, hookimpl

from .uea import DEFAULTS as UEA_DEFAULTS
from .uea import build

CLASSES = ("Standing", "Running", "Walking", "Badminton")
TARGET = TargetSpec("multiclass", 4, CLASSES)
MODALITIES = {"accelerometer": "1-3", "gyroscope": "4-6"}


def data_dir() -> Path:
    return Path(str(resources.files("plugins.datasets") / "data" / "basicmotions"))


# 32 training recordings: the default batch of 64 would give one optimiser step per epoch.
# Batches of 8 give 4 steps per epoch; with 50 epochs that is 200 steps at most, the same
# for every method (a --batch-size/--epochs/--patience flag overrides these).
BUDGET = {"batch_size": 8, "epochs": 50, "patience": 20}

# ``train``/``test`` empty = the bundled files: the options (part of every run's identity)
# then never hold a machine's install path, so a moved checkout resumes its runs.
DEFAULTS = {**UEA_DEFAULTS, "modalities": ",".join(f"{m}:{c}" for m, c in MODALITIES.items())}


def load(options):
    opts = {**DEFAULTS, **options}
    bundled = not opts["train"]
    if bundled:
        opts["train"] = str(data_dir() / "BasicMotions_TRAIN.ts")
        opts["test"] = opts["test"] or str(data_dir() / "BasicMotions_TEST.ts")
    dsd, report = build(opts, "basicmotions", TARGET)
    if bundled:
        report["files"] = [f"bundled:{Path(f).name}" for f in report["files"]]
    return dsd, report


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="basicmotions",
        load=load,
        target=TARGET,
        modalities=tuple(MODALITIES),
        metrics=("accuracy", "f1_macro"),
        primary_metric="accuracy",
        reference="A. Bagnall et al., 'The UEA multivariate time series classification archive, "
                  "2018', arXiv:1811.00075 (BasicMotions; BSD-3 via sktime)",
        how_to_obtain="Bundled with FuseBench (plugins/datasets/data/basicmotions); nothing to download.",
        description="Real sensor sequences: 80 smart-watch recordings, accelerometer + gyroscope "
                    "(100 steps x 3 channels each), 4 activities; 32/8/40 with stratified "
                    "validation carved from train.",
        defaults=DEFAULTS,
        budget=BUDGET,
    ))
