"""One dashboard per service: what its own /metrics say about its health and throughput.

Metric names are the services' own (``services/<name>/metrics.py``); the list this project relies
on is checked against the services' source by ``tests/observability/test_metric_names.py``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from infra.grafana.kit import MODEL, NOT_STAGING, VERSION, Grid, build, event_annotation, model_variables, query

UP = 'up{{service="{0}"}}'


def _health(g: Grid, service: str) -> None:
    g.row("Health")
    g.stat("Targets up", f"sum({UP.format(service)})", description=f"Scraped {service} replicas answering /metrics.")
    g.stat("Targets down", f"count({UP.format(service)} == 0) or sum({UP.format(service)}) * 0",
           description="Replicas Prometheus cannot scrape (the ModelCIServiceDown alert fires after 1 minute).")


def inference() -> dashboard.Dashboard:
    g = Grid()
    _health(g, "inference")
    g.row("Throughput")
    g.series("Records consumed by topic", [query('sum by (topic, outcome) (rate(modelci_inference_events_in_total[1m]))',
                                                 "{{topic}} {{outcome}}")], unit="cps")
    g.series("Records published by topic", [query('sum by (topic, outcome) (rate(modelci_inference_events_out_total[1m]))',
                                                  "{{topic}} {{outcome}}")], unit="cps")
    g.series("Predictions by version", [query(f"modelci:predictions:rate1m{{{MODEL}, {VERSION}}}", "{{model}} v{{version}}")],
             unit="reqps")
    g.series("Consumer lag", [query('sum by (topic, partition) (modelci_inference_consumer_lag)', "{{topic}}[{{partition}}]")],
             description="Records between the committed offset and the partition end (librdkafka statistics).")
    g.row("Latency and batching")
    g.series("Request latency p50 / p99", [
        query(f'histogram_quantile(0.5, sum by (model, le) (rate(modelci_inference_request_latency_seconds_bucket{{{MODEL}}}[1m])))',
              "{{model}} p50"),
        query(f"modelci:request_latency_seconds:p99{{{MODEL}}}", "{{model}} p99"),
    ], unit="s", description="From a request's sent_at to its prediction being published.")
    g.series("Request and Triton call latency p99 by version", [
        query(f"modelci:request_latency_seconds:p99_by_version{{{MODEL}, {VERSION}}}", "{{model}} v{{version}} request"),
        query(f"modelci:triton_latency_seconds:p99_by_version{{{MODEL}, {VERSION}}}", "{{model}} v{{version}} Triton call"),
    ], unit="s", description="By the version that answered: a new version's p99 beside the one it replaced.")
    g.series("Triton call latency p99 by outcome", [
        query(f'histogram_quantile(0.99, sum by (model, outcome, le) (rate(modelci_inference_triton_latency_seconds_bucket{{{MODEL}}}[1m])))',
              "{{model}} {{outcome}}"),
    ], unit="s")
    g.series("Batch sizes (mean)", [
        query('sum(rate(modelci_inference_micro_batch_size_sum[1m])) / sum(rate(modelci_inference_micro_batch_size_count[1m]))',
              "micro-batch from Kafka"),
        query(f'sum by (model) (rate(modelci_inference_triton_batch_size_sum{{{MODEL}}}[1m])) '
              f'/ sum by (model) (rate(modelci_inference_triton_batch_size_count{{{MODEL}}}[1m]))', "{{model}} Triton call"),
    ])
    g.series("Dead letters and commits", [
        query('sum by (reason) (modelci_inference_dead_letters_total)', "dead letters: {{reason}}"),
        query('sum by (outcome) (rate(modelci_inference_commits_total[1m]))', "commits/s {{outcome}}"),
    ], description="Requests dead-lettered since start, by reason (the ModelCIDeadLettersGrowing alert watches the increase).")
    return build("ModelCI-e inference", "modelci-inference", "The inference service: Kafka in and out, micro-batches, Triton calls.",
                 g, model_variables(), [event_annotation("Deployed", "modelci_deployer_deployments_total", "green")])


def drift() -> dashboard.Dashboard:
    g = Grid()
    _health(g, "drift")
    g.row("Stream")
    g.series("Events consumed by topic", [query("sum by (topic, outcome) (rate(modelci_drift_events_in_total[1m]))",
                                                "{{topic}} {{outcome}}")], unit="cps")
    g.series("Events published by topic", [query("sum by (topic, outcome) (rate(modelci_drift_events_out_total[1m]))",
                                                 "{{topic}} {{outcome}}")], unit="cps")
    g.series("Join outcomes", [query(f"modelci:join:rate1m{{{MODEL}}}", "{{model}} {{outcome}}")], unit="cps",
             description="hit: prediction and feedback joined; miss: feedback parked before its prediction; expiry: never matched.")
    g.series("Consumer lag", [query("sum by (topic, partition) (modelci_drift_consumer_lag)", "{{topic}}[{{partition}}]")])
    g.row("Detectors")
    g.series("Live accuracy", [query(f"modelci:live_accuracy{{{MODEL}}}", "{{model}}")], unit="percentunit", min_val=0, max_val=1)
    g.series("Error-rate estimates by detector", [
        query(f'max by (model, detector) (modelci_drift_detector_value{{{MODEL}, signal="error"}})', "{{model}} {{detector}}")
    ], unit="percentunit")
    g.series("Drifts and update decisions (1h)", [
        query(f"modelci:drift_events:increase1h{{{MODEL}}}", "{{model}} drift: {{detector}}"),
        query(f"modelci:update_requests:increase1h{{{MODEL}}}", "{{model}} update: {{outcome}}"),
    ])
    g.series("Step time p99", [
        query("histogram_quantile(0.99, sum by (topic, le) (rate(modelci_drift_step_seconds_bucket[1m])))", "{{topic}}")
    ], unit="s", description="Decode, join, detectors and publish for one agent step.")
    return build("ModelCI-e drift", "modelci-drift", "The drift service: join, detectors, drift events and update requests.",
                 g, model_variables(), [event_annotation("Drift detected", "modelci_drift_detections_total", "orange")])


def trainer() -> dashboard.Dashboard:
    g = Grid()
    _health(g, "trainer")
    g.row("Updates")
    g.series("Updates (1h)", [
        query(f"modelci:updates_started:increase1h{{{MODEL}}}", "{{model}} started"),
        query(f"modelci:updates_finished:increase1h{{{MODEL}}}", "{{model}} finished"),
    ])
    g.series("Update duration (mean)", [query(f"modelci:update_duration_seconds:mean{{{MODEL}}}", "{{model}}")], unit="s")
    g.series("Samples trained on", [query(f"sum by (model) (modelci_trainer_samples_used_total{{{MODEL}}})", "{{model}}")],
             description="New labeled samples used by updates since the trainer started.")
    g.series("Candidate accuracy", [query(f"modelci:candidate_accuracy{{{MODEL}}}", "{{model}} {{metric}}")],
             unit="percentunit", min_val=0, max_val=1)
    g.row("Interference with serving")
    g.series("Pending update requests", [query("sum(modelci_trainer_pending_updates)", "cl.updates lag")])
    g.series("Serving busy / paused", [
        query("max(modelci_trainer_serving_busy)", "serving busy (admission rule)"),
        query("sum(rate(modelci_trainer_paused_seconds_total[1m]))", "share of time paused"),
    ], description="1 while Triton looks busy; the share of wall time training waited for serving.")
    g.stat("Device", "max by (device) (modelci_trainer_device)", "{{device}}")
    return build("ModelCI-e trainer", "modelci-trainer", "The trainer: updates, durations, candidates and interference control.",
                 g, model_variables(), [event_annotation("Update finished", "modelci_trainer_updates_finished_total", "blue")])


def deployer() -> dashboard.Dashboard:
    g = Grid()
    _health(g, "deployer")
    g.row("Gate and rollout")
    g.series("Candidates by outcome", [query(f"sum by (model, outcome) (modelci_deployer_candidates_total{{{MODEL}}})",
                                             "{{model}} {{outcome}}")], description="Candidates received since start.")
    g.series("Deployments and rollbacks", [
        query(f"modelci:deployments:increase1h{{{MODEL}}}", "{{model}} deployed (1h)"),
        query(f"modelci:rollbacks:increase15m{{{MODEL}}}", "{{model}} rolled back (15m, {{trigger}})"),
    ])
    g.series("Serving version", [query(f"modelci:serving_version{{{MODEL}}}", "{{model}}")])
    g.series("Switch and load time (mean)", [
        query(f"modelci:switch_seconds:mean{{{MODEL}}}", "{{model}} switch"),
        query(f"sum by (model) (modelci_deployer_load_seconds_sum{{{MODEL}}}) / sum by (model) (modelci_deployer_load_seconds_count{{{MODEL}}})",
              "{{model}} load_model"),
    ], unit="s", description="Candidate accepted to serving, and Triton's load_model alone.")
    return build("ModelCI-e deployer", "modelci-deployer", "The deployer: validation gate, publications, rollbacks.",
                 g, model_variables(), [
                     event_annotation("Deployed", "modelci_deployer_deployments_total", "green"),
                     event_annotation("Rolled back", "modelci_deployer_rollbacks_total", "red"),
                 ])


def console() -> dashboard.Dashboard:
    g = Grid()
    _health(g, "console")
    g.row("Web and API")
    g.series("Requests by route", [query("sum by (route, status) (rate(modelci_console_requests_total[1m]))", "{{route}} {{status}}")],
             unit="reqps")
    g.series("Request latency p95", [
        query("histogram_quantile(0.95, sum by (route, le) (rate(modelci_console_request_seconds_bucket[1m])))", "{{route}}")
    ], unit="s")
    g.series("CL events read", [query("sum by (topic, outcome) (rate(modelci_console_events_total[1m]))", "{{topic}} {{outcome}}")],
             unit="cps")
    g.stat("Live clients", "sum(modelci_console_live_clients)", description="Open server-sent event streams.")
    return build("ModelCI-e console", "modelci-console", "The console: HTTP traffic, CL events read, live clients.", g)


def triton() -> dashboard.Dashboard:
    g = Grid()
    _health(g, "triton")
    g.row("Requests")
    g.series("Requests and failures", [
        query(f"modelci:triton_requests:rate1m{{{MODEL}, {VERSION}}}", "{{model}} v{{version}} ok"),
        query(f"modelci:triton_failures:rate1m{{{MODEL}, {VERSION}}}", "{{model}} v{{version}} failed"),
    ], unit="reqps")
    g.series("Mean time per request", [
        query(f"modelci:triton_queue_seconds:mean1m{{{MODEL}, {VERSION}}}", "{{model}} v{{version}} queue"),
        query(f"modelci:triton_compute_seconds:mean1m{{{MODEL}, {VERSION}}}", "{{model}} v{{version}} compute"),
        query(f"modelci:triton_request_seconds:mean1m{{{MODEL}, {VERSION}}}", "{{model}} v{{version}} total"),
    ], unit="s", description="Triton's cumulative duration counters divided by its request count.")
    g.series("Batch size (mean)", [query(f"modelci:triton_batch_size:mean1m{{{MODEL}, {VERSION}}}", "{{model}} v{{version}}")],
             description="Inferences per model execution: how well dynamic and client batching work.")
    g.series("Pending requests", [query(f"sum by (model) (nv_inference_pending_request_count{{{MODEL}, {NOT_STAGING}}})", "{{model}}")])
    return build("ModelCI-e Triton", "modelci-triton", "Triton Inference Server as the loop uses it: per model and version.",
                 g, model_variables())
