"""Many small, independent modules of one shape run as one (MulT, MutualFormer).

Why: MulT has a crossmodal transformer per *directed* modality pair (30 for 6 modalities) and
MutualFormer per-modality projections and a cross-diffusion per pair.  Each one is tiny, so a
Python loop over them spends its time on per-op overhead (and on GPU, kernel launches), not
arithmetic.  Here G independent modules become one whose parameters carry a leading group
axis: a step is one batched matmul for all groups, and attention is one call of torch's
fused ``scaled_dot_product_attention``.  Each group's slice is initialised as the module it
replaces would be, so the model (and its parameter count) is the same; only the layout of
its state dict differs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class GroupLinear(nn.Module):
    """G independent ``nn.Linear(in_features, out_features)`` maps: (G, ..., in) -> (G, ..., out).

    ``weight`` is (G, in, out) — group g's slice is the *transpose* of an ``nn.Linear`` weight —
    so the forward is ``baddbmm(bias, x, weight)`` and its weight gradient comes out in the
    parameter's own layout (with (G, out, in), bmm's backward yields the transpose and every
    step pays a copy of every weight).  ``bias`` is (G, out)."""

    def __init__(self, groups: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.groups, self.in_features, self.out_features = groups, in_features, out_features
        self.weight = nn.Parameter(torch.empty(groups, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(groups, out_features)) if bias else None
        self.reset_parameters()

    def _init_weights(self, init, bias: bool) -> None:
        """``init`` on each group's (out, in) matrix, group by group (then its bias if ``bias``),
        drawing what G separately built ``nn.Linear`` modules would."""
        bound = 1 / math.sqrt(self.in_features)
        with torch.no_grad():
            for g in range(self.groups):
                weight = torch.empty(self.out_features, self.in_features)
                init(weight)
                self.weight[g].copy_(weight.t())
                if bias and self.bias is not None:
                    nn.init.uniform_(self.bias[g], -bound, bound)

    def reset_parameters(self) -> None:
        """Per group ``nn.Linear``'s default."""
        self._init_weights(lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5)), bias=True)

    def xavier_(self) -> GroupLinear:
        """Xavier-uniform weights (fans of one group's matrix) and zero biases."""
        self._init_weights(nn.init.xavier_uniform_, bias=False)
        if self.bias is not None:
            with torch.no_grad():
                self.bias.zero_()
        return self

    def forward(self, x: torch.Tensor, parts: int = 1) -> torch.Tensor:
        """``parts`` > 1: x is (G, parts, ..., in) and part p gets the p-th of ``parts`` equal
        slices of the output features — e.g. MulT's packed query/key/value projection applied
        to three different inputs — giving (G, parts, ..., out / parts)."""
        g, out = self.groups * parts, self.out_features // parts
        flat = x.reshape(g, -1, self.in_features)
        weight = self.weight
        if parts > 1:
            weight = weight.view(self.groups, self.in_features, parts, out).transpose(1, 2).reshape(g, -1, out)
        if self.bias is None:
            y = torch.bmm(flat, weight)
        else:
            y = torch.baddbmm(self.bias.reshape(g, 1, out), flat, weight)
        return y.view(*x.shape[:-1], out)

    def extra_repr(self) -> str:
        return (f"groups={self.groups}, in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class GroupLayerNorm(nn.Module):
    """G independent ``nn.LayerNorm(dim)``: (G, ..., dim) with per-group scale and shift."""

    def __init__(self, groups: int, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.ones(groups, dim))
        self.bias = nn.Parameter(torch.zeros(groups, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (self.dim,)
        return F.layer_norm(x, (self.dim,), eps=self.eps) * self.weight.view(shape) + self.bias.view(shape)


def group_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor | None,
                    dropout: Sequence[float], training: bool) -> torch.Tensor:
    """Scaled dot-product attention of G groups at once, each with its own attention-weight
    dropout probability (as separate ``nn.MultiheadAttention`` modules would have).

    q: (G, B, H, Tq, E), k / v: (G, B, H, Tk, E), ``allowed``: bool, broadcastable to
    (G, B, Tq, Tk) (no head axis), True where a query may attend a key.  torch's fused kernel
    takes one dropout probability, so in training groups are gathered by probability, one
    call each (one call in eval mode or when all groups share it).  With a single key
    (vector modalities) no kernel is needed: its weight is exactly 1, the output its value
    (the caller guarantees every query at least one allowed key, as the fused kernel needs)."""
    g, b, h, tq, e = q.shape
    tk = k.shape[3]
    if tk == 1:  # softmax over one key is exactly 1: the output is its value, weight dropped out
        out = v.expand(g, b, h, tq, e)
        if not training or not any(dropout):
            return out
        p = torch.tensor([float(d) for d in dropout], dtype=v.dtype, device=v.device).view(g, 1, 1, 1, 1)
        keep = torch.rand(g, b, h, tq, 1, dtype=v.dtype, device=v.device) >= p  # probability 1 - p
        return out * torch.where(keep, 1 / (1 - p), 0.0)
    if allowed is not None:
        allowed = allowed.expand(g, b, -1, tk)

    def attend(index: torch.Tensor | None, p: float) -> torch.Tensor:
        pick = (lambda x: x) if index is None else (lambda x: x.index_select(0, index))
        n = (g if index is None else len(index)) * b
        mask = None if allowed is None else pick(allowed).reshape(n, 1, -1, tk)
        return F.scaled_dot_product_attention(pick(q).reshape(n, h, tq, e), pick(k).reshape(n, h, tk, e),
                                              pick(v).reshape(n, h, tk, e), attn_mask=mask, dropout_p=p)

    probabilities = sorted(set(float(p) for p in dropout)) if training else [0.0]
    if len(probabilities) == 1:
        return attend(None, probabilities[0]).view(g, b, h, tq, e)
    out = q.new_empty(g, b * h * tq * e)
    for p in probabilities:
        index = torch.tensor([i for i, d in enumerate(dropout) if d == p], device=q.device)
        out.index_copy_(0, index, attend(index, p).reshape(len(index), -1))
    return out.view(g, b, h, tq, e)
