"""Prometheus metrics of the drift service, on its own registry (labels stay bounded)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class DriftMetrics:
    """Every metric the drift service exports; created once per process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records_in = Counter(
            "modelci_drift_records_in", "Kafka records consumed, by topic and outcome (ok, replay, dlq).", ["topic", "outcome"], registry=r
        )
        self.events_in = Counter(
            "modelci_drift_events_in", "Events (batch items) consumed, by topic and outcome (ok, replay).", ["topic", "outcome"], registry=r
        )
        self.events_out = Counter(
            "modelci_drift_events_out", "Events published, by topic and outcome (delivered, failed).", ["topic", "outcome"], registry=r
        )
        self.records_out = Counter(
            "modelci_drift_records_out", "Kafka records published, by topic and outcome (delivered, failed).", ["topic", "outcome"], registry=r
        )
        self.dlq = Counter("modelci_drift_dlq", "Records sent to a dead-letter topic, by source topic and reason.", ["topic", "reason"], registry=r)
        self.join = Counter(
            "modelci_drift_join",
            "Join outcomes handled by this process: hit (joined), miss (feedback parked before its prediction), "
            "expiry (parked feedback never matched), duplicate_feedback, duplicate_prediction.",
            ["model", "outcome"],
            registry=r,
        )
        self.join_total = Gauge(
            "modelci_drift_join_durable", "Durable join counters of the model kept in Redis (all workers, all restarts).", ["model", "outcome"], registry=r
        )
        self.detector_value = Gauge(
            "modelci_drift_detector_value", "Main estimate of a detector (error rate, mean confidence, mean input).", ["model", "detector", "signal"], registry=r
        )
        self.detector_observations = Gauge(
            "modelci_drift_detector_observations", "Observations a detector has seen (durable).", ["model", "detector", "signal"], registry=r
        )
        self.drifts = Counter("modelci_drift_detections", "Drifts detected.", ["model", "detector", "signal"], registry=r)
        self.update_failures = Gauge(
            "modelci_drift_update_failures",
            "Consecutive updates of a model that ended in a failed candidate (0 after a succeeded one).",
            ["model"],
            registry=r,
        )
        self.update_backoff_seconds = Gauge(
            "modelci_drift_update_backoff_seconds",
            "Wait imposed after the model's last failed update before the next request (doubles per failure).",
            ["model"],
            registry=r,
        )
        self.update_requests = Counter(
            "modelci_drift_update_requests",
            "Update decisions after a triggering drift: requested, in_flight, backoff (after failed updates) or cooldown (suppressed).",
            ["model", "outcome"],
            registry=r,
        )
        self.inflight_cleared = Counter("modelci_drift_inflight_cleared", "In-flight update markers cleared by a candidate.", ["model"], registry=r)
        self.lag = Gauge("modelci_drift_consumer_lag", "Records behind the partition's end, by topic and partition.", ["topic", "partition"], registry=r)
        self.batch_events = Histogram(
            "modelci_drift_batch_events",
            "Events per consumed Kafka record.",
            ["topic"],
            buckets=(1, 10, 50, 100, 200, 500, 1000, 5000),
            registry=r,
        )
        self.take_records = Histogram(
            "modelci_drift_take_records",
            "Kafka records handled per agent step.",
            ["topic"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.step_seconds = Histogram(
            "modelci_drift_step_seconds",
            "Time to handle one agent step (decode, join, detectors, publish), by topic.",
            ["topic"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.read_by_serde = Counter(
            "modelci_drift_read_by_serde_total",
            "Input records the compiled reader left to the serde (older schema, unusual encoding), by event.",
            ["event"],
            registry=r,
        )
        self.feedback_held = Counter(
            "modelci_drift_feedback_held_seconds_total",
            "Seconds feedback steps waited for the predictions agent to reach their time (alignment).",
            registry=r,
        )
        self.first_record_time = Gauge(
            "modelci_drift_first_record_timestamp_seconds", "Unix time this process handled its first record.", registry=r
        )
        self.last_record_time = Gauge(
            "modelci_drift_last_record_timestamp_seconds", "Unix time this process last handled a record, by topic.", ["topic"], registry=r
        )
        self.models = Gauge("modelci_drift_models", "Models whose state this process holds.", registry=r)
        self.assigned = Gauge("modelci_drift_assigned_partitions", "Partitions assigned to this worker (all its topics).", registry=r)
