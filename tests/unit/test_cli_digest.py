"""`wecrm digest --to USERID`: the same digest as chat, printed or drawn, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from bot.cli.digest import digest_command
from bot.cli.main import app as wecrm_app
from crm_store.clock import FakeClock
from crm_store.models import OutboxMessage
from crm_store.session import create_engine, session_factory
from tests.store.conftest import build_org


def seeded(url: str) -> FakeClock:
    """The store tests' org: every customer and deal created 2026-11-20 18:00 in Shanghai."""
    clock = FakeClock()

    async def seed() -> None:
        engine = create_engine(url)
        await build_org(session_factory(engine), clock)
        await engine.dispose()

    asyncio.run(seed())
    return clock


def run(url: str, clock: FakeClock | None, *args: str) -> Result:
    app = typer.Typer()
    app.command("digest")(digest_command(clock))
    app.command("noop")(lambda: None)  # two commands, so `digest` is a subcommand as in wecrm
    env = {"WECRM_DATABASE_URL": url, "WECRM_TIMEZONE": "Asia/Shanghai"}
    return CliRunner().invoke(app, ["digest", *args], env=env)


def test_markdown_preview_is_the_subtree_digest_and_sends_nothing(db_url: str) -> None:
    clock = seeded(db_url)
    result = run(db_url, clock, "--to", "lizz", "--date", "2026-11-20")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("**日报 11月20日（周五）**")
    assert "张三" in result.stdout and "钱七" not in result.stdout

    async def queued() -> int:
        engine = create_engine(db_url)
        async with session_factory(engine)() as session:
            found = await session.scalar(select(func.count()).select_from(OutboxMessage))
        await engine.dispose()
        return int(found or 0)

    assert asyncio.run(queued()) == 0


def test_png_preview_writes_the_chart(db_url: str, tmp_path: Path) -> None:
    clock = seeded(db_url)
    target = tmp_path / "digest.png"
    result = run(
        db_url, clock, "--to", "wangjl", "--week", "--format", "png", "--out", str(target)
    )
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_preview_explains_what_it_cannot_do(db_url: str) -> None:
    clock = seeded(db_url)
    unknown = run(db_url, clock, "--to", "nobody")
    assert unknown.exit_code == 2 and "no active person" in unknown.output
    future = run(db_url, clock, "--to", "lizz", "--date", "明天")
    assert future.exit_code == 2 and "not a day" in future.output
    picture = run(db_url, clock, "--to", "lizz", "--format", "png")
    assert picture.exit_code == 2 and "needs --out" in picture.output


def test_the_real_command_is_registered() -> None:
    result = CliRunner().invoke(wecrm_app, ["digest", "--help"])
    assert result.exit_code == 0 and "--to" in result.output
