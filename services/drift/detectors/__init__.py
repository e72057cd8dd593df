"""Drift detectors: one interface (`Detector`), a registry filled by ``@register``.

Importing this package registers every detector the service ships.
"""

from services.drift.detectors import adwin, river_wrap  # noqa: F401  (registration)
from services.drift.detectors.base import Detector, Param, build, get, register, registered

__all__ = ["Detector", "Param", "build", "get", "register", "registered"]
