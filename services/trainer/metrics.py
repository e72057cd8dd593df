"""The trainer's Prometheus metrics, on its own registry (labels: model and bounded reasons)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class TrainerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.updates_started = Counter("modelci_trainer_updates_started", "Update requests taken up.", ["model"], registry=r)
        self.updates_finished = Counter(
            "modelci_trainer_updates_finished", "Updates that produced a candidate.", ["model"], registry=r
        )
        self.updates_failed = Counter(
            "modelci_trainer_updates_failed", "Updates that ended in a failed candidate.", ["model", "reason"], registry=r
        )
        self.duplicates = Counter(
            "modelci_trainer_duplicate_requests", "Redelivered requests skipped (already done).", registry=r
        )
        self.dead_letters = Counter(
            "modelci_trainer_dead_letters", "Update requests sent to the DLQ.", ["reason"], registry=r
        )
        self.duration = Histogram(
            "modelci_trainer_update_seconds",
            "Wall time of one update (samples, training, evaluation, export).",
            ["model"],
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.samples_used = Counter("modelci_trainer_samples_used", "New labeled samples trained on.", ["model"], registry=r)
        self.samples_skipped = Counter(
            "modelci_trainer_samples_skipped", "Samples skipped (NaN, wrong shape, bad label, duplicate).", ["model", "why"], registry=r
        )
        self.accuracy = Gauge(
            "modelci_trainer_candidate_accuracy",
            "Accuracy of the last candidate (and its base) on the held-back new samples and on the memory.",
            ["model", "metric"],
            registry=r,
        )
        self.pending = Gauge("modelci_trainer_pending_updates", "Update requests waiting in cl.updates (consumer lag).", registry=r)
        self.lock_waits = Counter(
            "modelci_trainer_lock_waits", "Updates that had to wait for another trainer's lock on the model.", ["model"], registry=r
        )
        self.lock_wait_seconds = Counter(
            "modelci_trainer_lock_wait_seconds", "Time spent waiting for model locks.", ["model"], registry=r
        )
        self.paused_seconds = Counter(
            "modelci_trainer_paused_seconds", "Time training paused because serving was busy.", registry=r
        )
        self.serving_busy = Gauge("modelci_trainer_serving_busy", "1 while the admission rule sees Triton busy.", registry=r)
        self.device_info = Gauge("modelci_trainer_device", "Device the trainer uses (label), value 1.", ["device"], registry=r)
