"""`wecrm serve` and `wecrm demo`: the commands that run the bot itself."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, cast

import typer

from bot.cli.common import announce_database, fail, load_or_exit, migrated_database
from bot.settings import DatabaseSettings, Settings, SettingsError, load

if TYPE_CHECKING:
    from bot.app import Role

DEMO_DATABASE_FILE = "demo.db"
ROLES = ("all", "web", "worker")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    role: Annotated[str, typer.Option(help="all | web | worker")] = "all",
    keepalive_timeout: Annotated[
        float, typer.Option(help="Seconds before an idle connection is closed.", min=0.1)
    ] = 15.0,
    body_timeout: Annotated[
        float, typer.Option(help="Seconds to receive a whole request body (else 408).", min=0.1)
    ] = 3.0,
) -> None:
    """Run the bot: callback endpoint, inbox worker, outbox relay and scheduler."""
    if role not in ROLES:
        raise fail("--role must be one of: all, web, worker")
    settings = load_or_exit(Settings)
    migrated_database(settings)
    from bot.app import create_app
    from bot.logs import configure_logging
    from bot.serve import ServerLimits, serve_forever

    configure_logging(settings.log_level, settings.secret_values())
    limits = ServerLimits(keepalive_timeout=keepalive_timeout, body_timeout=body_timeout)
    web_app = create_app(
        settings,
        role=cast("Role", role),
        limits=limits,
    )

    def ready(url: str) -> None:
        typer.echo(f"wecrm {role} listening on {url} (callback: /wecom/callback)")

    try:
        asyncio.run(serve_forever(web_app, host=host, port=port, limits=limits, on_ready=ready))
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def demo(
    port: Annotated[int, typer.Option(help="Port of the bot.")] = 8080,
    sim_port: Annotated[
        int, typer.Option(help="Port of the WeCom simulator and chat page.")
    ] = 8081,
    host: Annotated[
        str, typer.Option(help="Address the bot and simulator listen on.")
    ] = "127.0.0.1",
    interactive: Annotated[bool, typer.Option(help="Chat prompt when on a terminal.")] = True,
    database: Annotated[
        str | None,
        typer.Option(
            help="Database URL for the demo; default demo.db in the data folder (WECRM_HOME), "
            "never the CRM's own database."
        ),
    ] = None,
    reset: Annotated[
        bool, typer.Option(help="Start from a freshly seeded company (SQLite demo files only).")
    ] = False,
    tour: Annotated[
        bool,
        typer.Option(help="Walk a scripted tour on a fresh company, print it, exit 1 on a miss."),
    ] = False,
) -> None:
    """The bot wired to the built-in WeCom simulator over a seeded demo company (SQLite)."""
    from bot.logs import configure_logging

    configure_logging("WARNING", [])
    if tour:
        from bot.demo.tour import run_tour

        raise typer.Exit(asyncio.run(run_tour()))
    from bot.demo import main as demo_main
    from crm_store.migrate import upgrade

    chosen = demo_database(database)
    announce_database(chosen.database_display, "from --database" if database else "demo default")
    if reset:
        if chosen.sqlite_path is None:
            raise fail("--reset works on a SQLite demo database only")
        chosen.sqlite_path.unlink(missing_ok=True)
    if chosen.sqlite_path is not None:
        chosen.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    upgrade(chosen.database_url)
    url = chosen.database_url
    try:
        asyncio.run(
            demo_main(url, host=host, port=port, sim_port=sim_port, interactive=interactive)
        )
    except OSError as exc:
        raise fail(f"cannot start the demo: {exc} (try --port/--sim-port)") from None
    except KeyboardInterrupt:
        pass


def demo_database(url: str | None) -> DatabaseSettings:
    """The demo's own database: --database, else demo.db next to the default CRM database."""
    # Never WECRM_DATABASE_URL: the demo syncs a made-up company into the database it gets.
    try:
        if url is None:
            home = load(DatabaseSettings, WECRM_DATABASE_URL="").data_home
            url = f"sqlite:///{home / DEMO_DATABASE_FILE}"
        return load(DatabaseSettings, WECRM_DATABASE_URL=url)
    except SettingsError as exc:
        raise fail(str(exc).replace("WECRM_DATABASE_URL", "--database")) from None


def register(app: typer.Typer) -> None:
    """Add `wecrm serve`, `wecrm demo` and `wecrm chat` (called by bot.cli.main)."""
    from bot.cli.chat import chat

    app.command()(serve)
    app.command()(demo)
    app.command()(chat)
