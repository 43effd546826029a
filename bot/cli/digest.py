"""`wecrm digest --to USERID`: the digest that person would get, printed or drawn, never sent.

Needs only the database URL and the company time zone: it reads, writes nothing, and queues
nothing. The same code builds it as the scheduled push and 日报 / 周报 in chat.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli.common import fail, load_or_exit, migrated_database, run_session
from bot.settings import CompanySettings
from crm_store import kpi
from crm_store.clock import Clock, SystemClock
from crm_store.scope import load_scope
from handlers.manager import digest as digests
from handlers.manager.digest import Period
from handlers.manager.periods import parse_day


class Format(StrEnum):
    MARKDOWN = "markdown"
    PNG = "png"


def digest_command(clock: Clock | None = None) -> Callable[..., None]:
    """The `digest` command; tests hand in a fake clock (deals at risk are read "now")."""

    def digest(
        to: Annotated[str, typer.Option("--to", help="The userid whose digest to build.")],
        day: Annotated[
            str, typer.Option("--date", help="The day: YYYY-MM-DD, 今天, 昨天 (default today).")
        ] = "今天",
        week: Annotated[bool, typer.Option("--week", help="The week holding that day.")] = False,
        output: Annotated[
            Format, typer.Option("--format", help="markdown (the message) or png (the chart).")
        ] = Format.MARKDOWN,
        out: Annotated[
            Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
        ] = None,
    ) -> None:
        """Preview a digest: the markdown as sent, or the chart as a PNG file."""
        url = migrated_database()
        tz = load_or_exit(CompanySettings).tz
        now = (clock or SystemClock()).now()
        when = parse_day(day, now.astimezone(tz).date())
        if when is None:
            raise fail(
                f"--date {day}: not a day (YYYY-MM-DD, 今天, 昨天, 前天; not in the future)"
            )
        period = Period.WEEK if week else Period.DAY
        if output is Format.PNG and out is None:
            raise fail("--format png needs --out FILE (a picture is not for the terminal)")

        async def build(session: AsyncSession) -> kpi.Digest | None:
            scope = await load_scope(session, to, now=now)
            if scope is None:
                return None
            return await digests.build(session, scope, period=period, day=when, tz=tz)

        found = run_session(url, build, commit=False)
        if found is None:
            raise fail(f"--to {to}: no active person with that userid")
        title = digests.title_of(found, period)
        if output is Format.PNG:
            assert out is not None
            from handlers.manager.chart import NoCjkFont, render_chart

            try:
                out.write_bytes(render_chart(found, title=title))
            except NoCjkFont as error:
                raise fail(str(error)) from error
            print(f"wrote {out}", file=sys.stderr)
            return
        parts = digests.sections(found, period=period, tz=tz)
        text = digests.markdown(parts) if parts else f"{title}：没有新的动态（不会推送）"
        if out is None:
            print(text)
        else:
            out.write_text(text + "\n", encoding="utf-8")
            print(f"wrote {out}", file=sys.stderr)

    return digest


def register(app: typer.Typer) -> None:
    app.command("digest")(digest_command())
