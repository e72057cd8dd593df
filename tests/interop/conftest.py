"""The reference implementations the wire format is checked against.

Apache Avro's Python package is a test dependency; its Java library and Apache Kafka's Java
client come from Maven Central into a tiny program (``java/``) that Maven builds once per test
session, outside the source tree.
"""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import pytest

JAVA_DIR = Path(__file__).parent / "java"
MAIN = "io.modelci.interop.Interop"


@dataclass(frozen=True)
class JavaInterop:
    """Runs the Java program: one JVM per call, records as lines of Avro JSON or hex."""

    classpath: str

    def run(self, *args: str, stdin: str = "", timeout_s: float = 120.0) -> list[str]:
        done = subprocess.run(["java", "-cp", self.classpath, MAIN, *args], input=stdin, capture_output=True,
                              text=True, timeout=timeout_s)
        if done.returncode != 0:
            raise AssertionError(f"java {' '.join(args[:1])} failed ({done.returncode}): {done.stderr[-3000:]}")
        # split("\n"), not splitlines(): a string may hold U+2028 or U+0085, which Java's JSON
        # writer leaves unescaped and splitlines() would take for line ends.
        return [line for line in done.stdout.split("\n") if line]


@pytest.fixture(scope="session")
def java_interop(tmp_path_factory: pytest.TempPathFactory) -> JavaInterop:
    build = tmp_path_factory.mktemp("java-interop")
    classpath_file = build / "classpath.txt"
    done = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(JAVA_DIR / "pom.xml"), f"-Dinterop.build.dir={build}",
         "compile", "dependency:build-classpath", f"-Dmdep.outputFile={classpath_file}"],
        capture_output=True, text=True, timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the Java interop program failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return JavaInterop(f"{build / 'classes'}:{classpath_file.read_text().strip()}")


def to_json_line(parsed_schema: Any, record: dict[str, Any]) -> str:
    """A record in Avro's JSON encoding (unions tagged with their branch), on one line."""
    out = io.StringIO()
    fastavro.json_writer(out, parsed_schema, [record])
    return json.dumps(json.loads(out.getvalue()))


def from_json_line(parsed_schema: Any, line: str) -> dict[str, Any]:
    return next(iter(fastavro.json_reader(io.StringIO(line), parsed_schema)))
