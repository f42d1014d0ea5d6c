"""The fusion zoo's math, checked against identities and test vectors (docs/methods.md, docs/stress.md)."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark_core.engine.blending import blend_weights
from plugins.methods.additive import SumFusion
from plugins.methods.bilinear import BilinearFusion
from plugins.methods.early import resample_rows
from plugins.methods.gated import GatedFusion
from plugins.methods.lowrank import LowRankFusion
from plugins.methods.mag import shift_scale
from plugins.methods.mfm import mmd, mmd_kernel
from plugins.methods.mmim import cpc_nce, gaussian_lld, mixture_entropy
from plugins.methods.multiplicative import ProductFusion
from plugins.methods.mutualformer import cross_diffusion
from plugins.methods.tensor import outer_with_ones


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float64)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_tfn_contains_constant_and_unimodal_blocks():
    za, zv, zt = rand(4, 2), rand(4, 3), rand(4, 4)
    z = outer_with_ones([za, zv, zt])
    assert z.shape == (4, 60)
    cube = z.view(4, 3, 4, 5)
    assert torch.equal(cube[:, 0, 0, 0], torch.ones(4, dtype=torch.float64))
    assert torch.allclose(cube[:, 1:, 0, 0], za) and torch.allclose(cube[:, 0, 0, 1:], zt)
    assert torch.allclose(cube[:, 1:, 1:, 0], za[:, :, None] * zv[:, None, :])


@pytest.mark.parametrize("rank_weights", [False, True])
def test_lmf_equals_tfn_with_reconstructed_weight(rank_weights):
    dims, rank, d_out = (2, 3, 4), 3, 2
    lmf = LowRankFusion(list(dims), d_out, rank, rank_weights).double()
    if rank_weights:
        with torch.no_grad():
            lmf.bias.normal_()
    reps = [rand(4, d) for d in dims]
    f1, f2, f3 = lmf.factors
    lam = lmf.rank_weights[0] if rank_weights else torch.ones(rank, dtype=torch.float64)
    # W[i, j, l, k] = sum_r lambda_r F1[r, i, k] F2[r, j, k] F3[r, l, k]
    weight = torch.einsum("r,rik,rjk,rlk->ijlk", lam, f1, f2, f3).reshape(-1, d_out)
    bias = lmf.bias if rank_weights else 0.0
    expected = outer_with_ones(reps) @ weight + bias
    assert torch.allclose(lmf(reps), expected, atol=1e-5, rtol=0)
    assert (lmf(reps) - expected).abs().max() < 1e-10


def test_lmf_is_not_product_of_rank_sums():
    """Paper eq. (6) (product over modalities of rank sums) differs from eq. (8) for R > 1."""
    lmf = LowRankFusion([3, 3], 2, rank=2).double()
    reps = [rand(5, 3), rand(5, 3)]
    per_mod = [torch.einsum("bi,rik->rbk", torch.cat([torch.ones(5, 1, dtype=torch.float64), z], 1), f)
               for z, f in zip(reps, lmf.factors)]
    eq6 = per_mod[0].sum(0) * per_mod[1].sum(0)
    assert not torch.allclose(lmf(reps), eq6)


def test_bilinear_equals_linear_on_tfn():
    fusion = BilinearFusion(2, 3, 2).double()
    z1, z2 = rand(6, 3), rand(6, 3)
    w = torch.zeros(4, 4, 2, dtype=torch.float64)
    u, v = fusion.linear.weight[:, :3], fusion.linear.weight[:, 3:]
    w[0, 0] = fusion.linear.bias
    w[1:, 0] = u.T
    w[0, 1:] = v.T
    w[1:, 1:] = fusion.bilinear[0].weight.permute(1, 2, 0)
    expected = outer_with_ones([z1, z2]) @ w.reshape(16, 2)
    assert torch.allclose(fusion([z1, z2]), expected, atol=1e-10)


def test_additive_fusion_is_exactly_additive():
    fusion, head = SumFusion(5).double(), torch.nn.Linear(5, 3).double()
    f = lambda a, b, c: head(fusion([a, b, c]))
    a, b, c = rand(4, 5), rand(4, 5), rand(4, 5)
    a2, b2 = rand(4, 5), rand(4, 5)
    # the effect of changing a does not depend on the other modalities: no interaction terms
    assert torch.allclose(f(a, b, c) - f(a2, b, c), f(a, b2, a2) - f(a2, b2, a2), atol=1e-12)
    zero = torch.zeros(4, 5, dtype=torch.float64)
    base = f(zero, zero, zero)
    parts = f(a, zero, zero) + f(zero, b, zero) + f(zero, zero, c) - 2 * base
    assert torch.allclose(f(a, b, c), parts, atol=1e-12)


def test_multiplicative_fusion_is_elementwise_product():
    fusion = ProductFusion(3, 4, 5).double()
    reps = [rand(2, 4) for _ in range(3)]
    expected = fusion.project[0](reps[0]) * fusion.project[1](reps[1]) * fusion.project[2](reps[2])
    assert torch.allclose(fusion(reps), expected)


def test_gmu_gates_are_a_convex_combination():
    fusion = GatedFusion(3, 4, 6).double()
    reps = [rand(5, 4) for _ in range(3)]
    g = fusion.gates(reps)
    assert torch.allclose(g.sum(dim=1), torch.ones(5, 6, dtype=torch.float64))
    assert fusion(reps).abs().max() <= 1.0  # convex combination of tanh values


def test_mag_shift_scale_test_vector():
    z = torch.tensor([[2.0, 0.0]])
    h = torch.tensor([[0.0, 4.0]])
    assert shift_scale(z, h, beta=1.0).item() == pytest.approx(0.5, abs=1e-6)
    assert shift_scale(z, h, beta=4.0).item() == 1.0  # capped at 1
    assert shift_scale(z, torch.zeros(1, 2), beta=1.0).item() == 1.0  # ||H|| = 0 -> 1, no 1/eps blow-up


def test_mmd_kernel_bandwidth_is_dim_squared():
    x, y = rand(3, 4), rand(5, 4)
    expected = torch.exp(-((x[:, None] - y[None]) ** 2).sum(-1) / 16)
    assert torch.allclose(mmd_kernel(x, y), expected)


def test_mmd_zero_for_identical_samples_and_grows_with_shift():
    x = rand(64, 8)
    assert mmd(x, x).abs() < 1e-12
    values = [mmd(x, x + s).item() for s in (0.5, 1.0, 2.0, 4.0)]
    assert values[0] > 1e-4 and all(a < b for a, b in zip(values, values[1:]))


def test_cpc_loss_falls_as_representations_agree():
    z, noise = rand(32, 8), rand(32, 8)
    losses = [cpc_nce(z, (1 - t) * noise + t * z).item() for t in (0.0, 0.5, 0.9, 1.0)]
    assert all(a > b for a, b in zip(losses, losses[1:]))
    assert losses[-1] < math.log(32)  # better than the chance level log(B)


def test_cpc_loss_falls_when_a_predictor_learns_to_agree():
    torch.manual_seed(1)
    z = torch.randn(64, 8)
    fused = z @ torch.randn(8, 16)  # the fusion result carries z
    g = torch.nn.Linear(16, 8)
    opt = torch.optim.Adam(g.parameters(), lr=0.05)
    start = cpc_nce(z, g(fused)).item()
    for _ in range(60):
        loss = cpc_nce(z, g(fused))
        opt.zero_grad()
        loss.backward()
        opt.step()
    # cosine scores at temperature 1 bound the loss below by about log(1 + (B-1) e^-2)
    assert cpc_nce(z, g(fused)).item() < start - 1.0


def test_gaussian_lld_exact_and_reference():
    mu, logvar, y = rand(6, 3), rand(6, 3), rand(6, 3)
    normal = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    assert torch.allclose(gaussian_lld(mu, logvar, y), normal.log_prob(y).sum(-1).mean())
    reference = (-((mu - y) ** 2) / 2.0 / logvar.exp()).sum(-1).mean()
    assert torch.allclose(gaussian_lld(mu, logvar, y, exact=False), reference)
    # the reference "lld" rewards inflating sigma: it increases monotonically with logvar
    assert gaussian_lld(mu, logvar + 5, y, exact=False) > gaussian_lld(mu, logvar, y, exact=False)
    # the exact one is maximised at the calibrated variance sigma^2 = (y - mu)^2
    residual = (y - mu) ** 2
    best = gaussian_lld(mu, residual.log(), y)
    assert best > gaussian_lld(mu, residual.log() + 1, y) and best > gaussian_lld(mu, residual.log() - 1, y)


def test_mixture_entropy_is_gaussian_logdet_and_handles_singular_groups():
    g = rand(200, 3) * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    h = mixture_entropy([g, g], eps=0.0)
    assert h.item() == pytest.approx(0.5 * math.log(36.0), abs=0.3)
    assert torch.isfinite(mixture_entropy([rand(2, 3), rand(1, 3)]))


def test_cross_diffusion_is_one_step_from_identity():
    a_r = torch.softmax(rand(2, 3, 5, 5), -1)
    a_d = torch.softmax(rand(2, 3, 5, 5), -1)
    s_r = a_r.transpose(-1, -2)  # get_S on a row-stochastic matrix
    s_d = a_d.transpose(-1, -2)
    identity = torch.eye(5, dtype=torch.float64)
    expected = 0.6 * s_r @ identity @ s_d.transpose(-1, -2) + 0.4 * (a_r + a_d)
    assert torch.allclose(cross_diffusion(a_r, a_d, 0.6), expected)


def test_gblend_weights_test_vector():
    before = [(1.0, 1.1), (1.0, 1.05), (1.0, 1.1)]
    after = [(0.5, 0.9), (0.8, 0.95), (0.3, 1.0)]
    assert blend_weights(before, after) == pytest.approx([0.1778, 0.8, 0.0222], abs=1e-4)
    # no generalisation gain anywhere -> equal weights
    assert blend_weights([(1, 1)] * 3, [(1, 1)] * 3) == pytest.approx([1 / 3] * 3)


def test_early_fusion_resamples_real_steps_only():
    x = torch.arange(5.0).view(1, 5, 1).repeat(2, 1, 1)
    x[1, 3:] = 99.0  # padding of the length-3 row must never leak in
    out = resample_rows(x, torch.tensor([5, 3]), torch.tensor([5, 5]), 6)[..., 0]
    assert torch.allclose(out[0], torch.tensor([0.0, 1, 2, 3, 4, 0]))
    assert torch.allclose(out[1], torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 0]))
