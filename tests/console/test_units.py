"""Pure parts of the console: roles, cookie signing, the chart, the CLI's user and token commands."""

from __future__ import annotations

import doctest
import json

from typer.testing import CliRunner

from services.cli.main import app as cli
from services.console import chart, roles
from services.console.auth import AuthStore
from services.console.security import Signer


def test_roles_doctests_and_order() -> None:
    assert doctest.testmod(roles).failed == 0
    assert [r.value for r in sorted(roles.Role, key=lambda r: r.rank)] == ["viewer", "operator", "admin"]


def test_signed_cookie_rejects_tampering() -> None:
    signer = Signer(b"k" * 32)
    signed = signer.sign("session-id")
    assert signer.unsign(signed) == "session-id"
    assert signer.unsign(signed[:-1] + ("0" if signed[-1] != "0" else "1")) is None
    assert signer.unsign("other-id." + signed.rpartition(".")[2]) is None
    assert Signer(b"x" * 32).unsign(signed) is None
    assert signer.unsign(None) is None and signer.unsign("no-dot") is None


def test_chart_draws_versions_and_markers() -> None:
    series = {"points": [{"t": 0, "version": 1, "accuracy": 0.9, "samples": 10},
                         {"t": 100, "version": 1, "accuracy": 0.6, "samples": 50},
                         {"t": 150, "version": 2, "accuracy": 0.95, "samples": 20}],
              "markers": [{"kind": "drift", "at_ms": 50, "version": 1}, {"kind": "deployment", "at_ms": 120, "version": 2,
                                                                         "action": "deployed"}]}
    svg = chart.svg(series, width=200, height=50)
    assert svg.count("<polyline") == 2 and 'class="marker marker-drift"' in svg and 'class="marker marker-deployment"' in svg
    assert "v2 95%" in svg and ">60%<" in svg  # the axis starts a tenth below the worst point
    assert "no samples yet" in chart.svg({"points": [], "markers": []})


def test_cli_user_add_and_token_create(redis_settings, monkeypatch) -> None:
    monkeypatch.setenv("MODELCI_REDIS_URL", redis_settings.url.get_secret_value())
    monkeypatch.setenv("MODELCI_REDIS_KEY_PREFIX", redis_settings.key_prefix)
    runner = CliRunner()
    added = runner.invoke(cli, ["console", "user", "add", "alice", "--role", "operator", "--json"])
    assert added.exit_code == 0, added.output
    user = json.loads(added.stdout)
    assert user["role"] == "operator" and len(user["password"]) >= 16
    token = runner.invoke(cli, ["console", "token", "create", "alice", "--label", "ci"])
    assert token.exit_code == 0 and "mci_" in token.stdout
    raw = token.stdout.strip().rsplit(" ", 1)[-1]
    store = AuthStore(redis_settings.client(), redis_settings.key_prefix)
    assert store.verify_password("alice", user["password"]).role == "operator"
    assert store.authenticate_token(raw).name == "alice"
    assert runner.invoke(cli, ["console", "user", "add", "alice"]).exit_code == 1  # exists
    assert runner.invoke(cli, ["console", "user", "add", "bob", "--role", "root"]).exit_code == 1  # no such role
    audit = store.r.xrange(f"{redis_settings.key_prefix}console:audit")
    assert [e[1][b"action"] for e in audit] == [b"user_add", b"token_create"]
    assert user["password"].encode() not in b"".join(v for _, e in audit for v in e.values())
