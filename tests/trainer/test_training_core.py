"""The transport-free training core: one update as a function, on data in memory."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits

from services.common.tensors import InputSpec
from services.trainer.sample_set import SampleSet
from services.trainer.training import TrainingJob, train_candidate
from services.trainer.weights import load_state
from strategies.architecture import Architecture
from strategies.registry import get_strategy


def _digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


def test_the_core_imports_no_transport_client():
    """The GPU machine has no Kafka or Redis client: the core must not need one."""
    code = "import sys, services.trainer.training as t; print(sorted(m for m in ('confluent_kafka', 'redis', 'fastavro', 'faust') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_an_update_then_the_next_from_its_weights_and_state():
    x, y = _digits()
    arch = Architecture("strategies.models:make_tabular", {"input_dim": 64, "num_classes": 10})
    calls = []

    def run(strategy, fit):
        calls.append(type(strategy).__name__)
        return fit()

    first = SampleSet([f"a{i}" for i in range(600)], x[:600], y[:600])
    job = TrainingJob(arch, InputSpec((64,)), get_strategy("replay"), {"epochs": 5, "mem_size": 200}, first, holdout_fraction=0.2)
    one = train_candidate(job, run)
    assert len(calls) == 1, "the fit ran once, through the given runner"
    assert not one.state_restored and one.metrics["samples_train"] + one.metrics["samples_holdout"] == 600
    assert one.metrics["accuracy_new_holdout"] > one.metrics["base_accuracy_new_holdout"] + 0.3
    served = torch.jit.load(io.BytesIO(one.artifact))
    probs = served(torch.from_numpy(x[1000:1010]))
    torch.testing.assert_close(probs, torch.softmax(one.model(torch.from_numpy(x[1000:1010])), dim=1), atol=1e-5, rtol=0)

    second = SampleSet([f"b{i}" for i in range(400)], x[600:1000], y[600:1000])
    job2 = TrainingJob(arch, InputSpec((64,)), get_strategy("replay"), {"epochs": 5, "mem_size": 200}, second,
                       base_weights=load_state(one.weights), state=one.state)
    two = train_candidate(job2)
    assert two.state_restored and two.metrics["memory_size"] > 0, "the replay memory of the first update came back"
    assert two.metrics["base_accuracy_new_holdout"] > 0.5, "the second update started from the first one's weights"


def test_token_ids_stay_integers_through_the_core():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    ids = rng.integers(1, 50, (400, 8)) + 50 * y[:, None]  # each class has its own id range
    arch = Architecture("strategies.models:make_text", {"num_classes": 2, "input_shape": [8], "vocab_size": 100})
    samples = SampleSet([f"t{i}" for i in range(400)], ids.astype(np.int64), y.astype(np.int64))
    out = train_candidate(TrainingJob(arch, InputSpec((8,), "INT64"), get_strategy("naive"), {"epochs": 5}, samples))
    assert out.metrics["accuracy_new_holdout"] >= 0.9
    served = torch.jit.load(io.BytesIO(out.artifact))
    assert served(torch.from_numpy(ids[:4].astype(np.int64))).shape == (4, 2)
