"""The inference service's Prometheus metrics, on a registry of its own.

Labels stay bounded: topic, outcome, reason, kind, and model only where the model is known to
Triton (never a model name straight from a request, never a request id). ``version`` is always
the version Triton says answered, never the version a request asked for, and only the
`VERSIONS_KEPT` per model that answered last keep their series (so its values stay within what
Triton has loaded); a call that failed has no answering version and gets ``version=""``.
"""

from __future__ import annotations

import json
import threading

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_log = structlog.get_logger("modelci.inference.metrics")

_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

VERSIONS_KEPT = 4
"""Answering versions per model whose series this process keeps; beyond that, the series of the
version that answered least recently are removed. More than Triton has loaded at once under the
deployer (one, two during a switch), so a live version keeps its series, while a process that lives
through many updates does not keep one series per version it ever served."""


class InferenceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_in = Counter(
            "modelci_inference_events_in_total",
            "Records consumed, by topic and outcome (ok, dead_letter).",
            ["topic", "outcome"],
            registry=r,
        )
        self.events_out = Counter(
            "modelci_inference_events_out_total",
            "Records published, by topic and broker outcome (delivered, failed).",
            ["topic", "outcome"],
            registry=r,
        )
        self.predictions = Counter(
            "modelci_inference_predictions_total",
            "Predictions acknowledged by the broker, by model and the version that answered.",
            ["model", "version"],
            registry=r,
        )
        self.micro_batch_size = Histogram(
            "modelci_inference_micro_batch_size",
            "Requests per micro-batch taken from Kafka.",
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.triton_batch_size = Histogram(
            "modelci_inference_triton_batch_size",
            "Requests per successful Triton call, by model.",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.triton_latency = Histogram(
            "modelci_inference_triton_latency_seconds",
            "Duration of Triton inference calls, by model, the version that answered (loaded versions only; "
            "empty when the call failed) and outcome (ok, unavailable, rejected, missing).",
            ["model", "version", "outcome"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.request_latency = Histogram(
            "modelci_inference_request_latency_seconds",
            "From a request's sent_at to its prediction being published, by model and the version that "
            "answered (loaded versions only).",
            ["model", "version"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "modelci_inference_dead_letters_total",
            "Requests sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.retries = Counter(
            "modelci_inference_triton_retries_total",
            "Waits before retrying Triton, by kind (unavailable, model_not_ready, model_missing, internal).",
            ["kind"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "modelci_inference_consumer_lag",
            "Records between the committed offset and the end of the partition (librdkafka statistics).",
            ["topic", "partition"],
            registry=r,
        )
        self.commits = Counter(
            "modelci_inference_commits_total",
            "Offset commits, by outcome (ok, failed).",
            ["outcome"],
            registry=r,
        )
        self._lock = threading.Lock()
        self._versions: dict[str, dict[str, None]] = {}  # model -> answering versions, least recent first

    def version_label(self, model: str, version: int) -> str:
        """The ``version`` label of a version Triton says answered for ``model``.

        Only answering versions become labels (never one a request asked for), and only the
        `VERSIONS_KEPT` that answered most recently keep their series, so the label's values stay
        within what Triton has loaded. A removed version that answers again starts from zero,
        which Prometheus's ``rate()`` reads as a counter reset.
        """
        label = str(version)
        with self._lock:
            seen = self._versions.setdefault(model, {})
            seen.pop(label, None)
            seen[label] = None
            dropped = list(seen)[:-VERSIONS_KEPT]
            for old in dropped:
                del seen[old]
        for old in dropped:
            for metric, labels in ((self.triton_latency, (model, old, "ok")), (self.request_latency, (model, old)),
                                   (self.predictions, (model, old))):
                try:
                    metric.remove(*labels)
                except KeyError:  # never observed under that metric
                    pass
        return label

    def record_statistics(self, stats_json: str) -> None:
        """librdkafka ``stats_cb``: sets the lag gauge of every assigned partition."""
        try:
            stats = json.loads(stats_json)
        except ValueError:
            _log.warning("bad_statistics", size=len(stats_json))
            return
        for topic, tstats in stats.get("topics", {}).items():
            for partition, pstats in tstats.get("partitions", {}).items():
                if partition == "-1":  # librdkafka's internal unassigned-partition entry
                    continue
                lag = pstats.get("consumer_lag", -1)  # from the committed offset (we commit explicitly)
                if lag is not None and lag >= 0:
                    self.consumer_lag.labels(topic, partition).set(lag)
