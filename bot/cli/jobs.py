"""`wecrm jobs`: every job with its last and next run; run one now, or see what it would send.

Needs only the database URL and the company time zone (WECRM_TIMEZONE), never a WeCom secret:
messages a run queues are sent by the relay of the running bot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar
from zoneinfo import ZoneInfo

import typer

from bot.cli.common import fail, load_or_exit, migrated_database
from bot.settings import CompanySettings
from crm_store.clock import Clock, SystemClock
from handlers.kit.jobs import Job, by_name, period_key
from handlers.kit.replies import Reply

if TYPE_CHECKING:
    from bot.runtime.scheduler import Scheduler
    from crm_store.jobs import RunRecord

T = TypeVar("T")

_WEEKDAYS = "一二三四五六日"

JobsSource = Callable[[], Sequence[Job]]


def company_timezone() -> ZoneInfo:
    """WECRM_TIMEZONE, as the bot reads it (settings, never a constant)."""
    return load_or_exit(CompanySettings).tz


def _when(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    clock = f"{local:%H:%M}" if local.second == 0 else f"{local:%H:%M:%S}"
    return f"{local:%Y-%m-%d} {clock} 周{_WEEKDAYS[local.weekday()]}"


def _reply_lines(reply: Reply) -> list[str]:
    to = ", ".join((reply.to_user, *reply.extra_to))
    if reply.card is not None:
        card = reply.card
        body = [card.title, card.description, *(f"{k}：{v}" for k, v in card.lines)]
        body += [f"[{b.text}]" for b in card.buttons]
    else:
        body = reply.content.splitlines()
    return [f"→ {to} ({reply.kind})", *(f"    {line}" for line in body if line)]


def jobs_app(*, jobs: JobsSource | None = None, clock: Clock | None = None) -> typer.Typer:
    """The `jobs` command group; tests hand in their own jobs and a fake clock."""
    app = typer.Typer(
        help="Scheduled jobs: last and next runs; run one now.", no_args_is_help=True
    )

    def declared() -> dict[str, Job]:
        if jobs is not None:
            return by_name(jobs())
        from bot.runtime.scheduler import registered_jobs

        return by_name(registered_jobs())

    def now_clock() -> Clock:
        return clock or SystemClock()

    def now() -> datetime:
        return now_clock().now()

    @app.command("list")
    def list_jobs() -> None:
        """Each job: schedule in words, workdays only, last run with counts, next run."""
        url = migrated_database()
        tz = company_timezone()
        found = declared()
        moment = now()
        last = asyncio.run(_last_runs(url, list(found)))
        for job in found.values():
            typer.echo(f"{job.name}  ({job.audience or '-'})")
            typer.echo(f"  schedule:      {job.schedule.describe()}")
            typer.echo(
                f"  workdays only: {'yes (中国法定节假日与调休)' if job.workdays_only else 'no'}"
            )
            if not job.schedule.is_interval:
                typer.echo(f"  grace:         {job.grace}")
            record = last.get(job.name)
            if record is None:
                typer.echo("  last run:      never")
            else:
                typer.echo(
                    f"  last run:      {_when(record.period, tz)} {record.status}"
                    f" ({record.trigger}, {record.worker}): {record.items} item(s), "
                    f"{record.recipients} recipient(s), {record.queued} message(s) queued"
                )
            upcoming = job.next_after(moment, tz)
            typer.echo(f"  next run:      {_when(upcoming, tz) if upcoming else 'none scheduled'}")

    @app.command("run")
    def run_job(
        name: Annotated[str, typer.Argument(help="The job's name, as `wecrm jobs list` shows.")],
        day: Annotated[
            str | None,
            typer.Option(
                "--date",
                help="Run that day's period (YYYY-MM-DD): the latest one already due, "
                "else its first.",
            ),
        ] = None,
        dry_run: Annotated[
            bool,
            typer.Option("--dry-run", help="Print what would be sent to whom; write nothing."),
        ] = False,
    ) -> None:
        """Run one job now, for its latest period or one day's; sent once per recipient."""

        found = declared()
        job = found.get(name)
        if job is None:
            raise fail(f"no job named {name!r}; jobs: {', '.join(found) or 'none'}")
        url = migrated_database()
        tz = company_timezone()
        moment = now()
        period = _pick_period(job, day, moment, tz)
        if dry_run:
            items = asyncio.run(
                _with_scheduler(url, job, tz, now_clock(), lambda s: s.preview(job, period))
            )
            for item in items:
                for line in _reply_lines(item.reply):
                    typer.echo(line)
            people = {u for i in items for u in (i.reply.to_user, *i.reply.extra_to)}
            typer.echo(
                f"dry run of {job.name} for {period_key(period)}: {len(items)} item(s) for "
                f"{len(people)} recipient(s); nothing was written"
            )
            return
        outcome = asyncio.run(
            _with_scheduler(url, job, tz, now_clock(), lambda s: s.run_now(job, period))
        )
        typer.echo(
            f"ran {job.name} for {period_key(period)}: {outcome.items} item(s) for "
            f"{outcome.recipients} recipient(s), {outcome.queued} new message(s) queued "
            "(messages queued by an earlier run of this period are not repeated)"
        )

    return app


def _pick_period(job: Job, day: str | None, moment: datetime, tz: ZoneInfo) -> datetime:
    if day is None:
        period = job.latest_at_or_before(moment, tz)
        if period is None:
            raise fail(f"{job.name} has not been due in the last year; use --date")
        return period
    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        raise fail(f"--date {day!r}: expected YYYY-MM-DD") from None
    try:
        periods = job.on_date(wanted, tz)
    except ValueError as exc:
        raise fail(f"--date does not apply: {exc}") from None
    if not periods:
        upcoming = job.next_after(datetime.combine(wanted, datetime.min.time(), tzinfo=tz), tz)
        hint = f"; its next run after that is {_when(upcoming, tz)}" if upcoming else ""
        raise fail(f"{job.name} ({job.describe()}) has no run on {wanted}{hint}")
    due = [p for p in periods if p <= moment]
    return due[-1] if due else periods[0]


async def _last_runs(url: str, names: list[str]) -> dict[str, RunRecord]:
    from crm_store import jobs as job_runs
    from crm_store.session import create_engine, session_factory

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            found: dict[str, RunRecord] = {}
            for name in names:
                record = await job_runs.last_run(session, job=name)
                if record is not None:
                    found[name] = record
            return found
    finally:
        await engine.dispose()


async def _with_scheduler(
    url: str, job: Job, tz: ZoneInfo, clock: Clock, work: Callable[[Scheduler], Awaitable[T]]
) -> T:
    """A scheduler of this one job on its own engine, as `wecrm` runs outside the bot."""
    from bot.cache import LocalCache, Notifier
    from bot.runtime.leases import default_holder_id
    from bot.runtime.scheduler import Scheduler
    from crm_store.session import create_engine, session_factory

    engine = create_engine(url)
    try:
        scheduler = Scheduler(
            sessions=session_factory(engine),
            clock=clock,
            tz=tz,
            notifier=Notifier(LocalCache()),
            jobs=[job],
            worker_id=default_holder_id("cli"),
        )
        return await work(scheduler)
    finally:
        await engine.dispose()


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app(), name="jobs")
