"""Settings come from MODELCI_* variables, reach the clients, and never leak secrets."""

from __future__ import annotations

import json

from services.common import logs
from services.common.settings import KafkaSettings, RedisSettings
from services.cli.config_cmd import settings_classes
from services.common.settings_docs import settings_markdown


def test_kafka_security_passes_through_to_both_clients(monkeypatch):
    monkeypatch.setenv("MODELCI_KAFKA_BOOTSTRAP_SERVERS", "broker-1:9093,broker-2:9093")
    monkeypatch.setenv("MODELCI_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("MODELCI_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("MODELCI_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("MODELCI_KAFKA_SASL_PASSWORD", "hunter2")
    kafka = KafkaSettings()
    conf = kafka.confluent_config()
    assert conf["bootstrap.servers"] == "broker-1:9093,broker-2:9093"
    assert (conf["security.protocol"], conf["sasl.mechanism"], conf["sasl.username"], conf["sasl.password"]) == (
        "SASL_PLAINTEXT", "SCRAM-SHA-512", "svc", "hunter2")
    aio = kafka.aiokafka_config()
    assert aio["sasl_plain_password"] == "hunter2" and aio["security_protocol"] == "SASL_PLAINTEXT"
    assert "hunter2" not in repr(kafka) and "hunter2" not in str(kafka.model_dump())


def test_redis_credentials_are_secret(monkeypatch):
    monkeypatch.setenv("MODELCI_REDIS_URL", "redis://app:s3cret@cache:6380/2")
    redis_settings = RedisSettings()
    assert "s3cret" not in repr(redis_settings)
    client = redis_settings.client()
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["password"], kwargs["host"], kwargs["port"], kwargs["db"]) == ("s3cret", "cache", 6380, 2)


def test_logs_are_json_with_context_and_masked_secrets(capsys):
    log = logs.configure("unit", fmt="json")
    token = logs.model_var.set("digits")
    try:
        log.info("connected", sasl_password="hunter2", api_token="abc")
    finally:
        logs.model_var.reset(token)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "connected" and line["model"] == "digits" and line["service"] == "unit"
    assert line["sasl_password"] == "**********" and line["api_token"] == "**********"


def test_settings_table_documents_every_variable():
    table = settings_markdown(settings_classes())
    for variable in ("MODELCI_KAFKA_BOOTSTRAP_SERVERS", "MODELCI_REDIS_URL", "MODELCI_INFRA_RUN_DIR", "MODELCI_TRITON_HTTP_URL"):
        assert variable in table
    assert "| `MODELCI_KAFKA_SASL_PASSWORD` | — |" in table


def test_readme_settings_section_is_current():
    from pathlib import Path

    from services.common.settings_docs import readme_with_settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert readme_with_settings(readme, settings_classes()) == readme, "run `modelci config docs --readme README.md`"
