"""Registration's proof that a model can be updated: what it accepts, and each refusal's reason."""

from __future__ import annotations

import io

import pytest
import torch

from services.deployer.trainability import RegistrationError, prove, prove_torchscript
from strategies.architecture import Architecture, ArchitectureError, LogProbabilities, for_training, load_factory, served_part
from strategies.export import export_torchscript
from strategies.models import make_mlp
from strategies.registry import available

F = "tests.models.factories"
FAST = {"epochs": 1, "batch_size": 8}


def weights_of(module: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.getvalue()


@pytest.mark.parametrize("strategy", available())
@pytest.mark.parametrize(
    ("factory", "kwargs", "shape", "classes"),
    [
        (f"{F}:one_hidden_mlp", {}, [8], 3),
        ("strategies.models:make_tabular", {"input_dim": 8, "num_classes": 3}, [8], 3),
        ("strategies.models:make_cnn", {"in_channels": 1, "num_classes": 4, "width": 4}, [1, 8, 8], 4),
    ],
    ids=["mlp-1-hidden", "tabular-bn-dropout", "cnn"],
)
def test_every_strategy_trains_every_family(factory, kwargs, shape, classes, strategy):
    arch = Architecture(factory, kwargs)
    module = arch.build()
    proven = prove(arch, weights_of(module), shape, classes, strategy, FAST)
    assert proven.architecture == arch
    state = torch.load(io.BytesIO(proven.weights), weights_only=True)
    assert set(state) == set(module.state_dict())
    assert proven.checks["export_max_diff"] <= 1e-4


def test_a_module_returning_probabilities_trains_through_its_log_and_serves_as_it_is():
    arch = Architecture(f"{F}:SoftmaxHead", output="probabilities")
    module = arch.build()
    proven = prove(arch, weights_of(module), [8], 3, "replay", FAST)
    served = torch.jit.load(io.BytesIO(proven.artifact))
    x = torch.randn(4, 8)
    torch.testing.assert_close(served(x), module.eval()(x))
    net = for_training(module, "probabilities")
    assert isinstance(net, LogProbabilities) and served_part(net, "probabilities") is module
    torch.testing.assert_close(torch.softmax(net(x), dim=1), module(x))


@pytest.mark.parametrize(
    ("arch", "shape", "classes", "reason"),
    [
        (Architecture(f"{F}:NoParameters"), [8], 3, "not_trainable"),
        (Architecture(f"{F}:Frozen"), [8], 3, "no_gradient"),
        (Architecture(f"{F}:one_hidden_mlp"), [5], 3, "wrong_input_shape"),
        (Architecture(f"{F}:one_hidden_mlp"), [8], 4, "wrong_output_shape"),
        (Architecture(f"{F}:one_hidden_mlp", output="probabilities"), [8], 3, "not_probabilities"),
        (Architecture(f"{F}:DataDependent"), [8], 3, "export_mismatch"),
        (Architecture(f"{F}:not_a_module"), [8], 3, "architecture_invalid"),
        (Architecture(f"{F}:missing"), [8], 3, "architecture_invalid"),
        (Architecture("no_such_package.models:make"), [8], 3, "architecture_invalid"),
    ],
    ids=["no-parameters", "no-gradient", "input-shape", "output-shape", "logits-declared-as-probabilities",
         "data-dependent-export", "not-a-module", "missing-attribute", "missing-module"],
)
def test_refusals_name_their_reason(arch, shape, classes, reason):
    with pytest.raises(RegistrationError) as info:
        prove(arch, None, shape, classes, "replay", FAST)
    assert info.value.reason == reason, str(info.value)
    assert "\n" not in str(info.value), "one line"


def test_weights_that_do_not_fit_or_are_not_a_state_dict_are_refused():
    arch = Architecture(f"{F}:one_hidden_mlp")
    with pytest.raises(RegistrationError) as info:
        prove(arch, weights_of(make_mlp(8, 3)), [8], 3, "replay", FAST)
    assert info.value.reason == "weights_do_not_fit"
    with pytest.raises(RegistrationError) as info:
        prove(arch, b"not a torch file", [8], 3, "replay", FAST)
    assert info.value.reason == "weights_invalid"
    buf = io.BytesIO()
    torch.save({"0.weight": object()}, buf)  # an arbitrary object: weights_only refuses to unpickle it
    with pytest.raises(RegistrationError) as info:
        prove(arch, buf.getvalue(), [8], 3, "replay", FAST)
    assert info.value.reason == "weights_invalid"


def test_torchscript_alone_registers_only_the_builtin_mlp():
    torch.manual_seed(0)
    mlp = make_mlp(8, 3, hidden=12)
    proven = prove_torchscript(export_torchscript(mlp, (8,)), [8], 3, "replay", FAST)
    assert proven.architecture == Architecture("strategies.models:make_mlp", {"input_dim": 8, "num_classes": 3, "hidden": 12})
    state = torch.load(io.BytesIO(proven.weights), weights_only=True)
    torch.testing.assert_close(state["1.weight"], mlp.state_dict()["1.weight"])
    other = export_torchscript(load_factory(f"{F}:one_hidden_mlp")(), (8,))
    with pytest.raises(RegistrationError) as info:
        prove_torchscript(other, [8], 3, "replay", FAST)
    assert info.value.reason == "not_trainable" and "--factory" in str(info.value)


def test_an_unknown_output_kind_is_refused():
    with pytest.raises(ArchitectureError):
        Architecture(f"{F}:one_hidden_mlp", output="scores")  # type: ignore[arg-type]
