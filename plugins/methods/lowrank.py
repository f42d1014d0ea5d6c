"""Low-rank Multimodal Fusion (Liu, Shen et al., ACL 2018).

TFN's weight tensor W (one slice per output unit) is replaced by a rank-R sum of
per-modality factors, W_k = sum_r lambda_r F_1[r,:,k] (x) ... (x) F_M[r,:,k], so the fused
output never materialises the outer product:

    h_k = sum_r lambda_r * prod_m <[1; z_m], F_m[r, :, k]> + b_k

i.e. the *sum over rank of products over modalities* (paper eq. 8 and the reference
code; eq. 6 swaps sum and product, which adds cross-rank terms and is wrong for R > 1 —
see the author's answer in Low-rank-Multimodal-Fusion issue #17).  Default is the paper's
plain form (lambda = 1, b = 0); ``rank_weights: true`` adds the reference code's learned
lambda (1, R) and bias (1, d_out).  Factors are xavier-normal initialised as in the code.
"""

from __future__ import annotations

import torch
from torch import nn

from fusebench import Choice, Int, MethodSpec, RepresentationFusion, hookimpl

from .common import prepend_one


class LowRankFusion(nn.Module):
    def __init__(self, in_dims: list[int], out_dim: int, rank: int, rank_weights: bool = False):
        super().__init__()
        self.factors = nn.ParameterList(nn.Parameter(torch.empty(rank, d + 1, out_dim)) for d in in_dims)
        for factor in self.factors:
            nn.init.xavier_normal_(factor)
        self.rank_weights = self.bias = None
        if rank_weights:
            self.rank_weights = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, rank)))
            self.bias = nn.Parameter(torch.zeros(1, out_dim))
        self.out_dim = out_dim

    def forward(self, reps: list[torch.Tensor]) -> torch.Tensor:
        product = None  # (R, B, d_out): prod over modalities of <[1; z_m], F_m[r, :, k]>
        for z, factor in zip(reps, self.factors, strict=True):
            p = torch.einsum("bi,rik->rbk", prepend_one(z), factor)
            product = p if product is None else product * p
        if self.rank_weights is None:
            return product.sum(dim=0)
        return torch.einsum("r,rbk->bk", self.rank_weights[0], product) + self.bias


def build(task, hp):
    fusion = LowRankFusion([hp["hidden"]] * len(task.modalities), hp["lmf_dim"] or hp["hidden"],
                           hp["rank"], hp["rank_weights"])
    return RepresentationFusion(task, hp, fusion)


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="lmf", family="low-rank", build=build,
        aliases=("low_rank", "low-rank", "lowranktensorfusion"),  # MultiBench's LowRankTensorFusion
        defaults={"rank": 4, "lmf_dim": 0, "rank_weights": False},
        search_space={"rank": Int(1, 16, log=True), "rank_weights": Choice((False, True))},
        reference="Liu, Shen et al., Efficient Low-rank Multimodal Fusion with Modality-Specific "
                  "Factors, ACL 2018",
        description="Rank-R factorised TFN: sum_r prod_m <[1; z_m], F_m[r]> -> MLP head "
                    "(rank_weights adds the reference code's learned lambda and bias).",
    ))
