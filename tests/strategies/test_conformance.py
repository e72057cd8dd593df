"""Every registered strategy passes the same checks (River's `checks` style): a new strategy
gets these tests for free by being registered."""

from __future__ import annotations

import copy
import io
import math
import typing
from typing import Any

import annotated_types
import pytest
import torch

from strategies import (
    IncompatibleState,
    InvalidHyperparameters,
    InvalidTrainingData,
    available,
    export_torchscript,
    get_strategy,
    make_mlp,
)
from services.common.tensors import torch_dtype
from strategies.evaluation import accuracy
from strategies.models import make_resnet, make_tabular, make_text
from tests.strategies.conftest import FAST

ALL = available()


def _build(name: str, stream, model: torch.nn.Module | None = None, **hp: Any):
    if model is None:
        torch.manual_seed(0)
        model = make_mlp(math.prod(stream.input_shape), stream.num_classes, hidden=32)
    return get_strategy(name)(model, {**FAST, **hp})


def _roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.fixture(scope="module")
def trained_once(tiny_stream):
    """Each strategy after one update on the first concept (built on first use, then shared
    by the read-only checks below)."""
    cache: dict[str, Any] = {}

    def get(name: str):
        if name not in cache:
            strategy = _build(name, tiny_stream)
            exp = tiny_stream.experiences[0]
            cache[name] = (strategy, strategy.train(exp.x_train, exp.y_train))
        return cache[name]

    return get


def test_builtins_are_registered():
    assert {"naive", "replay", "ewc", "lwf", "si", "agem", "gdumb", "er_ace", "joint"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_learns_and_beats_chance(name, tiny_stream, trained_once):
    strategy, figures = trained_once(name)
    exp = tiny_stream.experiences[0]
    assert math.isfinite(figures["loss"]) and figures["seconds"] >= 0
    acc = accuracy(strategy.model, exp.x_test, exp.y_test, strategy.device)
    assert acc > 0.3, f"{name} reached {acc:.2f} on 10 classes"


@pytest.mark.parametrize("name", ALL)
def test_state_survives_save_and_load_and_training_continues_identically(name, tiny_stream):
    exps = tiny_stream.experiences
    original = _build(name, tiny_stream)
    for exp in exps[:2]:
        original.train(exp.x_train, exp.y_train)

    state = _roundtrip(original.state_dict())
    model = copy.deepcopy(original.model)  # the caller owns the weights, not the state
    restored = _build(name, tiny_stream, model=model)
    restored.load_state_dict(state)

    for a, b in [(original.memory(), restored.memory())]:
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])

    left = original.train(exps[2].x_train, exps[2].y_train)
    right = restored.train(exps[2].x_train, exps[2].y_train)
    assert left["loss"] == pytest.approx(right["loss"], rel=1e-5, abs=1e-6)
    for (key, p), q in zip(original.model.state_dict().items(), restored.model.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-5), f"{name}: {key} diverged after restore"


@pytest.mark.parametrize("name", ALL)
def test_fresh_state_round_trips(name, tiny_stream):
    state = _roundtrip(_build(name, tiny_stream).state_dict())
    again = _build(name, tiny_stream)
    again.load_state_dict(state)
    assert again.memory() is None


@pytest.mark.parametrize("name", ALL)
def test_memory_is_a_labelled_sample_or_none(name, tiny_stream, trained_once):
    strategy, _ = trained_once(name)
    exp = tiny_stream.experiences[0]
    memory = strategy.memory()
    if memory is not None:
        x, y = memory
        assert x.dtype == exp.x_train.dtype and y.dtype == torch.int64
        assert x.shape[1:] == exp.x_train.shape[1:] and len(x) == len(y) > 0
        assert x.device.type == "cpu"


def _bad_values(hp_cls) -> list[tuple[str, Any]]:
    """A value out of bounds for each constrained field, a value outside each Literal, and a
    value of the wrong type for each numeric field, read from the model's own declarations."""
    bad: list[tuple[str, Any]] = []
    for field, info in hp_cls.model_fields.items():
        kinds = {t for t in typing.get_args(info.annotation) or (info.annotation,) if t is not type(None)}
        if typing.get_origin(info.annotation) is typing.Literal:
            bad.append((field, "no-such-choice"))
            continue
        if kinds & {int, float}:
            bad.append((field, "not a number"))
        for meta in info.metadata:
            if isinstance(meta, annotated_types.Ge):
                bad.append((field, meta.ge - 1))
            elif isinstance(meta, annotated_types.Gt):
                bad.append((field, meta.gt))
            elif isinstance(meta, annotated_types.Le):
                bad.append((field, meta.le + 1))
            elif isinstance(meta, annotated_types.Lt):
                bad.append((field, meta.lt))
    return bad


@pytest.mark.parametrize("name", ALL)
def test_rejects_bad_hyperparameters_naming_the_field(name, tiny_stream):
    cls = get_strategy(name)
    bad = _bad_values(cls.Hyperparameters)
    assert len(bad) >= 8, "every strategy declares bounded hyperparameters"
    with pytest.raises(InvalidHyperparameters) as caught:  # the constructor validates
        cls(make_mlp(64, 10), {bad[0][0]: bad[0][1]})
    assert caught.value.field == bad[0][0]
    for field, value in bad:
        with pytest.raises(InvalidHyperparameters) as caught:
            cls.validate_hyperparameters({field: value})
        assert caught.value.field == field, (field, value)
        assert caught.value.reason == "invalid_hyperparameters"
        assert not caught.value.retryable
    with pytest.raises(InvalidHyperparameters) as caught:
        cls.validate_hyperparameters({"no_such_hyperparameter": 1})
    assert caught.value.field == "no_such_hyperparameter"
    defaults = cls.validate_hyperparameters(None)
    assert defaults == cls.validate_hyperparameters(defaults.model_dump())


@pytest.mark.parametrize("name", ALL)
def test_exported_torchscript_gives_the_models_probabilities(name, tiny_stream, trained_once):
    strategy, _ = trained_once(name)
    exp = tiny_stream.experiences[0]
    scripted = torch.jit.load(io.BytesIO(export_torchscript(strategy.model, tiny_stream.input_shape)))
    x = exp.x_test[:17]
    strategy.model.eval()
    with torch.no_grad():
        expected = torch.softmax(strategy.model(x), dim=1)
        got = scripted(x)
    strategy.model.train()
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(got.sum(dim=1), torch.ones(len(x)), atol=1e-5)
    with torch.no_grad():  # batch size is not baked into the trace
        assert scripted(exp.x_test[:1]).shape == (1, tiny_stream.num_classes)


@pytest.mark.parametrize("name", ALL)
def test_refuses_another_strategys_state_and_bad_samples(name, tiny_stream):
    strategy = _build(name, tiny_stream)
    other = "naive" if name != "naive" else "replay"
    with pytest.raises(IncompatibleState):
        strategy.load_state_dict(_build(other, tiny_stream).state_dict())
    wider = get_strategy(name)(make_mlp(64, 10, hidden=48), FAST)
    with pytest.raises(IncompatibleState):
        strategy.load_state_dict(wider.state_dict())
    with pytest.raises(InvalidTrainingData):
        strategy.train(torch.zeros(0, 64), torch.zeros(0, dtype=torch.int64))
    with pytest.raises(InvalidTrainingData):
        strategy.train(torch.zeros(3, 64), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(InvalidTrainingData):
        strategy.train(torch.full((2, 64), float("nan")), torch.zeros(2, dtype=torch.int64))


@pytest.mark.parametrize("name", ALL)
def test_trains_through_the_callers_model_and_keeps_none_of_its_hooks(name, tiny_stream):
    # The trainer's interference control is a forward pre-hook on `strategy.model`: every
    # training step must go through that object, and no copy the strategy keeps (LwF's
    # teacher, GDumb's initial model) may call the hook after it was removed.
    strategy = _build(name, tiny_stream)
    calls = []
    handle = strategy.model.register_forward_pre_hook(lambda module, args: calls.append(1))
    exp0, exp1 = tiny_stream.experiences[:2]
    strategy.train(exp0.x_train, exp0.y_train)
    assert calls, f"{name} trained without calling the model it was given"
    handle.remove()
    seen = len(calls)
    strategy.train(exp1.x_train, exp1.y_train)
    assert len(calls) == seen, f"{name} kept a copy of the model with the caller's hook"


@pytest.mark.parametrize("name", ALL)
def test_batchnorm_and_dropout_train_in_train_mode_and_serve_in_eval_mode(name, tiny_stream):
    """A model whose train and eval behaviour differ (BatchNorm running statistics, Dropout),
    through two updates, so the second one mixes replayed or distilled data into its batches:
    the running statistics move and stay finite, evaluation is deterministic (no dropout), and
    the eval-mode model (running statistics, not batch ones) beats chance on the concept it just learned."""
    from strategies.models import make_tabular

    torch.manual_seed(0)
    exps = tiny_stream.experiences
    model = make_tabular(math.prod(tiny_stream.input_shape), tiny_stream.num_classes, dropout=0.3)
    bn = model[2]
    strategy = get_strategy(name)(model, {**FAST, "epochs": 5})
    for exp in exps[:2]:
        strategy.train(exp.x_train, exp.y_train)
    assert torch.isfinite(bn.running_mean).all() and torch.isfinite(bn.running_var).all()
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean)), "running statistics never updated"
    assert bn.num_batches_tracked > 0
    trained = strategy.model.eval()
    with torch.no_grad():
        x = exps[1].x_test[:64]
        assert torch.equal(trained(x), trained(x)), "dropout active in eval mode"
    acc = accuracy(trained, exps[1].x_test, exps[1].y_test, strategy.device)
    assert acc > 0.25, f"{name}: eval-mode accuracy {acc:.2f} on the concept it learned"


# -- every strategy on every model family -------------------------------------------------
# Tabular floats, C×H×W images and INT64 token ids reach strategies through the same
# `train(x, y)`; what differs is the input dtype (ids must stay integers all the way through
# buffers, teachers and importance walks) and the export's example batch.

FAMILIES = {
    # family: (stream fixture, factory(stream), datatype, export tolerance)
    "tabular": ("tiny_stream", lambda s: make_tabular(math.prod(s.input_shape), s.num_classes, hidden=16), "FP32", 1e-6),
    "image": ("image_stream", lambda s: make_resnet(s.num_classes, s.input_shape, width=4, layers=(1, 1, 1, 1)), "FP32", 1e-5),
    "text": ("text_stream", lambda s: make_text(s.num_classes, s.input_shape, vocab_size=s.vocab_size, embed_dim=8), "INT64", 1e-6),
}
FAMILY_HP = {"epochs": 1, "lr": 0.01, "batch_size": 16}
FAMILY_N = 48
"""Samples per update: three full mini-batches (no batch of one reaches BatchNorm)."""


def _family_build(stream, family: str, name: str, model: torch.nn.Module | None = None):
    if model is None:
        torch.manual_seed(0)
        model = FAMILIES[family][1](stream)
    return get_strategy(name)(model, FAMILY_HP)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("name", ALL)
def test_every_strategy_trains_restores_and_exports_every_family(name, family, request):
    fixture, _, datatype, atol = FAMILIES[family]
    stream = request.getfixturevalue(fixture)
    exps = [(e.x_train[:FAMILY_N], e.y_train[:FAMILY_N]) for e in stream.experiences[:3]]
    assert exps[0][0].dtype == torch_dtype(datatype)

    original = _family_build(stream, family, name)
    for x, y in exps[:2]:  # the second update mixes in replayed, distilled or penalised old data
        assert math.isfinite(original.train(x, y)["loss"])
    memory = original.memory()
    if memory is not None:
        assert memory[0].dtype == exps[0][0].dtype, f"{name} changed the inputs' dtype in its memory"
        assert memory[0].shape[1:] == exps[0][0].shape[1:]

    restored = _family_build(stream, family, name, model=copy.deepcopy(original.model))
    restored.load_state_dict(_roundtrip(original.state_dict()))
    left, right = original.train(*exps[2]), restored.train(*exps[2])
    assert left["loss"] == pytest.approx(right["loss"], rel=1e-5, abs=1e-6)
    for (key, p), q in zip(original.model.state_dict().items(), restored.model.state_dict().values()):
        assert torch.allclose(p.float(), q.float(), atol=1e-5), f"{name}/{family}: {key} diverged after restore"

    model = original.model.eval()
    scripted = torch.jit.load(io.BytesIO(export_torchscript(model, stream.input_shape, datatype=datatype)))
    x = stream.experiences[0].x_test[:9]
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=1)
        assert torch.allclose(scripted(x), expected, atol=atol)
        assert scripted(x[:1]).shape == (1, stream.num_classes)
