"""Triton Inference Server from the ``tritonserver`` binary bundled in the nvidia-pytriton wheel.

The wheel pins numpy<2, so it is never installed: it is downloaded once with
``pip download --no-deps`` and only the server tree and its libraries are unpacked into the
tools folder. Models are served by the Python-based TorchScript backend in
``infra/triton/backend`` (the wheel has no libtorch backend), in explicit model-control mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

from infra.local.component import Component
from services.common.errors import InfraError

BACKEND_NAME = "modelci_torchscript"
BACKEND_SOURCE = Path(__file__).resolve().parent.parent / "triton" / "backend" / "model.py"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def triton_wheel_requirement() -> str:
    if PYPROJECT.exists():
        return tomllib.loads(PYPROJECT.read_text())["tool"]["modelci"]["tools"]["triton-wheel"]
    return "nvidia-pytriton==0.7.0"


class Triton(Component):
    name = "triton"

    @property
    def tools(self) -> Path:
        requirement = triton_wheel_requirement().replace("==", "-")
        return self.settings.tools_dir.resolve() / "triton" / requirement

    @property
    def server_binary(self) -> Path:
        return self.tools / "tritonserver" / "bin" / "tritonserver"

    @property
    def model_repository(self) -> Path:
        return self.home / "models"

    def install(self) -> None:
        if self.server_binary.exists():
            return
        wheel_dir = self.tools.parent / "wheels"
        wheel_dir.mkdir(parents=True, exist_ok=True)
        wheels = sorted(wheel_dir.glob("nvidia_pytriton-*.whl"))
        if not wheels:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", triton_wheel_requirement(), "-d", str(wheel_dir)],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise InfraError(f"downloading {triton_wheel_requirement()} failed: {result.stderr[-1500:]}")
            wheels = sorted(wheel_dir.glob("nvidia_pytriton-*.whl"))
        staging = self.tools.with_name(self.tools.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(wheels[-1]) as wheel:
            for member in wheel.infolist():
                name = member.filename
                if name.startswith("pytriton/tritonserver/"):
                    target = staging / "tritonserver" / name[len("pytriton/tritonserver/") :]
                elif name.startswith("nvidia_pytriton.libs/"):
                    target = staging / "libs" / name[len("nvidia_pytriton.libs/") :]
                else:
                    continue
                if member.is_dir():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with wheel.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                target.chmod(0o755)
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        stub = staging / "tritonserver" / "python_backend_stubs" / py / "triton_python_backend_stub"
        if not stub.exists():
            raise InfraError(f"the Triton wheel has no Python backend stub for Python {py}")
        shutil.copy2(stub, staging / "tritonserver" / "backends" / "python" / "triton_python_backend_stub")
        staging.rename(self.tools)

    def ports(self) -> dict[str, int]:
        s = self.settings
        return {"http": s.triton_http_port, "grpc": s.triton_grpc_port, "metrics": s.triton_metrics_port}

    def address(self) -> str:
        return f"127.0.0.1:{self.settings.triton_http_port}"

    def prepare(self) -> None:
        self.model_repository.mkdir(parents=True, exist_ok=True)
        backends = self.home / "backends"
        shutil.rmtree(backends, ignore_errors=True)
        (backends / BACKEND_NAME).mkdir(parents=True)
        (backends / "python").symlink_to(self.tools / "tritonserver" / "backends" / "python")
        shutil.copy2(BACKEND_SOURCE, backends / BACKEND_NAME / "model.py")

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        libpython_dir = sysconfig.get_config_var("LIBDIR") or ""
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(self.tools / "libs"), libpython_dir, env.get("LD_LIBRARY_PATH", "")) if p
        )
        # The backend stub ignores PYTHONPATH: the venv's interpreter must come first on PATH.
        env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
        env.setdefault("MODELCI_TRITON_TORCH_THREADS", "1")
        return env

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        s = self.settings
        return (
            [
                str(self.server_binary),
                f"--model-repository={self.model_repository}",
                "--model-control-mode=explicit",
                "--model-config-name=local",
                f"--backend-directory={self.home / 'backends'}",
                "--http-address=127.0.0.1",
                f"--http-port={s.triton_http_port}",
                "--grpc-address=127.0.0.1",
                f"--grpc-port={s.triton_grpc_port}",
                "--metrics-address=127.0.0.1",
                f"--metrics-port={s.triton_metrics_port}",
                "--allow-gpu-metrics=false",
                "--pinned-memory-pool-byte-size=0",
                "--disable-auto-complete-config",
                "--strict-readiness=false",
                "--exit-on-error=false",
                "--log-verbose=0",
                "--exit-timeout-secs=2",
            ],
            self.environment(),
        )

    def healthy(self) -> bool:
        import httpx

        return httpx.get(f"http://{self.address()}/v2/health/live", timeout=1.0).status_code == 200

    def version(self) -> str:
        import httpx

        return str(httpx.get(f"http://{self.address()}/v2", timeout=1.0).json()["version"])
