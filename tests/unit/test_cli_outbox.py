"""`wecrm outbox list` and `wecrm outbox retry` on a migrated SQLite file."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from bot.cli.main import app
from bot.cli.outbox import age
from crm_store.clock import SystemClock
from crm_store.migrate import upgrade
from crm_store.models import OutboxMessage
from crm_store.queues import outbox
from crm_store.session import create_engine, session_factory


def wecrm(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["outbox", *args], env={"WECRM_DATABASE_URL": url})


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Three owed messages: one pending, two dead letters (config error, gave up)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    now = SystemClock().now()

    async def seed() -> None:
        engine = create_engine(url)
        async with session_factory(engine).begin() as session:
            for n, user in enumerate(["zhangsan", "lisi", "wangwu"]):
                await outbox.enqueue(
                    session,
                    dedup_key=f"k{n}",
                    to_user=user,
                    msgtype="text",
                    payload={"touser": user, "msgtype": "text", "text": {"content": "你好"}},
                    now=now - timedelta(hours=3),
                )
            claimed = await outbox.claim_due(
                session, relay_id="r", now=now, lease=timedelta(seconds=10), limit=10
            )
            by_user = {c.to_user: c for c in claimed}
            await outbox.reschedule(
                session, reply=by_user["zhangsan"], at=now + timedelta(minutes=5), error="-1"
            )
            await outbox.mark_dead(
                session, reply=by_user["lisi"], now=now, reason="errcode 60020: untrusted IP"
            )
            await outbox.mark_dead(
                session, reply=by_user["wangwu"], now=now, reason="gave up after 48 h"
            )
        await engine.dispose()

    asyncio.run(seed())
    return url


def rows(url: str) -> dict[str, tuple[str, int]]:
    async def run() -> dict[str, tuple[str, int]]:
        engine = create_engine(url)
        async with session_factory(engine)() as session:
            found = await session.execute(
                select(OutboxMessage.to_user, OutboxMessage.status, OutboxMessage.attempts)
            )
            result = {user: (status, attempts) for user, status, attempts in found.all()}
        await engine.dispose()
        return result

    return asyncio.run(run())


def ids(url: str) -> dict[str, int]:
    async def run() -> dict[str, int]:
        engine = create_engine(url)
        async with session_factory(engine)() as session:
            found = await session.execute(select(OutboxMessage.to_user, OutboxMessage.id))
            result = {user: row_id for user, row_id in found.all()}
        await engine.dispose()
        return result

    return asyncio.run(run())


def test_list_shows_what_is_owed_with_reason_and_age(db_url: str) -> None:
    result = wecrm(db_url, "list")
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.strip().splitlines()
    assert header.split()[:6] == ["id", "to", "type", "status", "attempts", "age"]
    assert [line.split()[1] for line in lines] == ["zhangsan", "lisi", "wangwu"]
    assert "60020: untrusted IP" in result.output
    assert "3h00m" in result.output


def test_list_dead_and_limit(db_url: str) -> None:
    result = wecrm(db_url, "list", "--dead")
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in result.stdout.strip().splitlines()[1:]] == [
        "lisi",
        "wangwu",
    ]
    limited = wecrm(db_url, "list", "--dead", "--limit", "1")
    assert len(limited.stdout.strip().splitlines()) == 2


def test_retry_one_dead_letter_resets_its_attempts(db_url: str) -> None:
    lisi = ids(db_url)["lisi"]
    result = wecrm(db_url, "retry", str(lisi))
    assert result.exit_code == 0, result.output
    assert "requeued: 1" in result.output
    assert rows(db_url) == {
        "zhangsan": ("pending", 1),
        "lisi": ("pending", 0),
        "wangwu": ("dead", 1),
    }


def test_retry_all_and_refusals(db_url: str) -> None:
    zhangsan = ids(db_url)["zhangsan"]
    refused = wecrm(db_url, "retry", str(zhangsan))
    assert refused.exit_code == 1 and "not dead letters" in refused.output
    assert wecrm(db_url, "retry").exit_code == 2  # neither ids nor --all
    result = wecrm(db_url, "retry", "--all")
    assert result.exit_code == 0 and "requeued: 2" in result.output
    assert {status for status, _ in rows(db_url).values()} == {"pending"}
    assert "no dead letters" in wecrm(db_url, "list", "--dead").output


def test_an_unmigrated_database_is_refused(tmp_path: Path) -> None:
    result = wecrm(f"sqlite:///{tmp_path / 'empty.db'}", "list")
    assert result.exit_code == 2


def test_age_is_short() -> None:
    assert [age(timedelta(seconds=s)) for s in (5, 125, 7500, 200_000)] == [
        "5s",
        "2m",
        "2h05m",
        "2d07h",
    ]
