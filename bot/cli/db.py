"""`wecrm db`: the schema. `db upgrade` is the one command that may create the database."""

from __future__ import annotations

import typer

from bot.cli.common import fail, load_or_exit, open_database, read_revision, scrub
from bot.settings import DatabaseSettings

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Create or migrate the schema to the latest version (safe to run again)."""
    from crm_store.migrate import upgrade

    database = load_or_exit(DatabaseSettings)
    url = open_database(database, create=True)
    try:
        upgrade(url)
    except Exception as exc:
        message = scrub(str(exc), database)
        raise fail(f"migration failed: {type(exc).__name__}: {message}") from None
    typer.echo("database is up to date")


@db_app.command("current")
def current_command() -> None:
    """Show the schema version of the database and the latest one."""
    from crm_store.migrate import head_revision

    database = load_or_exit(DatabaseSettings)
    open_database(database)
    current = read_revision(database)
    typer.echo(f"database: {current or 'empty'}; latest: {head_revision()}")


def register(app: typer.Typer) -> None:
    """Add `wecrm db …` (called by bot.cli.main)."""
    app.add_typer(db_app, name="db")
