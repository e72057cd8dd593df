"""``modelci console``: run the web console, add users, create API tokens.

User and token commands write straight to Redis (the same store the console reads), so the
first admin can be created before the console ever starts. Secrets are printed once, here,
and stored only as hashes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from services.cli.running_stack import use_running_stack

app = typer.Typer(help="Web console and management API: serve it, add users, create API tokens.", no_args_is_help=True,
                  callback=use_running_stack)
user_app = typer.Typer(help="Console users.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for scripts (sent as Authorization: Bearer ...).", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _auth():
    from services.console.auth import AuthStore
    from services.console.settings import ConsoleSettings

    settings = ConsoleSettings()
    return AuthStore(settings.redis.client(), settings.redis.key_prefix), settings


def _audit(settings, action: str, params: dict) -> None:
    from services.console.audit import AuditLog

    AuditLog(settings.redis.client(), settings.redis.key_prefix, settings.audit_length).record("cli", action, "done", params=params)


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.", envvar="MODELCI_CONSOLE_HOST", show_envvar=True)] = None,
    port: Annotated[int | None, typer.Option(help="Port.", envvar="MODELCI_CONSOLE_PORT", show_envvar=True)] = None,
) -> None:
    """Run the console (web pages, REST API under /api/v1, API reference at /docs) until Ctrl-C."""
    from services.console.app import main

    main(host, port)


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help="viewer (read), operator (actions) or admin (users and tokens).")] = "viewer",
    as_json: AsJson = False,
) -> None:
    """Add a user; prints a generated password once."""
    from services.common.errors import ModelCIError

    store, settings = _auth()
    try:
        user, password = store.add_user(name, role)
    except ModelCIError as exc:
        _fail(exc)
    _audit(settings, "user_add", {"user": user.name, "role": str(user.role)})
    if as_json:
        print(json.dumps({**user.public(), "password": password}))
    else:
        typer.echo(f"user {user.name} ({user.role}) created; password (shown once): {password}")


@user_app.command("list")
def user_list(as_json: AsJson = False) -> None:
    """List users and their roles."""
    store, _ = _auth()
    users = [u.public() for u in store.list_users()]
    if as_json:
        print(json.dumps(users))
    else:
        for u in users:
            typer.echo(f"{u['name']}\t{u['role']}")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Argument(help="User the token acts as (it has that user's role).")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    as_json: AsJson = False,
) -> None:
    """Create an API token; prints it once."""
    from services.common.errors import ModelCIError

    store, settings = _auth()
    try:
        info, raw = store.create_token(user, label)
    except ModelCIError as exc:
        _fail(exc)
    _audit(settings, "token_create", {"user": user, "token_id": info.id})
    if as_json:
        print(json.dumps({**info.public(), "token": raw}))
    else:
        typer.echo(f"token {info.id} for {user} (shown once): {raw}")


@app.command()
def bench(
    events: Annotated[int, typer.Option(help="Drift events timed from Kafka to a server-sent event.")] = 100,
    requests: Annotated[int, typer.Option(help="Requests per API call measured.")] = 300,
    batches: Annotated[int, typer.Option(help="Labeled-sample batches for the reader's throughput.")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Samples per batch.")] = 50,
    out_dir: Annotated[Path, typer.Option(help="Folder for console_bench.json and console_bench.png.")] = Path("reports"),
) -> None:
    """Live-update latency, API latency, action latency and reader throughput on a private Kafka and Redis (JSON)."""
    from benchmarks.console.latency import run

    print(json.dumps(run(events, requests, batches, batch_size, out_dir)))
