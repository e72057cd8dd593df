"""The deployer's Prometheus metrics, on its own registry; labels are bounded (model, reason)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class DeployerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.candidates = Counter("modelci_deployer_candidates_total", "Candidates received.", ["model", "outcome"], registry=r)
        self.validated = Counter("modelci_deployer_validated_total", "Candidates that passed the gate.", ["model"], registry=r)
        self.rejected = Counter("modelci_deployer_rejected_total", "Candidates rejected, by reason.", ["model", "reason"], registry=r)
        self.deployments = Counter("modelci_deployer_deployments_total", "Versions switched to serving.", ["model"], registry=r)
        self.rollbacks = Counter("modelci_deployer_rollbacks_total", "Rollbacks, by trigger.", ["model", "trigger"], registry=r)
        self.load_seconds = Histogram(
            "modelci_deployer_load_seconds",
            "Time of Triton load_model for a publication or rollback.",
            ["model"],
            buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.switch_seconds = Histogram(
            "modelci_deployer_switch_seconds",
            "Candidate accepted to serving (publication, load and confirmation).",
            ["model"],
            buckets=(0.5, 1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.serving_version = Gauge("modelci_deployer_serving_version", "Version serving per model.", ["model"], registry=r)
        self.dead_letters = Counter("modelci_deployer_dead_letters_total", "Records sent to a DLQ.", ["topic"], registry=r)
