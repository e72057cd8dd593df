"""Start-up reconciliation: make the registry, Triton's repository index and the folders agree.

A deployer can die anywhere: after writing a version folder and before loading it, after Triton
switched and before the registry heard, in the middle of a validation. On restart the rules are:
Triton's index says what is really served; a version is adopted as serving only if Triton has
it READY and the registry recorded it as confirmed (status serving); anything Triton serves
unpinned that the registry never confirmed is unloaded; a serving version Triton does not have
is loaded again, or, if it cannot be, the registry stops claiming it. Interrupted validations go
back to ``candidate`` (their candidate events were not committed and will be replayed), and
folders of versions nobody will serve are removed.
"""

from __future__ import annotations

import shutil

import structlog

from services.common.registry import ModelRecord, VersionStatus
from services.common.triton_repo import versions_on_disk
from services.deployer.core import Deployer
from services.deployer.gate import STAGING_SUFFIX
from services.deployer.publisher import remove_version, switch
from services.common.triton_errors import TritonUnavailable


S = VersionStatus
_log = structlog.get_logger("deployer.reconcile")


def reconcile(dep: Deployer) -> list[str]:
    """Repairs every model; returns what it changed, one line each (also logged)."""
    actions: list[str] = []
    for entry in dep.triton.index():
        name = entry.get("name", "")
        if name.endswith(STAGING_SUFFIX):
            if entry.get("state") == "READY":
                dep.triton.unload(name)
            shutil.rmtree(dep.repository / name, ignore_errors=True)
            actions.append(f"{name}: removed staging model")
    for model in dep.registry.list_models():
        actions += _reconcile_model(dep, model)
    for line in actions:
        _log.info("reconciled", action=line)
    return actions


def _reconcile_model(dep: Deployer, model: ModelRecord) -> list[str]:
    name, reg, actions = model.name, dep.registry, []
    versions = {v.version: v for v in reg.list_versions(name)}
    ready = dep.triton.ready_versions(name)
    claimed = sorted({v for v, rec in versions.items() if rec.status == S.SERVING} | (
        {model.serving_version} if model.serving_version is not None else set()))
    retired = sorted(v for v, rec in versions.items() if rec.status == S.RETIRED)
    # Preference: confirmed and loaded; then what the registry claims (reload it); then the
    # previous/retired versions, each of which was confirmed once.
    order = sorted((v for v in claimed if v in ready and versions.get(v) and versions[v].status == S.SERVING), reverse=True)
    order += [v for v in reversed(claimed) if v not in order]
    if model.previous_version is not None:
        order.append(model.previous_version)
    order += [v for v in reversed(retired) if v not in order]
    target = None
    for v in order:
        if v in ready:
            target = v
            break
        rec = versions.get(v)
        if rec is None or not rec.artifact_uri:
            continue
        try:
            data = {v: dep.store.get(rec.artifact_uri, rec.artifact_sha256)}
            switch(dep.triton, dep.repository, model, [v], v, data, model.input_spec.synthetic(1))
            ready = dep.triton.ready_versions(name)
            target = v
            actions.append(f"{name}: reloaded v{v} into Triton")
            break
        except TritonUnavailable:
            raise
        except Exception as exc:  # an artifact gone or a load refused: try the next one
            actions.append(f"{name}: v{v} cannot be served ({type(exc).__name__}: {str(exc)[:120]})")
    previous = model.previous_version if model.previous_version is not None and target is not None and model.previous_version < target else None
    keep = [target] if target is not None else []
    on_disk = set(versions_on_disk(dep.repository, name))
    if target is not None and (set(keep) != ready or set(keep) != on_disk):
        probe = model.input_spec.synthetic(1)
        switch(dep.triton, dep.repository, model, keep, target, dep._artifacts(name, keep), probe)
        actions.append(f"{name}: Triton set to {keep} (was {sorted(ready)})")
    # The registry now follows Triton.
    for v, rec in versions.items():
        if rec.status == S.SERVING and v != target:
            new_status = S.RETIRED if target is not None and v < target else S.ROLLED_BACK
            reg.set_status(name, v, new_status, note="reconciled: not served by Triton")
            actions.append(f"{name}: v{v} no longer marked serving")
        elif rec.status == S.VALIDATING:
            reg.set_status(name, v, S.CANDIDATE, note="reconciled: validation interrupted, awaits replay")
            actions.append(f"{name}: v{v} back to candidate")
    if target is not None and versions.get(target) is not None and versions[target].status != S.SERVING:
        reg.set_status(name, target, S.SERVING, note="reconciled")
    if model.serving_version != target or model.previous_version != previous:
        reg.update_model(name, serving_version=target, previous_version=previous)
        actions.append(f"{name}: registry serving v{target} (was v{model.serving_version})")
    if target is not None:
        dep.metrics.serving_version.labels(name).set(target)
    # Under the ``latest`` policy any folder could be loaded by the next load: keep only ``keep``.
    for v in versions_on_disk(dep.repository, name):
        if v not in keep:
            remove_version(dep.repository, name, v)
            actions.append(f"{name}: removed folder of v{v} ({versions[v].status if v in versions else 'unknown'})")
    return actions
