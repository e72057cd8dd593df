"""Detector configuration: shipped specs, parsing, per-model settings."""

from __future__ import annotations

import pytest

from services.drift.config import DEFAULT_DETECTORS, SHIPPED, DetectorSpec, parse_specs
from services.drift.errors import DetectorConfigError
from services.drift.settings import DriftSettings


def test_default_has_one_trigger_on_the_error_stream() -> None:
    triggers = [s for s in DEFAULT_DETECTORS if s.trigger]
    assert [(s.name, s.signal) for s in triggers] == [("error-adwin", "error")]
    assert {s.signal for s in DEFAULT_DETECTORS} == {"error", "confidence", "input"}


def test_parse_names_and_specs() -> None:
    specs = parse_specs('["error-ddm", {"name": "c", "kind": "adwin", "signal": "confidence", "params": {"delta": 0.001}}]')
    assert specs[0] == SHIPPED["error-ddm"]
    assert specs[1].params == {"delta": 0.001} and not specs[1].trigger


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        '{"a": 1}',
        '["no-such-shipped"]',
        '[{"name": "x", "kind": "nope", "signal": "error"}]',
        '[{"name": "x", "kind": "ddm", "signal": "confidence"}]',
        '[{"name": "x", "kind": "adwin", "signal": "error", "params": {"delta": 2}}]',
        '["error-adwin", "error-adwin"]',
    ],
)
def test_parse_rejects(bad: str) -> None:
    with pytest.raises((DetectorConfigError, ValueError)):
        parse_specs(bad)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCI_DRIFT_DETECTORS", '["error-hddm-a"]')
    monkeypatch.setenv("MODELCI_DRIFT_MODEL_DETECTORS", '{"m": ["error-adwin", "input-adwin"]}')
    monkeypatch.setenv("MODELCI_DRIFT_MIN_SAMPLES", "50")
    monkeypatch.setenv("MODELCI_KAFKA_TOPIC_PREFIX", "p.")
    settings = DriftSettings()
    assert [s.name for s in settings.detectors] == ["error-hddm-a"]
    assert [s.name for s in settings.model_detectors["m"]] == ["error-adwin", "input-adwin"]
    assert settings.min_samples == 50 and settings.group_id() == "p.modelci-drift"


def test_spec_key_changes_with_parameters() -> None:
    a = DetectorSpec(name="e", kind="adwin", signal="error", params={"delta": 0.01})
    b = DetectorSpec(name="e", kind="adwin", signal="error", params={"delta": 0.02})
    assert a.key() != b.key()
