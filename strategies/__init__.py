"""Model factory: continual-learning strategies (on Avalanche), drift streams, export.

>>> from strategies import get_strategy, DEFAULT_STRATEGY
>>> get_strategy(DEFAULT_STRATEGY).name
'replay'
"""

from strategies.base import CLStrategy, TrainingHyperparameters
from strategies.errors import (
    IncompatibleState,
    InvalidHyperparameters,
    InvalidTrainingData,
    StrategyError,
    UnknownStrategy,
    UnknownStream,
)
from strategies.export import export_torchscript
from strategies.models import make_mlp
from strategies.registry import (
    DEFAULT_STRATEGY,
    ENTRY_POINT_GROUP,
    ORACLE_STRATEGY,
    available,
    get_strategy,
    register,
)

__all__ = [
    "CLStrategy",
    "DEFAULT_STRATEGY",
    "ENTRY_POINT_GROUP",
    "IncompatibleState",
    "InvalidHyperparameters",
    "InvalidTrainingData",
    "ORACLE_STRATEGY",
    "StrategyError",
    "TrainingHyperparameters",
    "UnknownStrategy",
    "UnknownStream",
    "available",
    "export_torchscript",
    "get_strategy",
    "make_mlp",
    "register",
]
