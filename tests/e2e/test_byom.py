"""README "Bring your own model", run exactly as written: its files, then its shell steps.

The README's section between ``<!-- byom:begin -->`` and ``<!-- byom:end -->`` is the test:
each Python block starting with ``# file: PATH`` is written to that path in a fresh folder, and
the shell block runs there with ``bash -euo pipefail``, on a private embedded stack (its ports
and run folder come from ``MODELCI_INFRA_*``, like every other test's).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from infra.local.settings import InfraSettings

REPO = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def readme_steps() -> tuple[dict[str, str], str]:
    text = (REPO / "README.md").read_text()
    section = text.split("<!-- byom:begin -->", 1)[1].split("<!-- byom:end -->", 1)[0]
    files, shell = {}, ""
    for lang, body in BLOCK.findall(section):
        if lang == "python":
            first = body.splitlines()[0]
            assert first.startswith("# file: "), first
            files[first.removeprefix("# file: ").split()[0]] = body
        elif lang == "bash":
            shell += body
    return files, shell


def test_the_readme_steps_bring_a_model_to_an_updated_served_version(stack_settings: InfraSettings, tmp_path: Path):
    files, shell = readme_steps()
    assert {"my_models/nets.py", "train.py", "send.py"} <= set(files) and "modelci model register" in shell
    work = tmp_path / "work"
    for name, body in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(body)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCI_")}
    env.update({f"MODELCI_INFRA_{k.upper()}": str(v) for k, v in stack_settings.model_dump().items()})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the project's venv: python, modelci
    try:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", shell], cwd=work, env=env, capture_output=True, text=True, timeout=540)
    finally:
        subprocess.run([sys.executable, "-m", "services.cli", "down"], cwd=work, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "serving version 2" in done.stdout, done.stdout[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
