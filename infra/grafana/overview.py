"""The loop at a glance, per model: accuracy, drift, updates, versions, latency.

Reads the recording rules of ``infra/prometheus/rules`` wherever one exists, so a panel and the
alert on the same figure always agree.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from infra.grafana.kit import MODEL, VERSION, Grid, build, event_annotation, model_variables, query


def annotations() -> list:
    """Drift, update, deploy and rollback events as markers on every time series."""
    return [
        event_annotation("Drift detected", "modelci_drift_detections_total", "orange"),
        event_annotation("Update finished", "modelci_trainer_updates_finished_total", "blue"),
        event_annotation("Deployed", "modelci_deployer_deployments_total", "green"),
        event_annotation("Rolled back", "modelci_deployer_rollbacks_total", "red"),
    ]


def overview() -> dashboard.Dashboard:
    g = Grid()
    g.row("Versions and accuracy")
    g.stat("Serving version", f"modelci:serving_version{{{MODEL}}}", "{{model}}",
           description="Version the deployer switched Triton to.")
    g.stat("Deployments (1h)", f"sum(modelci:deployments:increase1h{{{MODEL}}})",
           description="Versions switched to serving in the last hour.")
    g.stat("Rollbacks (15m)", f"sum(modelci:rollbacks:increase15m{{{MODEL}}})",
           description="Rollbacks in the last 15 minutes; the ModelCIRollback alert fires on any.")
    g.stat("Triton p99 latency", f"max(modelci:triton_latency_seconds:p99{{{MODEL}}})", unit="s",
           description="Worst p99 of Triton calls made by the inference service, over the selected models.")
    g.series("Live accuracy", [query(f"modelci:live_accuracy{{{MODEL}}}", "{{model}}")],
             unit="percentunit", min_val=0, max_val=1,
             description="1 - the error rate the drift service's ADWIN detectors estimate on joined feedback "
                         "(per model; read it with the version panel beside it).")
    g.series("Predictions by version", [query(f"modelci:predictions:rate1m{{{MODEL}, {VERSION}}}", "{{model}} v{{version}}")],
             unit="reqps", description="Traffic moves from one version to the next at each deployment.")
    g.row("Drift and updates")
    g.series("Drift events and update requests (1h)", [
        query(f"modelci:drift_events:increase1h{{{MODEL}}}", "{{model}} drift: {{detector}}"),
        query(f"modelci:update_requests:increase1h{{{MODEL}}}", "{{model}} update: {{outcome}}"),
    ], description="Drifts detected per detector, and what the drift service decided (requested, or suppressed).")
    g.series("Updates (1h)", [
        query(f"modelci:updates_started:increase1h{{{MODEL}}}", "{{model}} started"),
        query(f"modelci:updates_finished:increase1h{{{MODEL}}}", "{{model}} finished"),
    ], description="Update requests the trainer took up and finished.")
    g.series("Update duration (mean)", [query(f"modelci:update_duration_seconds:mean{{{MODEL}}}", "{{model}}")], unit="s",
             description="Wall time of an update: samples, training, evaluation, export.")
    g.series("Candidate accuracy", [query(f"modelci:candidate_accuracy{{{MODEL}}}", "{{model}} {{metric}}")],
             unit="percentunit", min_val=0, max_val=1,
             description="Last candidate and its base on the held-back new samples and on the memory.")
    g.row("Serving")
    g.series("Triton p99 latency", [query(f"modelci:triton_latency_seconds:p99{{{MODEL}}}", "{{model}}")], unit="s",
             description="99th percentile of Triton calls (inference service's client-side histogram).")
    g.series("Triton p99 latency by version", [
        query(f"modelci:triton_latency_seconds:p99_by_version{{{MODEL}, {VERSION}}}", "{{model}} v{{version}}")
    ], unit="s", description="99th percentile of Triton calls by the version that answered: compare a new version with "
                             "the one it replaced (versions Triton has loaded only).")
    g.series("Triton requests and failures", [
        query(f"modelci:triton_requests:rate1m{{{MODEL}, {VERSION}}}", "{{model}} v{{version}} ok"),
        query(f"modelci:triton_failures:rate1m{{{MODEL}, {VERSION}}}", "{{model}} v{{version}} failed"),
    ], unit="reqps", description="Successful and failed inference requests Triton counted, per version.")
    return build("ModelCI-e overview", "modelci-overview",
                 "The continual-learning loop per model: accuracy, drift, updates, versions, latency.",
                 g, model_variables(), annotations())
