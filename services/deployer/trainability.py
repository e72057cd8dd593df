"""Registration proves a model can be updated, served and exported before anything is written.

Without this, a model the trainer cannot rebuild registers and serves, then fails its first
update, and the next, every cooldown. Here the registered architecture is built, given its
weights, run forward and backward on a synthetic batch of the declared input, trained one short
step by the model's own strategy (LwF and EWC copy and walk the model, so this is the check that
matters), exported to TorchScript, reloaded and compared with the eager module. Any failure is a
`RegistrationError` with a reason and one line saying what to change.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from services.common.errors import ModelCIError
from services.common.tensors import InputSpec
from services.deployer import checks
from services.deployer.checks import CandidateInvalid
from strategies.architecture import Architecture, ArchitectureError, builtin_mlp, for_training, match_state
from strategies.export import export_torchscript

PROBE_BATCH = 8
"""Rows of the synthetic batch: more than one, so BatchNorm trains, and not the export's own 2."""
EXPORT_ATOL = 1e-4
"""Largest difference allowed between the eager module's and its export's probabilities."""


class RegistrationError(ModelCIError):
    reason = "registration"
    http_status = 400

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class Proven:
    """What registration stores for version 1 once the model passed every step."""

    architecture: Architecture
    artifact: bytes
    """TorchScript that Triton serves (probabilities)."""
    weights: bytes
    """The module's ``state_dict``, where the first update starts."""
    checks: dict[str, Any]


def _state(weights: bytes) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch.save file, or it holds objects other than tensors
        raise RegistrationError("weights_invalid", f"the weights file is not a state_dict readable with weights_only=True: {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RegistrationError("weights_invalid", "the weights file must hold a state_dict (names to tensors)")
    return state


def _synthetic(spec: InputSpec, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(spec.synthetic(PROBE_BATCH).astype(spec.compute_dtype))
    return x, torch.arange(PROBE_BATCH) % num_classes


def prove(
    architecture: Architecture,
    weights: bytes | None,
    input: InputSpec | Sequence[int],
    num_classes: int,
    strategy: str,
    hyperparameters: dict[str, Any],
    artifact: bytes | None = None,
) -> Proven:
    """Every step an update will take, once, on a synthetic batch; the stored artifacts on success.

    ``artifact`` is a TorchScript file the team exported themselves (served as version 1 instead
    of the project's own export, after the same checks). ``input`` is the declared input (a
    bare shape means FP32).
    """
    from strategies.registry import get_strategy

    spec = InputSpec.of(input)
    input_shape = list(spec.shape)
    if num_classes < 2:
        raise RegistrationError("not_a_classifier", f"{num_classes} class given: ModelCI-e updates classifiers of two or more classes (regression is not supported yet)")
    try:
        model = architecture.build()
    except ArchitectureError as exc:
        raise RegistrationError(exc.reason, str(exc)) from exc
    if weights is not None:
        state = _state(weights)
        own = model.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise RegistrationError("weights_do_not_fit", f"missing {missing[:5]}, unexpected {unexpected[:5]} for {architecture.factory}")
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise RegistrationError("weights_do_not_fit", str(exc).splitlines()[0]) from exc
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise RegistrationError("not_trainable", "the model has no trainable parameters (nothing an update could change)")

    x, y = _synthetic(spec, num_classes)
    probe = copy.deepcopy(model).train()
    try:
        out = probe(x)
    except Exception as exc:  # the declared shape does not fit the module
        raise RegistrationError("wrong_input_shape", f"forward on a {spec.datatype} batch of shape {list(x.shape)} fails: {type(exc).__name__}: {str(exc)[:200]}") from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (PROBE_BATCH, num_classes):
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise RegistrationError("wrong_output_shape", f"the model returns {shape} for {PROBE_BATCH} inputs, expected [{PROBE_BATCH}, {num_classes}] (one score per class)")
    loss = torch.nn.functional.cross_entropy(for_training(probe, architecture.output)(x), y)
    if not loss.requires_grad:
        raise RegistrationError("no_gradient", "the loss does not depend on any parameter (is forward under torch.no_grad or detached?)")
    loss.backward()
    grads = [p.grad for p in probe.parameters() if p.requires_grad and p.grad is not None]
    if not grads or not any(bool(torch.isfinite(g).all()) and bool(g.abs().sum() > 0) for g in grads):
        raise RegistrationError("no_gradient", "no finite, non-zero gradient reaches the parameters")

    cls = get_strategy(strategy)
    hp = cls.validate_hyperparameters({**hyperparameters, "epochs": 1}).model_dump()
    try:
        cls(for_training(copy.deepcopy(model), architecture.output), hp).train(x, y)
    except Exception as exc:
        raise RegistrationError("strategy_failed", f"strategy {strategy!r} cannot train this model: {type(exc).__name__}: {str(exc)[:300]}") from exc

    model.eval()
    exported = export_torchscript(model, tuple(input_shape), architecture.output, datatype=spec.datatype)
    served = artifact if artifact is not None else exported
    sample = spec.synthetic(5, seed=1)
    try:
        module, _ = checks.load_torchscript(served)
        shapes = checks.check_shapes(module, spec, num_classes)
        outputs = checks.check_outputs(module, sample)
    except CandidateInvalid as exc:
        hints = {
            "not_probabilities": " (declared probabilities: is it logits? register with --output logits)",
            "wrong_input_shape": f" (the artifact does not take a {spec.datatype} batch of shape [n, {', '.join(map(str, input_shape))}]: check --input-shape and --datatype)",
        }
        raise RegistrationError(exc.check.reason, f"{exc.check.values}{hints.get(exc.check.reason, '')}") from exc
    with torch.no_grad():
        eager = model(torch.from_numpy(sample.astype(spec.compute_dtype)))
        eager = torch.softmax(eager, dim=1) if architecture.output == "logits" else eager
    diff = float(np.abs(checks.run(module, sample) - eager.numpy()).max())
    if diff > EXPORT_ATOL:
        what = "the TorchScript file" if artifact is not None else "the TorchScript export"
        raise RegistrationError("export_mismatch", f"{what} differs from the eager model by {diff:.2e} (data-dependent control flow is not traced; docs/models.md)")
    return Proven(architecture, served, _dump(model.state_dict()), {"shapes": shapes.values, "outputs": outputs.values, "export_max_diff": diff})


def prove_torchscript(artifact: bytes, input: InputSpec | Sequence[int], num_classes: int, strategy: str, hyperparameters: dict[str, Any],
                      architecture: Architecture | None = None) -> Proven:
    """A model registered from a TorchScript file: its weights are the file's own parameters,
    matched by name to ``architecture`` (the built-in MLP when none is given, the only one
    recognisable from the parameters alone); the file is served as version 1."""
    try:
        module, _ = checks.load_torchscript(artifact)
    except CandidateInvalid as exc:
        raise RegistrationError(exc.check.reason, str(exc.check.values)) from exc
    state = dict(module.state_dict())
    spec = InputSpec.of(input)
    arch = architecture or (None if spec.integer else builtin_mlp(state, spec.size, num_classes))
    if arch is None:
        raise RegistrationError(
            "not_trainable",
            "the trainer cannot rebuild this TorchScript module (only the built-in MLP can be updated from TorchScript alone); "
            "register its architecture with --factory package.module:function --weights state_dict.pt (docs/models.md)",
        )
    try:
        layers = list(arch.build().state_dict())
    except ArchitectureError as exc:
        raise RegistrationError(exc.reason, str(exc)) from exc
    matched = match_state(layers, state)
    if matched is None:
        raise RegistrationError("weights_do_not_fit", f"the TorchScript module's parameters are not those of {arch.factory}; pass --weights")
    return prove(arch, _dump(matched), spec, num_classes, strategy, hyperparameters, artifact=artifact)


def _dump(state: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()
