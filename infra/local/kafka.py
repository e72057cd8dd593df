"""Apache Kafka, the real broker: single-node KRaft, classpath assembled by Maven."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from string import Template

from infra.local.component import Component
from services.common.errors import InfraError

KAFKA_DIR = Path(__file__).resolve().parent.parent / "kafka"
POM = KAFKA_DIR / "pom.xml"
PROPERTIES = KAFKA_DIR / "server.properties"


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    if not match:
        raise InfraError(f"{POM} names no kafka.version")
    return match.group(1)


class ApacheKafka(Component):
    name = "kafka"

    @property
    def classpath_file(self) -> Path:
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
        return self.settings.tools_dir.resolve() / "kafka" / f"classpath-{digest}.txt"

    def install(self) -> None:
        if self.classpath_file.exists() and all(Path(p).exists() for p in self._classpath().split(":")):
            return
        if shutil.which("mvn") is None or shutil.which("java") is None:
            raise InfraError("Apache Kafka needs java and mvn: run `make system-deps` (Debian: openjdk-17-jre-headless maven)")
        self.classpath_file.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(POM), "dependency:build-classpath", f"-Dmdep.outputFile={self.classpath_file}"],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            self.classpath_file.unlink(missing_ok=True)
            raise InfraError(f"Maven could not assemble Kafka's classpath:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def _classpath(self) -> str:
        return self.classpath_file.read_text().strip()

    def ports(self) -> dict[str, int]:
        return {"client": self.settings.kafka_port, "controller": self.settings.kafka_controller_port}

    def address(self) -> str:
        return f"127.0.0.1:{self.settings.kafka_port}"

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    def prepare(self) -> None:
        data_dir = self.home / "data"
        text = Template(PROPERTIES.read_text()).substitute(
            port=self.settings.kafka_port,
            controller_port=self.settings.kafka_controller_port,
            data_dir=data_dir,
        )
        self.config_file.write_text(text)
        if (data_dir / "meta.properties").exists():
            return
        cluster_id = "-"
        while cluster_id.startswith("-"):  # the storage tool would read a leading dash as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            ["java", "-cp", self._classpath(), "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config_file)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise InfraError(f"formatting Kafka's KRaft storage failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        heap = self.settings.kafka_heap
        return (
            [
                "java",
                f"-Xms{heap}",
                f"-Xmx{heap}",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info",
                "-cp",
                self._classpath(),
                "kafka.Kafka",
                str(self.config_file),
            ],
            None,
        )

    def healthy(self) -> bool:
        return broker_answers(self.address())

    def version(self) -> str:
        return kafka_version()


def broker_answers(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True when the broker returns metadata with at least one broker in it."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, "logger": _quiet_logger()})
    metadata = admin.list_topics(timeout=timeout_s)
    return bool(metadata.brokers)


def _quiet_logger():
    import logging

    logger = logging.getLogger("modelci.infra.kafka_probe")
    logger.setLevel(logging.CRITICAL)
    return logger
