"""Unimodal baselines: the shared encoder and head on one modality, all others ignored.

They are what fusion has to beat: the leaderboard shows how much a fusion method adds over
the best single modality.  Which modalities a dataset has is only known at run time, so a
modality is chosen by *position*: ``unimodal-1``, ``unimodal-2``, ``unimodal-3`` are
registered presets (the k-th modality of the task, applicable when it has at least k), so a
suite lists one leaderboard row per modality without per-dataset configuration.  The
generic ``unimodal`` takes ``modality`` as a 0-based position or a modality name
(``--hparam unimodal.modality=text``) for tasks with more modalities.
"""

from __future__ import annotations

from fusebench import Batch, FusionModel, MethodSpec, Output, TaskSpec, hookimpl, make_encoder, mlp_head

from .common import pick_modality

PRESETS = 3


class Unimodal(FusionModel):
    def __init__(self, task: TaskSpec, hparams):
        super().__init__(task, hparams)
        self.modality = pick_modality(task, self.hparams["modality"])
        hidden, dropout = self.hparams["hidden"], self.hparams["dropout"]
        self.encoder = make_encoder(task.modality(self.modality), hidden, dropout)
        self.head = mlp_head(hidden, task.target.n_outputs, hidden, dropout)

    def encode(self, batch: Batch) -> Batch:
        m = self.modality
        x = {**batch.x, m: self.encoder(batch.x[m], batch.mask[m])}
        return batch.replace(x=x, mask={**batch.mask, m: None})

    def fuse(self, encoded: Batch) -> Output:
        return Output(self.head(encoded.x[self.modality]))


@hookimpl
def register_methods(register):
    reference = "Unimodal baseline (shared encoder + head); cf. Hessel & Lee, EMNLP 2020; Liang et al., MultiBench 2021"
    register(MethodSpec(
        name="unimodal", family="unimodal", build=Unimodal, defaults={"modality": 0},
        reference=reference,
        description="One modality only (hparam modality: 0-based position or name); not in "
                    "--methods all, where unimodal-1, -2, -3 cover it.",
        in_all=False,
    ))
    for k in range(1, PRESETS + 1):
        register(MethodSpec(
            name=f"unimodal-{k}", family="unimodal", build=Unimodal, defaults={"modality": k - 1},
            reference=reference, min_modalities=k,
            description=f"Only the task's modality number {k} (in dataset order).",
        ))
