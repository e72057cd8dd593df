"""``modelci console serve`` as a real process: bootstraps the admin, serves, stops on SIGTERM,
and its logs (at DEBUG) never contain a password or a token."""

from __future__ import annotations

import os
import re
import sys
import uuid
from pathlib import Path

import httpx

from infra.local.process import free_port, spawn, stop_pid, wait_until

REPO = Path(__file__).resolve().parents[2]


def test_console_process_logs_no_secrets(kafka_settings, redis_settings, tmp_path: Path) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    port = free_port()
    env = {**os.environ, "MODELCI_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
           "MODELCI_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
           "MODELCI_REDIS_URL": redis_settings.url.get_secret_value(), "MODELCI_REDIS_KEY_PREFIX": redis_settings.key_prefix,
           "MODELCI_CONSOLE_ADMIN_PASSWORD": password, "MODELCI_CONSOLE_SESSION_SECRET": uuid.uuid4().hex,
           "MODELCI_CONSOLE_PORT": str(port), "MODELCI_CONSOLE_GROUP_ID": f"c-{uuid.uuid4().hex[:8]}",
           "MODELCI_LOG_LEVEL": "DEBUG"}
    log = tmp_path / "console.log"
    modelci = Path(sys.executable).parent / "modelci"
    argv = [str(modelci), "console", "serve"] if modelci.exists() else [sys.executable, "-m", "services.console"]
    proc = spawn(argv, log_file=log, pid_file=tmp_path / "console.pid", env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=2).json()["reader"] is True, 120, "the console process",
                   alive=lambda: proc.poll() is None)
        with httpx.Client(base_url=url, timeout=30) as http:
            page = http.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            assert http.post("/login", data={"username": "admin", "password": password, "csrf_token": csrf}).status_code == 303
            home = http.get("/")
            session_csrf = re.search(r'name="csrf_token" value="([^"]+)"', home.text).group(1)
            token = http.post("/api/v1/tokens", json={"user": "admin"}, headers={"X-CSRF-Token": session_csrf}).json()["token"]
            assert http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["name"] == "admin"
            assert http.post("/login", data={"username": "admin", "password": password + "x", "csrf_token": csrf}).status_code in (401, 403)
        session = http.cookies.get("modelci_session") or ""
    finally:
        stop_pid(proc.pid, 20)
    assert proc.wait(timeout=30) is not None  # reaped here: stopped, not merely signalled
    text = log.read_text()
    assert "console starting" in text  # the log is really there
    for secret in (password, token, csrf, session_csrf):
        assert secret not in text
    assert not session or session.split(".")[0] not in text
