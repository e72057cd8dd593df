"""Conformance suite: every registered detector is checked by the same tests."""

from __future__ import annotations

import json
import random

import pytest
from river import drift as river_drift

from services.drift.detectors import Detector, build, registered
from services.drift.detectors.adwin import ADWIN
from services.drift.errors import DetectorConfigError, DetectorStateError

KINDS = sorted(registered())


def step_stream(seed: int, kind: str, n_before: int = 3000, n_after: int = 3000) -> list[float]:
    """A stream whose mean jumps once, at ``n_before``: 0/1 errors for binary detectors."""
    rng = random.Random(seed)
    if registered()[kind].binary:
        return [float(rng.random() < 0.05) for _ in range(n_before)] + [float(rng.random() < 0.6) for _ in range(n_after)]
    return [rng.gauss(0.0, 0.1) for _ in range(n_before)] + [rng.gauss(3.0, 0.1) for _ in range(n_after)]


def detections(det: Detector, values: list[float]) -> list[int]:
    found = []
    for i, x in enumerate(values):
        det.update(x)
        if det.drift_detected:
            found.append(i)
    return found


def test_registry_is_filled_by_the_decorator() -> None:
    assert {"adwin", "page_hinkley", "ddm", "eddm", "hddm_a"} <= set(KINDS)
    assert "kswin" not in KINDS  # per-event cost must stay in microseconds


@pytest.mark.parametrize("kind", KINDS)
def test_update_then_read(kind: str) -> None:
    det = build(kind)
    assert det.drift_detected is False
    det.update(0.0)
    assert isinstance(det.drift_detected, bool)
    assert all(isinstance(v, float) for v in det.statistics().values())


@pytest.mark.parametrize("kind", KINDS)
def test_detects_a_step_change_after_it_and_not_before(kind: str) -> None:
    values = step_stream(1, kind)
    found = detections(build(kind), values)
    assert any(3000 <= i < 4500 for i in found), found
    if kind != "eddm":  # EDDM reacts to the spacing of errors and is noisy by design
        assert not [i for i in found if i < 3000], found


@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_restore_gives_identical_behaviour(kind: str) -> None:
    values = step_stream(2, kind)
    det = build(kind)
    for x in values[:2500]:
        det.update(x)
    text = json.dumps(det.snapshot(), allow_nan=False)  # strict JSON, no pickle
    copy = Detector.restore(json.loads(text))
    assert type(copy) is type(det) and copy.get_params() == det.get_params()
    rest = values[2500:]
    assert detections(copy, rest) == detections(det, rest)
    assert json.dumps(copy.snapshot()) == json.dumps(det.snapshot())


@pytest.mark.parametrize("kind", KINDS)
def test_update_many_is_update_in_a_loop(kind: str) -> None:
    values = step_stream(3, kind)
    one, many = build(kind), build(kind)
    expected = detections(one, values)
    got = []
    for start in range(0, len(values), 97):
        got += [start + i for i, _stats in many.update_many(values[start : start + 97])]
    assert got == expected
    assert json.dumps(many.snapshot()) == json.dumps(one.snapshot())


@pytest.mark.parametrize("kind", KINDS)
def test_rejects_bad_parameters(kind: str) -> None:
    cls = registered()[kind]
    with pytest.raises(DetectorConfigError, match="unknown"):
        build(kind, {"no_such_parameter": 1})
    for name, param in cls.PARAMS.items():
        bad = "text" if param.type is not str else 3.5
        with pytest.raises(DetectorConfigError):
            build(kind, {name: bad})
    first_numeric = next((n for n, p in cls.PARAMS.items() if p.type in (int, float)), None)
    if first_numeric is not None:
        with pytest.raises(DetectorConfigError, match="out of range"):
            build(kind, {first_numeric: -1})


@pytest.mark.parametrize("kind", KINDS)
def test_clone_is_fresh_with_same_parameters(kind: str) -> None:
    det = build(kind)
    for x in step_stream(4, kind)[:500]:
        det.update(x)
    fresh = det.clone()
    assert fresh.get_params() == det.get_params()
    assert json.dumps(fresh.snapshot()) == json.dumps(build(kind, det.get_params()).snapshot())


def test_restore_refuses_data_that_names_classes() -> None:
    det = build("page_hinkley")
    snap = det.snapshot()
    snap["state"]["_x_mean"] = {"$obj": "Popen", "attrs": {}}
    with pytest.raises(DetectorStateError):
        Detector.restore(snap)
    with pytest.raises(DetectorConfigError):
        Detector.restore({"kind": "os.system", "params": {}, "state": {}})


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("delta", [0.002, 0.0001])
def test_adwin_fires_where_rivers_adwin_fires(seed: int, delta: float) -> None:
    rng = random.Random(seed)
    values = [float(rng.random() < 0.1) for _ in range(8000)] + [float(rng.random() < 0.3) for _ in range(3000)]
    values += [rng.gauss(0.0, 1.0) for _ in range(4000)] + [rng.gauss(0.7, 1.0) for _ in range(4000)]
    ours = detections(ADWIN(delta=delta), values)
    rivers = detections(river_drift.ADWIN(delta=delta), values)
    assert ours == rivers and ours


def test_adwin_direction_up_ignores_falling_means() -> None:
    rng = random.Random(5)
    falling = [float(rng.random() < 0.5) for _ in range(3000)] + [float(rng.random() < 0.05) for _ in range(3000)]
    assert detections(ADWIN(direction="both"), falling)
    assert not detections(ADWIN(direction="up"), falling)
