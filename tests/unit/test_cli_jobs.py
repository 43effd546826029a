"""`wecrm jobs list` and `wecrm jobs run [--date] [--dry-run]` on both databases, no secrets."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import typer
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from bot.cli.jobs import jobs_app
from bot.cli.main import app as wecrm_app
from crm_store.clock import FakeClock
from crm_store.models import JobRun, OutboxMessage
from crm_store.session import create_engine, session_factory
from tests.e2e.demo_jobs import Calls, demo_jobs

THURSDAY_NOON = datetime.fromisoformat("2026-10-08T12:00+08:00")


def query(url: str, statement: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(url)
        async with session_factory(engine)() as session:
            result = await session.scalar(statement)
        await engine.dispose()
        return result

    return asyncio.run(run())


def cli(calls: Calls, clock: FakeClock) -> typer.Typer:
    app = typer.Typer()
    app.add_typer(jobs_app(jobs=lambda: demo_jobs(calls), clock=clock), name="jobs")
    return app


def run(app: typer.Typer, url: str, *args: str) -> Result:
    # No WECOM_* variables: the jobs commands must not need them.
    env = {"WECRM_DATABASE_URL": url, "WECRM_TIMEZONE": "Asia/Shanghai"}
    return CliRunner().invoke(app, ["jobs", *args], env=env)


def test_list_shows_schedules_last_and_next_runs(db_url: str) -> None:
    calls, clock = Calls(), FakeClock(THURSDAY_NOON)
    app = cli(calls, clock)
    listed = run(app, db_url, "list")
    assert listed.exit_code == 0, listed.output
    assert "demo.morning  (tests.demo)" in listed.output
    assert "每天 09:00" in listed.output and "workdays only: yes" in listed.output
    assert "周一至周五 18:30 (cron 30 18 * * 1-5)" in listed.output
    assert "last run:      never" in listed.output
    assert "next run:      2026-10-08 18:30 周四" in listed.output  # the evening cron
    assert "next run:      2026-10-09 09:00 周五" in listed.output  # the morning note
    assert "next run:      2026-10-12 10:00 周一" in listed.output  # the Monday summary
    ran = run(app, db_url, "run", "demo.morning")
    assert ran.exit_code == 0, ran.output
    assert "ran demo.morning for 2026-10-08T09:00+08:00: 2 item(s) for 2 recipient(s)" in (
        ran.output
    )
    listed = run(app, db_url, "list")
    assert "last run:      2026-10-08 09:00 周四 done (manual, cli-" in listed.output
    assert "2 item(s), 2 recipient(s), 2 message(s) queued" in listed.output


def test_dry_run_prints_who_gets_what_and_writes_nothing(db_url: str) -> None:
    calls, clock = Calls(), FakeClock(THURSDAY_NOON)
    dry = run(cli(calls, clock), db_url, "run", "demo.monday", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "→ zhangsan (text)" in dry.output and "今天没有待办" in dry.output
    # The latest Monday 10:00 before Thursday 10-08 is 10-05 (a holiday: not workdays-only).
    assert "dry run of demo.monday for 2026-10-05T10:00+08:00: 1 item(s) for 1 recipient(s)" in (
        dry.output
    )
    assert query(db_url, select(func.count()).select_from(OutboxMessage)) == 0
    assert query(db_url, select(func.count()).select_from(JobRun)) == 0


def test_run_by_date_picks_that_days_period_and_sends_once(db_url: str) -> None:
    calls, clock = Calls(), FakeClock(THURSDAY_NOON)
    app = cli(calls, clock)
    saturday = run(app, db_url, "run", "demo.morning", "--date", "2026-10-10", "--dry-run")
    assert "for 2026-10-10T09:00+08:00" in saturday.output  # a future day: its first period
    for _ in range(2):
        ran = run(app, db_url, "run", "demo.evening", "--date", "2026-10-08")
        assert ran.exit_code == 0, ran.output
    assert "0 new message(s) queued" in ran.output
    assert calls.of("demo.evening") == ["2026-10-08T18:30+08:00"] * 2
    assert query(db_url, select(func.count()).select_from(OutboxMessage)) == 2


def test_run_explains_what_it_cannot_do(db_url: str) -> None:
    calls, clock = Calls(), FakeClock(THURSDAY_NOON)
    app = cli(calls, clock)
    holiday = run(app, db_url, "run", "demo.morning", "--date", "2026-10-06")
    assert holiday.exit_code == 2
    assert "has no run on 2026-10-06" in holiday.output and "2026-10-08 09:00" in holiday.output
    unknown = run(app, db_url, "run", "nope")
    assert unknown.exit_code == 2 and "demo.morning" in unknown.output
    bad = run(app, db_url, "run", "demo.morning", "--date", "10/06")
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    assert calls.seen == []


def test_the_real_command_lists_the_reminder_poll_without_wecom_settings(db_url: str) -> None:
    listed = CliRunner().invoke(
        wecrm_app, ["jobs", "list"], env={"WECRM_DATABASE_URL": db_url, "WECOM_SECRET": ""}
    )
    assert listed.exit_code == 0, listed.output
    assert "reminders  (sales.reminders)" in listed.output and "每 30 秒" in listed.output
    dated = CliRunner().invoke(
        wecrm_app,
        ["jobs", "run", "reminders", "--date", "2026-10-08"],
        env={"WECRM_DATABASE_URL": db_url},
    )
    assert dated.exit_code == 2 and "no dated runs" in dated.output
