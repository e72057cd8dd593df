"""Browser helpers: Debian's Chromium driven by Playwright (never ``playwright install``); the
``browser`` and ``page`` fixtures are in ``conftest.py``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.console.conftest import Console

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPORTS = Path(__file__).resolve().parents[2] / "reports"
TIMEOUT_MS = 90_000


def log_in(page, console: Console, user: str, password: str, path: str = "/") -> None:
    page.goto(f"{console.url}{path}")
    assert "/login" in page.url  # pages send strangers to the login form
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{console.url}{path}")
    page.wait_for_selector("body[data-live=connected]")
