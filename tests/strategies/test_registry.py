"""Finding strategies: built-in names, dotted paths, installed entry points, unknown names."""

from __future__ import annotations

import sys

import pytest

from strategies import (
    DEFAULT_STRATEGY,
    ENTRY_POINT_GROUP,
    ORACLE_STRATEGY,
    CLStrategy,
    UnknownStrategy,
    available,
    get_strategy,
    make_mlp,
    register,
)
from tests.strategies.conftest import FAST
from tests.strategies.plugin_example import ClassBalancedReplay

EXAMPLE = "tests.strategies.plugin_example:ClassBalancedReplay"


def test_default_and_oracle_are_registered():
    assert DEFAULT_STRATEGY in available() and ORACLE_STRATEGY in available()


def test_unknown_name_raises_unknown_strategy_with_the_choices():
    with pytest.raises(UnknownStrategy) as caught:
        get_strategy("no-such-strategy")
    assert caught.value.reason == "unknown_strategy"
    assert not caught.value.retryable
    assert "replay" in caught.value.available


@pytest.mark.parametrize(
    "path",
    [
        "tests.strategies.no_such_module:Thing",
        "tests.strategies.plugin_example:NoSuchClass",
        "tests.strategies.plugin_example:NotAStrategy",
    ],
)
def test_dotted_paths_that_do_not_lead_to_a_strategy_are_unknown(path):
    with pytest.raises(UnknownStrategy):
        get_strategy(path)


def test_custom_strategy_by_dotted_path_trains_and_keeps_its_memory(tiny_stream):
    cls = get_strategy(EXAMPLE)
    assert cls is ClassBalancedReplay
    strategy = cls(make_mlp(64, 10, hidden=32), {**FAST, "mem_size": 50})
    for exp in tiny_stream.experiences[:2]:
        strategy.train(exp.x_train, exp.y_train)
    x, y = strategy.memory()
    assert len(y) == 50 and len(set(y.tolist())) == 10
    restored = cls(make_mlp(64, 10, hidden=32), {**FAST, "mem_size": 50})
    restored.load_state_dict(strategy.state_dict())
    assert all(a.equal(b) for a, b in zip(strategy.memory(), restored.memory()))


def test_custom_strategy_by_entry_point(tmp_path, monkeypatch):
    # A distribution on sys.path that declares the plug-in, as `pip install` would leave it.
    dist = tmp_path / "modelci_example_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: modelci-example-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbalanced-replay = {EXAMPLE}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "balanced-replay" in available()
    assert get_strategy("balanced-replay") is ClassBalancedReplay


def test_register_refuses_a_taken_name_and_non_strategies():
    with pytest.raises(ValueError):

        @register
        class Impostor(CLStrategy):
            name = "replay"

    with pytest.raises(TypeError):
        register(object)  # type: ignore[arg-type]
    assert "tests.strategies.plugin_example" in sys.modules
