"""Which detectors watch which signal of a model, and which of them may ask for an update.

A model's detector set is a list of `DetectorSpec`. It comes, first match wins, from the Redis
key ``<key_prefix>drift:config:<model>`` (JSON, so the console can change it at run time),
then ``MODELCI_DRIFT_MODEL_DETECTORS`` (JSON object model -> list), then
``MODELCI_DRIFT_DETECTORS`` (JSON list), then `DEFAULT_DETECTORS`.

Signals:
- ``error``: 1.0 when a joined sample's prediction was wrong, else 0.0 (needs feedback);
- ``confidence``: the predicted class's probability, on every prediction (label-free);
- ``input``: the mean of the prediction's input features, a cheap summary of the inputs that
  moves when the input distribution shifts (label-free).

`SHIPPED` holds the named configurations this service offers and `modelci bench detection`
measures; their figures are in ``docs/drift.md``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.drift.detectors import get as get_detector
from services.drift.errors import DetectorConfigError

Signal = Literal["error", "confidence", "input"]
SIGNALS: tuple[str, ...] = ("error", "confidence", "input")


class DetectorSpec(BaseModel):
    """One detector of one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    """Name in drift events and metric labels, unique within the model (e.g. ``error-adwin``)."""
    kind: str
    """Registered detector kind (``adwin``, ``page_hinkley``, ``ddm``, ``eddm``, ``hddm_a``)."""
    signal: Signal
    """Signal it watches: ``error``, ``confidence`` or ``input``."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Constructor parameters of the detector (validated against the kind)."""
    trigger: bool = False
    """Whether a drift it reports may lead to an update request (otherwise only a drift event)."""

    @model_validator(mode="after")
    def _check(self) -> "DetectorSpec":
        cls = get_detector(self.kind)
        cls.validate_params(self.params)
        if cls.binary and self.signal != "error":
            raise DetectorConfigError(f"{self.name}: {self.kind} needs a 0/1 signal (error), not {self.signal}")
        return self

    def key(self) -> str:
        """Identity of the configuration: a restored state is kept only if this is unchanged."""
        return json.dumps([self.kind, self.signal, self.params], sort_keys=True)


def _spec(name: str, kind: str, signal: str, trigger: bool = False, **params: Any) -> DetectorSpec:
    return DetectorSpec(name=name, kind=kind, signal=signal, params=params, trigger=trigger)


SHIPPED: dict[str, DetectorSpec] = {
    spec.name: spec
    for spec in (
        # Error stream: ADWIN reporting only rises of the error rate. delta=0.01 was tuned with
        # `modelci bench detection` (docs/drift.md): it meets the delay and false-alarm goals.
        _spec("error-adwin", "adwin", "error", True, delta=0.01, direction="up"),
        _spec("error-adwin-strict", "adwin", "error", True, delta=0.002, direction="up"),
        _spec("error-hddm-a", "hddm_a", "error", True),
        _spec("error-ddm", "ddm", "error", True),
        _spec("error-eddm", "eddm", "error", True),
        _spec("error-page-hinkley", "page_hinkley", "error", True, mode="up", delta=0.025, threshold=25.0),
        # Label-free signals, on every prediction; informative by default (trigger=False).
        # Confidence lies in [0, 1], so Page-Hinkley's absolute threshold carries over between
        # models; the inputs' scale is the model's own, so they get the scale-free ADWIN.
        _spec("confidence-page-hinkley", "page_hinkley", "confidence", False, delta=0.015, threshold=22.0),
        # clock=128: a test of the window every 128 predictions instead of 32 (4x cheaper per
        # event; ~50 events more delay, see docs/drift.md).
        _spec("confidence-adwin", "adwin", "confidence", False, delta=0.02, clock=128),
        _spec("input-adwin", "adwin", "input", False, delta=0.002, clock=128),
    )
}

DEFAULT_TRIGGER = "error-adwin"
DEFAULT_DETECTORS: tuple[DetectorSpec, ...] = (
    SHIPPED["error-adwin"],
    SHIPPED["confidence-page-hinkley"],
    SHIPPED["input-adwin"],
)


def parse_specs(data: Any) -> list[DetectorSpec]:
    """A model's detector list from JSON text or already-parsed data; names must be unique.

    Entries may be full specs or the name of a shipped configuration (``"error-adwin"``).
    """
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise DetectorConfigError(f"detector configuration is not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise DetectorConfigError("detector configuration must be a list")
    specs: list[DetectorSpec] = []
    for item in data:
        if isinstance(item, str):
            if item not in SHIPPED:
                raise DetectorConfigError(f"unknown shipped detector {item!r}; known: {sorted(SHIPPED)}")
            specs.append(SHIPPED[item])
        elif isinstance(item, DetectorSpec):
            specs.append(item)
        else:
            try:
                specs.append(DetectorSpec.model_validate(item))
            except DetectorConfigError:
                raise
            except ValueError as exc:
                raise DetectorConfigError(f"bad detector spec {item!r}: {exc}") from exc
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise DetectorConfigError(f"detector names repeat: {names}")
    return specs


class DetectorList(BaseModel):
    """Wrapper so settings can validate a list of specs (or shipped names) from the environment."""

    specs: list[DetectorSpec]

    @field_validator("specs", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> list[DetectorSpec]:
        return parse_specs(value)
