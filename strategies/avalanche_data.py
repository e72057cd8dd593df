"""Glue between plain tensors and Avalanche's datasets, buffers and parameter records.

Avalanche keeps a strategy's memory as datasets and `ParamData` objects that cannot be
loaded with ``torch.load(weights_only=True)``. These helpers turn them into plain tensors
for `CLStrategy.state_dict` and build them back on `load_state_dict`.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from avalanche.benchmarks.utils.data import AvalancheDataset
from avalanche.training.storage_policy import BalancedExemplarsBuffer, ReservoirSamplingBuffer
from avalanche.training.utils import ParamData
from torch.utils.data import DataLoader

from strategies.errors import IncompatibleState


def tensor_dataset(x: torch.Tensor, y: torch.Tensor) -> AvalancheDataset:
    """An Avalanche classification dataset over (x, y) with task label 0 on every sample.

    Task labels are required by LwF and the task-balanced loaders even when, as here, the
    scenario is domain-incremental (one task, drifting inputs).
    """
    return _make_taskaware_tensor_classification_dataset(
        x, y, task_labels=0, targets=[int(v) for v in y.tolist()]
    )


def dataset_tensors(dataset: AvalancheDataset | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """All (x, y) of an Avalanche dataset as two CPU tensors, in index order; None if empty."""
    if dataset is None or len(dataset) == 0:
        return None
    loader = DataLoader(dataset, batch_size=4096, shuffle=False, collate_fn=dataset.collate_fn)
    xs, ys = [], []
    for batch in loader:
        xs.append(batch[0].detach().cpu())
        ys.append(torch.as_tensor(batch[1]).detach().cpu().to(torch.int64))
    return torch.cat(xs), torch.cat(ys)


def cat_memories(
    parts: list[tuple[torch.Tensor, torch.Tensor] | None],
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Concatenate (x, y) pairs, skipping empty ones; None when nothing is left."""
    kept = [p for p in parts if p is not None]
    if not kept:
        return None
    return torch.cat([p[0] for p in kept]), torch.cat([p[1] for p in kept])


def reservoir_state(buffer: ReservoirSamplingBuffer) -> dict[str, Any]:
    """A reservoir buffer's samples and sampling weights as plain tensors."""
    data = dataset_tensors(buffer.buffer)
    return {
        "max_size": int(buffer.max_size),
        "x": None if data is None else data[0],
        "y": None if data is None else data[1],
        "weights": buffer._buffer_weights.detach().cpu().clone(),
    }


def reservoir_from_state(state: dict[str, Any]) -> ReservoirSamplingBuffer:
    """Rebuild a reservoir buffer from `reservoir_state`."""
    buffer = ReservoirSamplingBuffer(int(state["max_size"]))
    if state["x"] is not None:
        if len(state["x"]) != len(state["weights"]):
            raise IncompatibleState("replay buffer has different numbers of samples and weights")
        buffer.buffer = tensor_dataset(state["x"], state["y"])
    buffer._buffer_weights = state["weights"].clone()
    return buffer


def balanced_state(policy: BalancedExemplarsBuffer) -> list[dict[str, Any]]:
    """The groups (experiences or classes) of a balanced buffer, each with its reservoir."""
    return [
        {"key": int(key), **reservoir_state(group)} for key, group in policy.buffer_groups.items()
    ]


def load_balanced_state(policy: BalancedExemplarsBuffer, groups: list[dict[str, Any]]) -> None:
    """Refill a balanced buffer's groups from `balanced_state`, keeping their order."""
    policy.buffer_groups = {int(g["key"]): reservoir_from_state(g) for g in groups}


def policy_state(policy: BalancedExemplarsBuffer) -> dict[str, Any]:
    """Everything a balanced storage policy (by experience or by class) has learned."""
    return {
        "groups": balanced_state(policy),
        "num_exps": int(getattr(policy, "_num_exps", 0)),
        "seen_classes": sorted(int(c) for c in getattr(policy, "seen_classes", ())),
    }


def load_policy_state(policy: BalancedExemplarsBuffer, state: dict[str, Any]) -> None:
    """Restore what `policy_state` returned."""
    load_balanced_state(policy, state["groups"])
    if hasattr(policy, "_num_exps"):
        policy._num_exps = int(state["num_exps"])
    if hasattr(policy, "seen_classes"):
        policy.seen_classes = {int(c) for c in state["seen_classes"]}


def param_state(params: dict[str, ParamData]) -> dict[str, torch.Tensor]:
    """A name -> ParamData record (EWC, SI) as name -> CPU tensor."""
    return {name: p.data.detach().cpu().clone() for name, p in params.items()}


def params_from_state(
    state: dict[str, torch.Tensor], device: torch.device, prefix: str = ""
) -> dict[str, ParamData]:
    """Rebuild a name -> ParamData record from `param_state`."""
    return {
        name: ParamData(f"{prefix}{name}", init_tensor=t.to(device), device=device)
        for name, t in state.items()
    }


def detached_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of `model` without the hooks registered on it.

    Copies kept as teachers or restart points (LwF's previous model, GDumb's initial model)
    must not carry hooks that a caller attached for one update, such as the trainer's
    admission control, into later updates.
    """
    clone = copy.deepcopy(model)
    for module in clone.modules():
        module._forward_pre_hooks.clear()
        module._forward_hooks.clear()
        module._backward_hooks.clear()
    return clone


def to_cpu(value: Any) -> Any:
    """A copy of nested dicts/lists/tuples with every tensor detached and moved to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return value
