"""MulT against its reference code (yaohungt/Multimodal-Transformer @a670936, main.py argparse
defaults and src/models.py): every dropout probability read off the built modules, the text
input's embedding dropout, key and value dropped out independently, the reference attention
init, and eval mode free of dropout."""

from __future__ import annotations

import math

import torch

from benchmark_core.engine.data import Batch
from benchmark_core.plugins import build_registry
from benchmark_core.specs import ModalitySpec, TargetSpec, TaskSpec
from benchmark_core.suite.runner import resolve_hparams

REGISTRY = build_registry()
SPEC = REGISTRY.method("mult")
TAV = TaskSpec((ModalitySpec("text", 6, "sequence"), ModalitySpec("audio", 5, "sequence"),
                ModalitySpec("vision", 4, "sequence")), TargetSpec("regression", 1))
# distinct values so every role is identifiable in the built modules
ROLES = {"attn_dropout": 0.1, "attn_dropout_a": 0.2, "attn_dropout_v": 0.3}


def build(task: TaskSpec = TAV, **overrides):
    torch.manual_seed(0)
    return SPEC.build(task, resolve_hparams(SPEC, {"layers": 1, **overrides}))  # depth: cost only


def batch_for(task: TaskSpec, n: int = 4, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = {m.name: torch.randn(n, 3 + i, m.dim, generator=g) for i, m in enumerate(task.modalities)}
    mask = {m: torch.ones(t.shape[:2], dtype=torch.bool) for m, t in x.items()}
    return Batch(x, mask, {m: torch.ones(n, dtype=torch.bool) for m in x}, torch.randn(n, generator=g))


def attention_dropouts(model) -> dict[str, set[float]]:
    """Crossmodal 'source->target' and memory 'target' stacks -> the attention dropout of their layers
    (the stacks are batched: a layer holds one dropout per stack, in the order of its names)."""
    out = {key: {layer.attn_dropout[g] for layer in model.crossmodal.layers} for g, key in enumerate(model.crossmodal)}
    out.update({f"memory {t}": {layer.attn_dropout[g] for layer in model.memory.layers}
                for g, t in enumerate(model.memory)})
    return out


def test_defaults_are_the_reference_main_py_defaults():
    """main.py l.30-48 (dropouts, nlevels, num_heads) and models.py l.15 (d = 30)."""
    expected = {"mult_dim": 30, "heads": 5, "layers": 5, "attn_dropout": 0.1, "attn_dropout_a": 0.0,
                "attn_dropout_v": 0.0, "relu_dropout": 0.1, "res_dropout": 0.1, "embed_dropout": 0.25,
                "out_dropout": 0.0}
    assert {k: SPEC.defaults.get(k) for k in expected} == expected


def test_attention_dropout_is_the_source_roles_and_attn_dropout_in_every_memory_stack():
    """models.py l.47-54 + get_network l.68-79: trans_l_with_a is built as 'la' -> attn_dropout_a,
    i.e. the dropout on attention weights belongs to the *source* (key/value) modality; the
    three *_mem stacks all use attn_dropout."""
    model = build(**ROLES)
    source = {"text": 0.1, "audio": 0.2, "vision": 0.3}
    expected = {f"{s}->{t}": {source[s]} for s in source for t in source if s != t}
    expected.update({f"memory {t}": {0.1} for t in source})
    assert attention_dropouts(model) == expected


def test_default_attention_dropouts_on_text_audio_vision():
    source = {"text": 0.1, "audio": 0.0, "vision": 0.0}
    expected = {f"{s}->{t}": {source[s]} for s in source for t in source if s != t}
    expected.update({f"memory {t}": {0.1} for t in source})
    assert attention_dropouts(build()) == expected


def test_every_other_dropout_is_the_reference_value():
    model = build()
    stacks = [model.crossmodal, model.memory]  # every pair / target stack, batched
    assert {s.embed_dropout.p for s in stacks} == {0.25}
    assert {layer.residual_dropout.p for s in stacks for layer in s.layers} == {0.1}
    assert {layer.ff[2].p for s in stacks for layer in s.layers} == {0.1}  # relu_dropout
    assert model.out_dropout.p == 0.0


def test_text_input_gets_the_embedding_dropout_before_its_projection():
    """models.py l.96: F.dropout(x_l, p=embed_dropout) on the raw text features only."""
    model = build()
    assert model.text_dropout.p == 0.25 and model.text == "text"
    seen: dict[str, torch.Tensor] = {}
    for m in TAV.modality_names:
        model.project[m].register_forward_pre_hook(lambda _, args, m=m: seen.__setitem__(m, args[0]))
    batch = batch_for(TAV)
    model.train()
    torch.manual_seed(1)
    model(batch)
    kept = seen["text"] != 0
    assert 0 < kept.float().mean() < 1  # some features dropped ...
    assert torch.allclose(seen["text"][kept], batch.x["text"][kept] / 0.75)  # ... the rest rescaled
    assert torch.equal(seen["audio"], batch.x["audio"]) and torch.equal(seen["vision"], batch.x["vision"])
    model.eval()
    model(batch)
    assert torch.equal(seen["text"], batch.x["text"])


def test_key_and_value_get_independent_embedding_dropout():
    """transformer.py l.70-76: x_k and x_v are embedded and dropped out separately."""
    model = build()
    pair = list(model.crossmodal).index("audio->text")
    seen = []  # the normalised (query, key, value) stacked per pair, as the attention projection reads them
    model.crossmodal.layers[0].in_proj.register_forward_pre_hook(lambda _, args: seen.append(args[0][pair]))
    batch = batch_for(TAV)
    model.train()
    model(batch)
    _, key, value = seen[-1]
    assert not torch.equal(key, value)
    model.eval()
    model(batch)
    _, key, value = seen[-1]
    assert torch.equal(key, value)


def test_attention_projections_are_initialised_as_in_the_reference():
    """multihead_attention.py l.40-45: xavier-uniform in- and out-projections, zero biases."""
    model = build()
    layer, pair = model.crossmodal.layers[0], list(model.crossmodal).index("text->audio")
    out_proj = layer.out_proj.weight[pair]
    d = out_proj.shape[0]
    bound = math.sqrt(6 / (2 * d))  # xavier-uniform of a d x d matrix
    assert out_proj.abs().max() <= bound
    assert out_proj.abs().max() > 1 / math.sqrt(d)  # beyond PyTorch's default Linear bound
    assert layer.in_proj.weight[pair].abs().max() <= math.sqrt(6 / (4 * d))  # xavier of the packed 3d x d
    assert torch.count_nonzero(layer.out_proj.bias) == 0 and torch.count_nonzero(layer.in_proj.bias) == 0


def test_eval_outputs_do_not_depend_on_any_dropout():
    batch = batch_for(TAV)
    with_dropout = build(**ROLES).eval()
    without = build(attn_dropout=0.0, attn_dropout_a=0.0, attn_dropout_v=0.0, relu_dropout=0.0,
                    res_dropout=0.0, embed_dropout=0.0, out_dropout=0.0).eval()
    with torch.no_grad():
        assert torch.equal(with_dropout(batch).pred, without(batch).pred)
        assert torch.equal(with_dropout(batch).pred, with_dropout(batch).pred)
    with_dropout.train()
    assert not torch.equal(with_dropout(batch).pred, without(batch).pred)


def test_roles_follow_text_modality_and_task_order():
    """The reference's (x_l, x_a, x_v) roles: ``text_modality`` (default: the first) is text,
    the first other modality in task order is audio, every further one takes the vision role."""
    task = TaskSpec((*TAV.modalities, ModalitySpec("extra", 3)), TAV.target)
    model = build(task, text_modality="audio", **ROLES)
    assert model.text == "audio"
    source = {"audio": 0.1, "text": 0.2, "vision": 0.3, "extra": 0.3}
    crossed = {k: v for k, v in attention_dropouts(model).items() if "->" in k}
    assert crossed == {f"{s}->{t}": {source[s]} for s in source for t in source if s != t}
    assert build(task, text_modality=3).text == "extra"
