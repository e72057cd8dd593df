"""The console in a real browser (Debian's Chromium driven by Playwright): log in, watch the
models page change live when a drift event arrives, a screenshot of it; a viewer cannot act; a
stranger gets the login page and 401; a login without the CSRF token fails."""

from __future__ import annotations

from services.common import topics
from services.common.events import DriftEvent, LabeledSample, LabeledSampleBatch, now_ms

from tests.console.browser import REPORTS, TIMEOUT_MS, expect, log_in
from tests.console.conftest import Console


def samples(model: str, version: int, correct: int, wrong: int, at_ms: int) -> LabeledSampleBatch:
    items = [LabeledSample(sample_id=f"s{at_ms}-{i}", model_version=version, features=[0.0], label=1,
                           predicted=1 if i < correct else 2, confidence=0.8, prediction_partition=0, prediction_offset=i,
                           feedback_partition=0, feedback_offset=i) for i in range(correct + wrong)]
    return LabeledSampleBatch(model=model, items=items, joined_at_ms=at_ms)


def test_models_page_updates_live_when_drift_arrives(console: Console, page, model: str) -> None:
    log_in(page, console, "viewer-user", console.passwords["viewer"])
    row = page.locator(f"tr[data-model='{model}']")
    expect(row.locator(".drift .state")).to_have_text("ok")
    expect(row.locator(".accuracy")).to_have_text("—")
    page.evaluate("window.__sameDocument = 42")
    start = now_ms() - 120_000
    for i, correct in enumerate([19, 19, 18, 19, 17, 12, 10, 9]):  # accuracy falls: the concept drifted
        console.publish(topics.SAMPLES, samples(model, 2, correct, 20 - correct, start + i * 15_000), key=model)
    expect(row.locator(".accuracy")).to_contain_text("76.9%", timeout=TIMEOUT_MS)  # 123 of the last 160 samples
    console.publish(topics.DRIFT, DriftEvent(model=model, version=2, detector="adwin", signal="error",
                                             statistics={"estimation": 0.4}, topic="cl.samples", partition=0,
                                             offset=7, observations=300, detected_at_ms=start + 75_000), key=model)
    expect(row.locator(".drift .state")).to_have_text("drift", timeout=TIMEOUT_MS)
    expect(row.locator(".drift")).to_contain_text("adwin on error")
    expect(page.locator("#last-event")).to_contain_text(f"drift on {model}")
    expect(row.locator("svg.chart line.marker-drift")).to_have_count(1)
    expect(row.locator("svg.chart polyline.v2")).to_have_count(1)
    assert page.evaluate("window.__sameDocument") == 42  # updated in place, no reload
    REPORTS.mkdir(exist_ok=True)
    page.screenshot(path=str(REPORTS / "console-models.png"), full_page=True)
    assert (REPORTS / "console-models.png").stat().st_size > 10_000


def test_viewer_cannot_act_in_the_browser(console: Console, page, model: str) -> None:
    log_in(page, console, "viewer-user", console.passwords["viewer"], f"/models/{model}")
    expect(page.locator("tr#v3 .status")).to_have_text("held")
    assert page.locator("button[name=approve]").count() == 0 and page.locator("#form-update").count() == 0
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    forced = page.request.post(f"{console.url}/models/{model}/actions/approve", form={"version": "3", "csrf_token": csrf},
                               max_redirects=0)
    assert forced.status == 403


def test_stranger_gets_login_page_and_401(console: Console, page) -> None:
    page.goto(f"{console.url}/admin")
    assert "/login" in page.url
    assert page.request.get(f"{console.url}/api/v1/models").status == 401
    forged = page.request.post(f"{console.url}/login", form={"username": "admin", "password": console.passwords["admin"]},
                               max_redirects=0)
    assert forged.status == 403  # no CSRF token: even right credentials do not log in
