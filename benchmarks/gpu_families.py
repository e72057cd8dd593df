"""The GPU check's ``families`` part: one update of each family's model, on the GPU and on the CPU.

``modelci bench families`` needs the whole stack (Kafka, Redis, Triton, the services), which the
lent GPU machine cannot hold; this part measures there what depends on the device: the update
each family's model gets in that benchmark, through the trainer's own core
(`services.trainer.training.train_candidate`, wrapped as the trainer service wraps it), on
``cuda`` and on ``cpu`` (the trainer's one torch thread) in the same process.

Per family (`benchmarks.families.FAMILIES`: the same architecture, factory arguments and
registered hyperparameters): version 1 is trained from the factory's initialisation on the
stream's first concept (naive, ``--families-v1-epochs``), then the update runs the family's
registered strategy on what the loop's first update reads (``--families-old`` samples of the first
concept and ``--families-new`` of the second; 2,400 and 800 is the demo's 12 s warm-up and the
drift's first seconds at 250 req/s with a fifth withheld). Accuracy is scored on each concept's
test images, split by content, never trained on. The exported candidate is then served as the
TorchScript backend serves it (``torch.jit.load`` on the device) at batch 1, requests back to
back: model latency only, no queueing or transport.
"""

from __future__ import annotations

import io
import time
import traceback
import warnings
from typing import Any

import numpy as np
import torch


def _served_latency(artifact: bytes, spec, device: torch.device, n: int) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        served = torch.jit.load(io.BytesIO(artifact), map_location=device).eval()
    x = torch.from_numpy(spec.synthetic(1))  # the declared datatype, as requests reach Triton
    times = []
    with torch.inference_mode():
        for i in range(n + 20):
            t0 = time.perf_counter()
            out = served(x.to(device))
            out.cpu()
            if i >= 20:  # the first calls compile and warm the allocator
                times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def part_families(args, device: torch.device, rep, wrap) -> dict[str, Any]:
    """``wrap(device)`` gives the fit runner the trainer service uses (`gpu_check.trainer_runner`)."""
    from benchmarks.families import FAMILIES
    from services.common.tensors import InputSpec
    from services.demo.config import DEMO_STRATEGY
    from services.demo.model import demo_architecture, stream_datatype
    from services.trainer.evaluation import accuracy
    from services.trainer.sample_set import SampleSet
    from services.trainer.training import TrainingJob, train_candidate
    from services.trainer.weights import load_state
    from strategies.registry import get_strategy
    from strategies.streams import get_stream

    res: dict[str, Any] = {"old_samples": args.families_old, "new_samples": args.families_new, "v1_epochs": args.families_v1_epochs, "rows": []}
    rep.doc["families"] = res
    devices = [device] if device.type == "cpu" else [device, torch.device("cpu")]
    for family in FAMILIES:
        row: dict[str, Any] = {"name": family.name, "family": family.family}
        res["rows"].append(row)
        try:
            stream = get_stream(family.stream, args.seed, size=max(args.families_old, args.families_new))
            arch = demo_architecture(stream, family.architecture, family.architecture_kwargs)
            spec = InputSpec(tuple(stream.input_shape), stream_datatype(stream))
            hp = dict(family.hyperparameters or {})  # none: the strategy's defaults, as the loop registers it
            epochs = get_strategy(DEMO_STRATEGY).validate_hyperparameters(hp).epochs
            old, new = stream.experiences[0], stream.experiences[1]
            v1_samples = SampleSet([f"v1-{i}" for i in range(args.families_old)], old.x_train[: args.families_old].numpy(),
                                   old.y_train[: args.families_old].numpy())
            x = np.concatenate([old.x_train[: args.families_old].numpy(), new.x_train[: args.families_new].numpy()])
            y = np.concatenate([old.y_train[: args.families_old].numpy(), new.y_train[: args.families_new].numpy()])
            update_samples = SampleSet([f"u-{i}" for i in range(len(y))], x, y)
            tests = [stream.test_set(0), stream.test_set(1)]
            row.update({"architecture": arch.factory, "kwargs": {k: v for k, v in arch.kwargs.items() if k != "num_classes"},
                        "strategy": DEMO_STRATEGY, "hyperparameters": hp})
            for dev in devices:
                torch.manual_seed(args.seed)
                v1 = train_candidate(TrainingJob(arch, spec, get_strategy("naive"), {"epochs": args.families_v1_epochs, "lr": 3e-3},
                                                 v1_samples, seed=args.seed, device=dev), wrap(dev))
                update = train_candidate(TrainingJob(arch, spec, get_strategy(DEMO_STRATEGY), hp, update_samples,
                                                     base_weights=load_state(v1.weights), seed=args.seed, device=dev), wrap(dev))
                row[dev.type] = {
                    "v1_fit_seconds": v1.metrics["fit_seconds"],
                    "update_fit_seconds": update.metrics["fit_seconds"],
                    "update_export_seconds": update.metrics["export_seconds"],
                    "samples_per_second": round(update.metrics["samples_train"] * epochs / max(update.metrics["fit_seconds"], 1e-9), 1),
                    "v1_accuracy": [accuracy(v1.model, xt.numpy(), yt.numpy(), torch.device("cpu")) for xt, yt in tests],
                    "updated_accuracy": [accuracy(update.model, xt.numpy(), yt.numpy(), torch.device("cpu")) for xt, yt in tests],
                    "served_batch1": _served_latency(update.artifact, spec, dev, args.families_requests),
                }
                rep.save()
            if "cuda" in row and "cpu" in row:
                row["cpu_over_cuda_update"] = round(row["cpu"]["update_fit_seconds"] / max(row["cuda"]["update_fit_seconds"], 1e-9), 2)
        except Exception as exc:  # one family's failure leaves the others measured
            row["error"] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
        rep.save()
    return res
