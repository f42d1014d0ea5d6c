"""The batched MulT and MutualFormer compute what their per-pair loops computed.

The per-pair implementations are frozen in ``benchmarks/_legacy_*.py`` (the speed benchmark
times them); here both are given the same weights and must agree, outputs and gradients, in
eval mode (dropout off) on 2, 3 and 6 modalities with padding, unequal lengths and vectors.
Tolerances are float32 rounding: the batched matmuls and reductions sum in another order.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_spec

import plugins.methods.mult as mult_module
from benchmark_core.engine.attention import GroupLinear, group_attention
from benchmark_core.engine.data import Batch
from benchmark_core.engine.models import count_parameters
from benchmark_core.plugins import build_registry
from benchmark_core.specs import ModalitySpec, TargetSpec, TaskSpec
from benchmark_core.suite.runner import execute, resolve_hparams

REGISTRY = build_registry()
BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
TASKS = {
    "2 sequences": TaskSpec((ModalitySpec("acc", 3, "sequence"), ModalitySpec("gyro", 4, "sequence")),
                            TargetSpec("multiclass", 4)),
    "3 mixed": TaskSpec((ModalitySpec("text", 6, "sequence"), ModalitySpec("audio", 5, "sequence"),
                         ModalitySpec("video", 4, "vector")), TargetSpec("regression", 1)),
    "6 mixed": TaskSpec(tuple(ModalitySpec(f"m{i}", 3 + i, "sequence" if i % 2 else "vector") for i in range(6)),
                        TargetSpec("multiclass", 3)),
    "6 vectors": TaskSpec(tuple(ModalitySpec(f"v{i}", 2 + 3 * i, "vector") for i in range(6)),
                          TargetSpec("multiclass", 3)),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors, and the legacy side runs thousands of small ops: one thread (as the harness
    trains by default) spares each op a thread hand-off, which dominates on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def legacy(name: str):
    spec = importlib.util.spec_from_file_location(f"fusebench_legacy_{name}", BENCH / f"_legacy_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LEGACY = {"mult": legacy("mult"), "mutualformer": legacy("mutualformer")}
LEGACY_CLASS = {"mult": LEGACY["mult"].MulT, "mutualformer": LEGACY["mutualformer"].MutualFormer}


def padded_batch(task: TaskSpec, n: int = 5, seed: int = 0) -> Batch:
    """Right-padded sequences of different lengths per modality and row (one row of length 1)."""
    g = torch.Generator().manual_seed(seed)
    x, mask = {}, {}
    for i, m in enumerate(task.modalities):
        if m.kind == "sequence":
            steps = 4 + i
            lengths = torch.randint(1, steps + 1, (n,), generator=g)
            lengths[0] = 1
            mask[m.name] = torch.arange(steps)[None] < lengths[:, None]
            x[m.name] = torch.randn(n, steps, m.dim, generator=g) * mask[m.name].unsqueeze(-1)
        else:
            x[m.name], mask[m.name] = torch.randn(n, m.dim, generator=g), None
    return Batch(x, mask, {m: torch.ones(n, dtype=torch.bool) for m in x}, torch.zeros(n, dtype=torch.long))


def pair(name: str, task: TaskSpec, **overrides):
    """(legacy, batched) models with the legacy model's weights in both."""
    spec = REGISTRY.method(name)
    hp = resolve_hparams(spec, {"layers": 2, **overrides})
    torch.manual_seed(0)
    old = LEGACY_CLASS[name](task, dict(hp))
    new = spec.build(task, dict(hp))
    LEGACY[name].copy_weights(old, new)
    return old, new


def grads_in_new_layout(name: str, old, new) -> dict[str, torch.Tensor]:
    """The legacy model's gradients, laid out as the batched model's parameters."""
    holder, target = copy.deepcopy(old), copy.deepcopy(new)
    for p, q in zip(holder.parameters(), old.parameters(), strict=True):
        p.data = q.grad.clone()
    LEGACY[name].copy_weights(holder, target)
    return {key: p.detach() for key, p in target.named_parameters()}


ROLES = {"text_modality": "audio", "attn_dropout": 0.1, "attn_dropout_a": 0.2, "attn_dropout_v": 0.3}
CASES = ([("mult", task, {}) for task in TASKS] + [("mult", "3 mixed", {"causal_mask": True}),
         ("mult", "6 mixed", {"causal_mask": True}), ("mult", "3 mixed", ROLES)]
         + [("mutualformer", task, {}) for task in TASKS])


@pytest.mark.parametrize("name, task, overrides", CASES, ids=[f"{n}-{t}-{sorted(o)}" for n, t, o in CASES])
def test_batched_equals_the_per_pair_loop_outputs_and_gradients(name, task, overrides):
    old, new = pair(name, TASKS[task], **overrides)
    assert count_parameters(old) == count_parameters(new)
    old.eval(), new.eval()  # dropout off; grads still on, so no eval-time row chunking
    batch = padded_batch(TASKS[task])
    out_old, out_new = old(batch).pred, new(batch).pred
    assert torch.allclose(out_new, out_old, rtol=1e-5, atol=1e-6), (out_new - out_old).abs().max()
    out_old.square().sum().backward()
    out_new.square().sum().backward()
    expected = grads_in_new_layout(name, old, new)
    for key, param in new.named_parameters():
        assert torch.allclose(param.grad, expected[key], rtol=1e-4, atol=1e-6), key


@pytest.mark.parametrize("task", ["2 sequences", "3 mixed", "6 mixed"])
def test_gradients_reach_every_pair(task):
    """Training mode (dropout on): every pair's / target's slice of every stacked weight learns."""
    _, model = pair("mult", TASKS[task], attn_dropout=0.0, relu_dropout=0.0, res_dropout=0.0, embed_dropout=0.0)
    model.train()
    model(padded_batch(TASKS[task], n=8)).pred.square().sum().backward()
    stacked = {k: p for k, p in model.named_parameters() if k.startswith(("crossmodal.", "memory."))}
    assert stacked
    for key, param in stacked.items():
        assert all(param.grad[g].abs().sum() > 0 for g in range(param.shape[0])), key


def test_eval_chunks_give_the_unchunked_outputs(monkeypatch):
    _, model = pair("mult", TASKS["3 mixed"])
    model.eval()
    batch = padded_batch(TASKS["3 mixed"], n=23)
    whole = model(batch).pred.detach()  # grad enabled: one chunk
    monkeypatch.setattr(mult_module, "EVAL_CHUNK", 6 * 5)  # 6 pairs x 5 steps -> one row per chunk
    with torch.no_grad():
        assert torch.allclose(model(batch).pred, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["mult", "mutualformer"])
def test_same_seed_trains_bitwise_identical_weights(name):
    hparams = {"layers": 1} if name == "mult" else {}
    first, second = (execute(tiny_spec(name, epochs=1, hparams=hparams), REGISTRY) for _ in range(2))
    assert first.ok, first.traceback
    assert first.info["state_hash"] == second.info["state_hash"]
    assert first.metrics == second.metrics and first.history == second.history


def test_group_linear_is_independent_linears():
    torch.manual_seed(0)
    layer = GroupLinear(3, 4, 6)
    x = torch.randn(3, 2, 5, 4)
    expected = torch.stack([torch.nn.functional.linear(x[g], layer.weight[g].t(), layer.bias[g]) for g in range(3)])
    assert torch.allclose(layer(x), expected, atol=1e-6)
    parts = layer(x.unsqueeze(1).expand(3, 3, 2, 5, 4), parts=3)  # part p: output features 2p, 2p + 1
    assert torch.allclose(parts.movedim(1, -2).flatten(-2), expected, atol=1e-6)


def test_group_attention_applies_each_groups_own_dropout():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(4, 3, 2, 5, 3, generator=g).requires_grad_() for _ in range(3))
    allowed = torch.rand(4, 3, 1, 5, generator=g) > 0.3
    allowed[..., 0] = True
    plain = group_attention(q, k, v, allowed, [0.0] * 4, training=False)
    dropped = group_attention(q, k, v, allowed, [0.0, 0.5, 0.0, 0.9], training=True)
    assert torch.equal(dropped[0], plain[0]) and torch.equal(dropped[2], plain[2])
    assert not torch.allclose(dropped[1], plain[1]) and not torch.allclose(dropped[3], plain[3])
    dropped.sum().backward()
    assert all(t.grad.abs().sum() > 0 for t in (q, k, v))


def test_speed_benchmark_runs_old_and_new_side_by_side(capsys):
    """``benchmarks/method_speed.py --quick`` on one cheap shape: behaviour only, never timing."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("fusebench_bench_method_speed", BENCH / "method_speed.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out = module.run(["--quick", "--shapes", "synthetic"])
    finally:
        sys.path.remove(str(BENCH))
    rows = out["shapes"]["synthetic"]
    assert set(rows) == {"mult", "mutualformer"}
    assert all(r["old_train"] > 0 and r["new_train"] > 0 and r["train_x"] > 0 for r in rows.values())
    assert "**train x**" in capsys.readouterr().out
