"""The embedded default: every ModelCI-e process on one machine, started and stopped as one.

Servers (Tansu, Redis, Triton, Prometheus) start only where no address is configured: setting
``MODELCI_KAFKA_BOOTSTRAP_SERVERS``, ``MODELCI_REDIS_URL`` or ``MODELCI_TRITON_HTTP_URL`` points
the services at an existing cluster instead, which is checked to answer first. Then each service
starts as its own process with its own /metrics port and log. What was started is written to
``embedded.json`` in the run folder so ``down`` stops exactly that, even from another shell.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.local.component import Component, ComponentStatus
from infra.local.kafka import broker_answers
from infra.local.prometheus import Prometheus
from infra.local.redis import Redis
from infra.local.service import ServiceProcess
from infra.local.settings import InfraSettings
from infra.local.tansu import Tansu
from infra.local.triton import Triton
from services.common import topics
from services.common.errors import InfraError

SERVICES = ("inference", "drift", "trainer", "deployer", "console")

TOPIC_PARTITIONS = {
    topics.REQUESTS: 4,
    topics.PREDICTIONS: 4,
    topics.FEEDBACK: 4,
    topics.SAMPLES: 4,
    topics.DRIFT: 4,
    topics.UPDATES: 4,
    topics.CANDIDATES: 4,
    topics.DEPLOYMENTS: 4,
    topics.COMMANDS: 4,
    **{topics.dlq(t): 4 for t in (topics.REQUESTS, topics.PREDICTIONS, topics.FEEDBACK, topics.SAMPLES, topics.UPDATES, topics.CANDIDATES, topics.COMMANDS)},
}


# Settings the embedded default changes from the services' own defaults (a variable set in the
# environment still wins): an update asks for 1500 labeled samples of the new concept. (The
# trainer's interference control needs no change of its own any more: since 2026-12-04 the
# services' defaults are what this stack set, so docker-compose and `modelci up` train alike.)
EMBEDDED_DEFAULTS: dict[str, dict[str, str]] = {
    "drift": {"MODELCI_DRIFT_MIN_SAMPLES": "1500"},
}


@dataclass
class Endpoints:
    """Where the services find their dependencies, and which of those this stack runs itself."""

    kafka: str
    redis: str
    triton_http: str
    triton_grpc: str
    triton_metrics: str
    model_repository: str
    artifacts: str
    prometheus: str | None = None
    started: list[str] = field(default_factory=list)

    def service_env(self) -> dict[str, str]:
        return {
            "MODELCI_KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "MODELCI_REDIS_URL": self.redis,
            "MODELCI_TRITON_HTTP_URL": self.triton_http,
            "MODELCI_TRITON_GRPC_URL": self.triton_grpc,
            "MODELCI_TRITON_METRICS_URL": self.triton_metrics,
            "MODELCI_TRITON_MODEL_REPOSITORY": self.model_repository,
            "MODELCI_TRAINER_ARTIFACT_ROOT": self.artifacts,
            "MODELCI_DEPLOYER_ARTIFACT_ROOT": self.artifacts,
        }


class EmbeddedStack:
    def __init__(self, settings: InfraSettings | None = None, services: tuple[str, ...] = SERVICES) -> None:
        self.settings = settings or InfraSettings()
        self.services = services
        self.state_file = self.settings.run_dir.resolve() / "embedded.json"

    # --- what runs ----------------------------------------------------------------------------
    def _servers(self) -> dict[str, Component]:
        return {
            "tansu": Tansu(self.settings),
            "redis": Redis(self.settings),
            "triton": Triton(self.settings),
            "prometheus": Prometheus(self.settings),
        }

    def _service(self, name: str, endpoints: Endpoints) -> ServiceProcess:
        port = self.settings.service_port_base + SERVICES.index(name)
        env = {**EMBEDDED_DEFAULTS.get(name, {}), **endpoints.service_env()}
        env.update({k: v for k, v in os.environ.items() if k in env})
        if name == "console":
            # The console serves its pages, API and /metrics on one port.
            env["MODELCI_CONSOLE_PORT"] = str(port)
            env["MODELCI_CONSOLE_ADMIN_PASSWORD"] = self.console_admin_password()
        return ServiceProcess(self.settings, name, port, env)

    def console_admin_password(self) -> str:
        """The console's first admin password: made once per run folder, readable by its owner only."""
        path = self.settings.run_dir.resolve() / "console-admin-password"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(18))
        return path.read_text().strip()

    def resolve(self) -> Endpoints:
        """Decides, from the environment, which servers to start and where the others are."""
        s, env = self.settings, os.environ
        servers = self._servers()
        triton: Triton = servers["triton"]  # type: ignore[assignment]
        endpoints = Endpoints(
            kafka=env.get("MODELCI_KAFKA_BOOTSTRAP_SERVERS") or servers["tansu"].address(),
            redis=env.get("MODELCI_REDIS_URL") or servers["redis"].address(),
            triton_http=env.get("MODELCI_TRITON_HTTP_URL") or triton.address(),
            triton_grpc=env.get("MODELCI_TRITON_GRPC_URL") or f"127.0.0.1:{s.triton_grpc_port}",
            triton_metrics=env.get("MODELCI_TRITON_METRICS_URL") or f"http://127.0.0.1:{s.triton_metrics_port}/metrics",
            model_repository=env.get("MODELCI_TRITON_MODEL_REPOSITORY") or str(triton.model_repository),
            artifacts=env.get("MODELCI_ARTIFACTS_ROOT") or str(s.run_dir.resolve() / "artifacts"),
        )
        if "MODELCI_KAFKA_BOOTSTRAP_SERVERS" not in env:
            endpoints.started.append("tansu")
        if "MODELCI_REDIS_URL" not in env:
            endpoints.started.append("redis")
        if "MODELCI_TRITON_HTTP_URL" not in env:
            endpoints.started.append("triton")
        if shutil.which("prometheus"):
            endpoints.started.append("prometheus")
            endpoints.prometheus = servers["prometheus"].address()
        return endpoints

    def _check_external(self, endpoints: Endpoints) -> None:
        if "tansu" not in endpoints.started:
            try:
                ok = broker_answers(endpoints.kafka, timeout_s=5.0)
            except Exception:
                ok = False
            if not ok:
                raise InfraError(f"the configured Kafka at {endpoints.kafka} does not answer: start it or unset MODELCI_KAFKA_BOOTSTRAP_SERVERS")
        if "redis" not in endpoints.started:
            import redis

            try:
                redis.Redis.from_url(endpoints.redis, socket_timeout=3).ping()
            except Exception:
                raise InfraError("the configured Redis (MODELCI_REDIS_URL) does not answer: start it or unset MODELCI_REDIS_URL") from None
        if "triton" not in endpoints.started:
            import httpx

            try:
                httpx.get(f"http://{endpoints.triton_http}/v2/health/live", timeout=3).raise_for_status()
            except Exception:
                raise InfraError(f"the configured Triton at {endpoints.triton_http} does not answer: start it or unset MODELCI_TRITON_HTTP_URL") from None

    # --- lifecycle ----------------------------------------------------------------------------
    def up(self) -> tuple[Endpoints, float]:
        """Starts everything; on any failure stops what it started and raises one InfraError."""
        if self.state_file.exists():
            raise InfraError(f"a stack is already recorded in {self.state_file}: run `modelci down` first")
        started_at = time.monotonic()
        endpoints = self.resolve()
        self._check_external(endpoints)
        servers = self._servers()
        ports = {f"{n}": p for n in endpoints.started for p in servers[n].ports().values()}
        ports.update({f"service {n}": self.settings.service_port_base + SERVICES.index(n) for n in self.services})
        from infra.local.process import require_free

        require_free(ports)
        running: list[Component] = []
        try:
            for name in endpoints.started:
                servers[name].start()
                running.append(servers[name])
            self._write_state(endpoints, [c.name for c in running])
            from services.common.kafka import ensure_topics
            from services.common.settings import KafkaSettings

            ensure_topics(KafkaSettings(bootstrap_servers=endpoints.kafka), TOPIC_PARTITIONS)
            for name in self.services:
                service = self._service(name, endpoints)
                service.start()
                running.append(service)
                self._write_state(endpoints, [c.name for c in running])
                if endpoints.prometheus:
                    servers["prometheus"].add_target(name, f"127.0.0.1:{service.metrics_port}")  # type: ignore[attr-defined]
            if endpoints.prometheus and "triton" in endpoints.started:
                servers["prometheus"].add_target("triton", endpoints.triton_metrics.split("//")[1].split("/")[0])  # type: ignore[attr-defined]
        except BaseException:
            for component in reversed(running):
                try:
                    component.stop()
                except InfraError:
                    pass
            self.state_file.unlink(missing_ok=True)
            raise
        return endpoints, time.monotonic() - started_at

    def _write_state(self, endpoints: Endpoints, running: list[str]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        state = {"endpoints": endpoints.__dict__, "running": running}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def recorded(self) -> tuple[Endpoints, list[str]] | None:
        if not self.state_file.exists():
            return None
        state = json.loads(self.state_file.read_text())
        return Endpoints(**state["endpoints"]), state["running"]

    def _components(self, endpoints: Endpoints, names: list[str]) -> list[Component]:
        servers = self._servers()
        return [servers[n] if n in servers else self._service(n, endpoints) for n in names]

    def down(self) -> list[str]:
        recorded = self.recorded()
        if recorded is None:
            return []
        endpoints, names = recorded
        errors = []
        for component in reversed(self._components(endpoints, names)):
            try:
                component.stop()
            except InfraError as exc:
                errors.append(str(exc))
        self.state_file.unlink(missing_ok=True)
        if errors:
            raise InfraError("; ".join(errors))
        return names

    def status(self) -> list[ComponentStatus]:
        recorded = self.recorded()
        if recorded is None:
            return []
        endpoints, names = recorded
        return [c.status() for c in self._components(endpoints, names)]


