"""What every `wecrm` command shares: failing with a clear line, its settings, the database.

A command that opens the database first says which one, on stderr, with the setting that chose
it. Only `wecrm db upgrade` (and the demo, on its own file) may create a SQLite file: anything
else meeting a missing file names it and stops, instead of creating an empty database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from pydantic_settings import BaseSettings
from sqlalchemy.ext.asyncio import AsyncSession

from bot.settings import DatabaseSettings, SettingsError, load
from crm_store.models.org import Staff
from crm_store.session import create_engine, session_factory

T = TypeVar("T")
S = TypeVar("S", bound=BaseSettings)

CLI_ACTOR = "cli"
AsOption = Annotated[
    str,
    typer.Option("--as", help="Userid recorded in the audit log as who did this."),
]
SOURCE_LABELS = {
    "WECRM_DATABASE_URL": "from WECRM_DATABASE_URL",
    "WECRM_HOME": "from WECRM_HOME",
    "default": "default",
}


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `message` in red on stderr; the caller raises the returned Exit."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def load_or_exit(kind: type[S]) -> S:
    """One settings part, or exit naming every bad variable (never a secret's value)."""
    try:
        return load(kind)
    except SettingsError as exc:
        raise fail(str(exc)) from None


def announce_database(where: str, source: str) -> None:
    typer.echo(f"数据库 (database): {where} ({source})", err=True)


def open_database(database: DatabaseSettings, *, create: bool = False) -> str:
    """Say which database this is and return its URL; a missing SQLite file is an error."""
    announce_database(database.database_display, SOURCE_LABELS[database.database_source])
    path = database.sqlite_path
    if path is not None:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.is_file():
            raise fail(missing_database_message(database))
    return database.database_url


def missing_database_message(database: DatabaseSettings) -> str:
    chosen = {
        "WECRM_DATABASE_URL": "chosen by WECRM_DATABASE_URL",
        "WECRM_HOME": "the default file in WECRM_HOME",
        "default": "the default location; WECRM_HOME or WECRM_DATABASE_URL choose another",
    }[database.database_source]
    return (
        f"数据库不存在 (no database): {database.sqlite_path} ({chosen}).\n"
        "  Run `wecrm db upgrade` to create it there, or point WECRM_DATABASE_URL at the "
        "existing database."
    )


def scrub(text: str, database: DatabaseSettings) -> str:
    """Remove the database password from an error message before it is printed."""
    password = database.database_password
    return text.replace(password, "***") if password else text


def read_revision(database: DatabaseSettings) -> str | None:
    """The schema version in the database (None when empty); exit if it cannot be reached."""
    from crm_store.migrate import current_revision

    try:
        return asyncio.run(current_revision(database.database_url))
    except Exception as exc:
        raise fail(f"cannot reach the database: {type(exc).__name__}") from None


def ensure_migrated(database: DatabaseSettings) -> None:
    """Refuse to work on an empty or old schema, with the command that fixes it."""
    from crm_store.migrate import head_revision

    current = read_revision(database)
    if current != head_revision():
        raise fail(
            f"the database schema is {'empty' if current is None else 'out of date'} "
            f"(at {current or 'nothing'}, latest {head_revision()}): run `wecrm db upgrade` first"
        )


def migrated_database(database: DatabaseSettings | None = None) -> str:
    """The URL of an existing, up-to-date database (announced on stderr), or exit saying why."""
    database = database or load_or_exit(DatabaseSettings)
    url = open_database(database)
    ensure_migrated(database)
    return url


def run_session(
    url: str, work: Callable[[AsyncSession], Awaitable[T]], *, commit: bool = True
) -> T:
    """Run `work` in one session and transaction; commit once if it returns normally."""

    async def main() -> T:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                result = await work(session)
                if commit:
                    await session.commit()
                else:
                    await session.rollback()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(main())


async def check_actor(session: AsyncSession, actor: str) -> None:
    """`--as` must name someone in the directory (or be the CLI itself): it goes into the audit."""
    if actor != CLI_ACTOR and await session.get(Staff, actor) is None:
        raise fail(f"--as {actor}: 没有这个 userid (unknown userid)")


def utc_now() -> datetime:
    return datetime.now(UTC)
