"""Errors of the drift service, under the project's one error root."""

from __future__ import annotations

from services.common.errors import ConfigurationError


class DetectorConfigError(ConfigurationError):
    """A detector configuration that cannot work: unknown kind, bad or unknown parameter."""

    reason = "detector_config"


class DetectorStateError(ConfigurationError):
    """A saved detector state that does not fit the detector it is restored into."""

    reason = "detector_state"
