"""The `wecrm` command: serve, migrate, demo, and the admin tasks.

Typer gives typed options, `--help` on every level and shell completion for free.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from aiohttp import web

from bot.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="WeCom CRM assistant.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from None


def database_url_or_exit() -> str:
    """Only the database settings: migrations need no WeCom credentials."""
    import os

    from bot.settings import DEFAULT_DATABASE_URL

    return (
        os.environ.get("WECRM_DATABASE_URL")
        or _dotenv_value("WECRM_DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )


def _dotenv_value(name: str) -> str | None:
    from pathlib import Path

    env = Path(".env")
    if not env.exists():
        return None
    for line in env.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == name:
            return value.strip().strip("'\"")
    return None


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest version (safe to run again)."""
    from crm_store.migrate import upgrade

    url = database_url_or_exit()
    try:
        upgrade(url)
    except Exception as exc:
        raise fail(f"migration failed: {type(exc).__name__}: {exc}") from None
    typer.echo("database is up to date")


@db_app.command("current")
def db_current() -> None:
    """Show the schema version of the database and the latest one."""
    from crm_store.migrate import current_revision, head_revision

    current = asyncio.run(current_revision(database_url_or_exit()))
    typer.echo(f"database: {current or 'empty'}; latest: {head_revision()}")


def ensure_migrated(url: str) -> None:
    from crm_store.migrate import current_revision, head_revision

    try:
        current = asyncio.run(current_revision(url))
    except Exception as exc:
        raise fail(f"cannot reach the database: {type(exc).__name__}") from None
    if current != head_revision():
        raise fail(
            f"the database schema is {'empty' if current is None else 'out of date'} "
            f"(at {current or 'nothing'}, latest {head_revision()}): run `wecrm db upgrade` first"
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    role: Annotated[str, typer.Option(help="all | web | worker")] = "all",
) -> None:
    """Run the bot: callback endpoint, inbox worker, outbox relay and scheduler."""
    if role not in ("all", "web", "worker"):
        raise fail("--role must be one of: all, web, worker")
    settings = settings_or_exit()
    ensure_migrated(settings.database_url)
    from bot.app import create_app
    from bot.logs import configure_logging

    configure_logging(settings.log_level, _secret_values(settings))
    web_app = create_app(settings, role=role)
    typer.echo(f"wecrm {role} listening on http://{host}:{port} (callback: /wecom/callback)")
    web.run_app(web_app, host=host, port=port, print=None)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port of the bot.")] = 8080,
    sim_port: Annotated[int, typer.Option(help="Port of the WeCom simulator.")] = 8081,
    host: Annotated[str, typer.Option(help="Address the bot listens on.")] = "127.0.0.1",
    interactive: Annotated[bool, typer.Option(help="Chat prompt when on a terminal.")] = True,
) -> None:
    """Run the bot on SQLite (no Redis) wired to the built-in WeCom simulator."""
    from bot.demo import main as demo_main
    from bot.logs import configure_logging
    from crm_store.migrate import upgrade

    url = database_url_or_exit()
    configure_logging("WARNING", [])
    upgrade(url)
    try:
        asyncio.run(
            demo_main(url, host=host, port=port, sim_port=sim_port, interactive=interactive)
        )
    except OSError as exc:
        raise fail(f"cannot start the demo: {exc} (try --port/--sim-port)") from None


def _secret_values(settings: Settings) -> list[str]:
    return [
        settings.wecom_secret.get_secret_value(),
        settings.wecom_token.get_secret_value(),
        settings.wecom_aes_key.get_secret_value(),
    ]


def _register_admin_commands() -> None:
    from bot.cli.admin import register
    from bot.cli.config import config_app
    from bot.cli.outbox import register as outbox_register

    register(app)
    app.add_typer(config_app, name="config")
    outbox_register(app)


_register_admin_commands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
