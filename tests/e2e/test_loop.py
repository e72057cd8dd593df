"""The whole loop on Apache Kafka, Redis and Triton: the demo's scenario at a small scale.

The services run as their own processes (`python -m services.<name>`, as in production and in
docker-compose.yml) against the shared real servers; the scenario publishes a drifting workload
and measures the loop from outside, as a user would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.families.run import FAMILIES, Family
from infra.local.embedded import EmbeddedStack
from services.demo.scenario import Narrator, run_demo


@pytest.fixture
def loop_stack(clean_env, stack_settings, stopped_after, apache_kafka, redis_server, triton_server, redis_settings):
    clean_env.setenv("MODELCI_KAFKA_BOOTSTRAP_SERVERS", apache_kafka.address())
    clean_env.setenv("MODELCI_KAFKA_TOPIC_PREFIX", "")
    clean_env.setenv("MODELCI_REDIS_URL", redis_server.address())
    clean_env.setenv("MODELCI_REDIS_KEY_PREFIX", redis_settings.key_prefix)
    s = triton_server.settings
    clean_env.setenv("MODELCI_TRITON_HTTP_URL", f"127.0.0.1:{s.triton_http_port}")
    clean_env.setenv("MODELCI_TRITON_GRPC_URL", f"127.0.0.1:{s.triton_grpc_port}")
    clean_env.setenv("MODELCI_TRITON_METRICS_URL", f"http://127.0.0.1:{s.triton_metrics_port}/metrics")
    clean_env.setenv("MODELCI_TRITON_MODEL_REPOSITORY", str(triton_server.model_repository))
    stack = EmbeddedStack(stack_settings)
    endpoints, _ = stack.up()
    stopped_after.append(stack)
    assert endpoints.kafka == apache_kafka.address() and "tansu" not in endpoints.started
    return stack


@pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])
def test_drift_is_detected_learned_validated_and_served(loop_stack: EmbeddedStack, tmp_path: Path, family: Family):
    """Each family `modelci bench families` measures, registered as it registers them: the demo's
    MLP, a tabular net whose train and eval behaviour differ (BatchNorm, Dropout), a ResNet-18 at
    reduced width on 1×32×32 images and a text classifier on INT64 token ids; served, updated by
    the trainer, validated, deployed."""
    config = family.demo_config(rate=250.0, warmup_s=8.0, recovery_window_s=5.0, recurring_s=5.0, serve_timeout_s=150.0)
    summary = run_demo(config, loop_stack, Narrator(lambda _: None), tmp_path / "report", up_seconds=None)

    assert summary["false_drift_alarms"] == 0, "drift reported before the switch"
    assert summary["detected_at"] is not None and summary["detected_at"] > summary["drift_at"]
    assert summary["updates"] == 1
    assert summary["serving_at"] is not None, "no new version served"
    assert max(summary["versions"]) >= 2
    assert summary["accuracy_before"] >= 0.9
    assert summary["accuracy_after_drift"] <= 0.5, "the switch did not hurt v1: the scenario tests nothing"
    assert summary["accuracy_recovered"] >= 0.8
    assert summary["failed_requests"] == 0
    assert (tmp_path / "report" / "report.json").exists() and (tmp_path / "report" / "accuracy.png").exists()
