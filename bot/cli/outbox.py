"""`wecrm outbox`: what the bot still owes WeCom, and a way to send dead letters again.

After an outage or a configuration fix (secret, trusted IP, visibility), an admin lists the
dead letters with the reason WeCom gave and puts them back in the queue; the relay sends them
in order with the usual pacing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from bot.cli.common import fail, migrated_database
from crm_store.queues import outbox
from crm_store.queues.outbox import OwedMessage
from crm_store.session import create_engine, session_factory

outbox_app = typer.Typer(help="Messages owed to WeCom: list them, retry dead letters.")


def register(app: typer.Typer) -> None:
    """Add `wecrm outbox …` to the `wecrm` app (called by bot.cli.main)."""
    app.add_typer(outbox_app, name="outbox", no_args_is_help=True)


def _database() -> str:
    return migrated_database()


def _fail(message: str) -> typer.Exit:
    return fail(message)


def age(delta: timedelta) -> str:
    """3s, 4m, 2h05m, 3d04h: short enough for a table column."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _row(message: OwedMessage, now: datetime) -> str:
    error = (message.last_error or "").replace("\n", " ")
    return (
        f"{message.id:>8}  {message.to_user[:20]:<20}  {message.msgtype[:13]:<13}  "
        f"{message.status:<7}  {message.attempts:>8}  {age(now - message.created_at):>7}  "
        f"{error[:80]}"
    )


@outbox_app.command("list")
def list_command(
    dead: Annotated[bool, typer.Option("--dead", help="Only dead letters.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many, oldest first.")] = 50,
) -> None:
    """Messages not delivered yet (pending, sending, dead), oldest first."""
    url = _database()

    async def main() -> list[OwedMessage]:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                return await outbox.list_unsent(session, dead_only=dead, limit=limit)
        finally:
            await engine.dispose()

    rows = asyncio.run(main())
    if not rows:
        typer.echo("没有死信 no dead letters" if dead else "没有待发消息 nothing owed to WeCom")
        return
    now = datetime.now(UTC)
    header = (
        f"{'id':>8}  {'to':<20}  {'type':<13}  {'status':<7}  {'attempts':>8}  {'age':>7}  "
        "last error"
    )
    typer.echo(header)
    for message in rows:
        typer.echo(_row(message, now))


@outbox_app.command("retry")
def retry_command(
    ids: Annotated[list[int] | None, typer.Argument(help="Outbox ids of dead letters.")] = None,
    all_dead: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
) -> None:
    """Put dead letters back in the queue (attempts and age start again)."""
    if bool(ids) == all_dead:
        raise _fail("give either outbox ids or --all")
    url = _database()

    async def main() -> list[int]:
        engine = create_engine(url)
        try:
            async with session_factory(engine).begin() as session:
                return await outbox.retry_dead(
                    session, ids=None if all_dead else list(ids or []), now=datetime.now(UTC)
                )
        finally:
            await engine.dispose()

    requeued = asyncio.run(main())
    missing = sorted(set(ids or []) - set(requeued))
    if missing:
        typer.echo(
            f"不是死信、未改动 not dead letters, left alone: {', '.join(map(str, missing))}"
        )
    typer.echo(f"已重新排队 requeued: {len(requeued)}")
    if missing and not requeued:
        raise typer.Exit(1)
