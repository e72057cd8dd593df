"""Shared browser fixtures: Debian's Chromium driven by Playwright (never ``playwright install``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (infra/install-system-deps.sh installs it)")
    pw = playwright_api.sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        yield b
    finally:
        b.close()
        pw.stop()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


def log_in(page, console: Console, user: str, password: str, path: str = "/") -> None:
    page.goto(f"{console.url}{path}")
    assert "/login" in page.url  # pages send strangers to the login form
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{console.url}{path}")
    page.wait_for_selector("body[data-live=connected]")
