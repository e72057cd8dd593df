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


# Saved by the pure-Python ADWIN (before numba) after the first 400 values of `_adwin_saved_stream`;
# deployments hold such snapshots in Redis, so the layout and every float must restore unchanged.
PURE_PYTHON_ADWIN_SNAPSHOT = {
    "kind": "adwin",
    "params": {"delta": 0.05, "clock": 16, "max_buckets": 2, "min_window_length": 5, "grace_period": 10, "direction": "both"},
    "state": {
        "drift_detected": False,
        "totals": [[0.4, 1.35], [-0.69], [-1.25], [4.87], [-0.48999999999999955, 1.28], [1.69], [-12.020000000000001], [31.49, -5.9300000000000015]],
        "variances": [
            [0.0, 0.0], [0.11044999999999999], [1.817675], [3.4504875], [13.66389375, 9.921199999999999],
            [29.661446875000003], [65.30329375], [124.55366796875002, 145.12517421874998],
        ],
        "width": 400,
        "total": 20.699999999999974,
        "variance": 408.5977749999995,
        "tick": 400,
        "mean_before": None,
        "mean_after": None,
    },
}


def _adwin_saved_stream() -> tuple[list[float], list[float]]:
    rng = random.Random(11)
    before = [round(rng.gauss(0.0, 1.0), 2) for _ in range(400)]
    return before, [round(rng.gauss(1.5, 1.0), 2) for _ in range(600)]


def test_adwin_restores_snapshots_of_the_pure_python_version() -> None:
    before, after = _adwin_saved_stream()
    restored = Detector.restore(json.loads(json.dumps(PURE_PYTHON_ADWIN_SNAPSHOT)))
    assert restored.snapshot() == PURE_PYTHON_ADWIN_SNAPSHOT
    fresh = ADWIN(**PURE_PYTHON_ADWIN_SNAPSHOT["params"])
    fresh.update_many(before)
    assert fresh.snapshot() == PURE_PYTHON_ADWIN_SNAPSHOT  # same buckets, bit for bit
    # What the pure-Python version reported when fed `after` from that state.
    assert restored.update_many(after) == [
        (15, {"estimation": 0.4854687499999996, "width": 64.0, "variance": 1.3537935302734299,
              "mean_before": 0.04171874999999998, "mean_after": 0.9462499999999993}),
    ]
    assert restored.snapshot()["state"]["width"] == 584
    assert restored.snapshot()["state"]["variance"] == 580.5752381849319


def test_adwin_rejects_states_that_do_not_fit() -> None:
    for change in ({"totals": [[1.0]] * 65, "variances": [[0.0]] * 65}, {"totals": [[1.0], []], "variances": [[0.0], []]},
                   {"totals": [[1.0, 2.0, 3.0]], "variances": [[0.0, 0.0, 0.0]]}, {"variances": [[0.0]]}):
        snap = json.loads(json.dumps(PURE_PYTHON_ADWIN_SNAPSHOT))
        snap["state"].update(change)
        with pytest.raises(DetectorStateError):
            Detector.restore(snap)


def test_adwin_update_many_takes_arrays_and_keeps_the_state_of_a_drift_at_the_last_value() -> None:
    np = pytest.importorskip("numpy")
    values = step_stream(6, "adwin")
    expected = detections(ADWIN(), values)
    assert expected
    first = expected[0]
    # A batch that ends on the drift leaves it readable, as `update` does; the next batch resets.
    for as_array in (False, True):
        one, many = ADWIN(), ADWIN()
        for x in values[: first + 1]:
            one.update(x)
        head = values[: first + 1]
        fired = many.update_many(np.array(head) if as_array else head)
        assert [i for i, _ in fired] == [first] and many.drift_detected and one.drift_detected
        assert fired[0][1] == one.statistics()
        assert json.dumps(many.snapshot()) == json.dumps(one.snapshot())
        rest = values[first + 1 :]
        got = [first + 1 + i for i, _ in many.update_many(np.array(rest) if as_array else rest)]
        assert got == [first + 1 + i for i in detections(one, rest)] == expected[1:]
        assert json.dumps(many.snapshot()) == json.dumps(one.snapshot())
    # One array with every drift inside it: reported at their indices, the detector reset after each.
    many = ADWIN()
    assert [i for i, _ in many.update_many(np.array(values))] == expected
    assert many.drift_detected == (expected[-1] == len(values) - 1)


@pytest.mark.parametrize("seed", range(6))
def test_page_hinkley_batches_fire_where_rivers_page_hinkley_fires(seed: int) -> None:
    """The compiled update_many, fed batches of random sizes, against River's own update."""
    from services.drift.detectors.river_wrap import PageHinkley

    rng = random.Random(seed)
    values = [rng.gauss(0, 1) + (3 if i > 3000 else 0) - (4 if i > 6000 else 0) for i in range(9000)]
    ours, rivers = PageHinkley(threshold=20.0), river_drift.PageHinkley(threshold=20.0)
    fired, i = [], 0
    while i < len(values):
        k = rng.randrange(1, 300)
        fired += [i + j for j, _ in ours.update_many(values[i : i + k])]
        i += k
    expected = []
    for j, x in enumerate(values):
        rivers.update(x)
        if rivers.drift_detected:
            expected.append(j)
    assert fired == expected and len(expected) > 5
