"""Jobs declared beside their audience: a name, a wall-clock schedule, a function of a context.

A job fires at *periods*: the scheduled wall-clock moments in the company's time zone (a daily
09:00, a weekly Monday 09:00, a cron expression), optionally only on Chinese working days with
调休 included. Polls (`Schedule.every`) fire at epoch-aligned slots and look back on their own.
The function gets a typed `JobContext` and returns keyed replies; the scheduler in `bot/` makes
each run once per job, period and recipient.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import chinese_calendar
from croniter import croniter
from sqlalchemy.ext.asyncio import AsyncSession

import templates
from crm_store.clock import Clock
from handlers.kit.replies import Card, Reply, card_reply, text_reply

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=6)  # a period missed by longer than this is skipped, not sent
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,47}")
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_WEEKDAY_NAMES = "一二三四五六日"
_FIXED_HOLIDAYS = {(1, 1), (5, 1), (10, 1), (10, 2), (10, 3)}  # fallback past chinesecalendar
_years_without_data: set[int] = set()
_TINY = timedelta(microseconds=1)
_SEARCH_DAYS = 400  # how far ahead or back a workday-only schedule is searched for its next run

ScheduleKind = Literal["daily", "weekly", "cron", "every"]


def is_workday(day: date) -> bool:
    """A Chinese working day, 调休 included; past the calendar's data, Mon-Fri minus fixed days."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # chinesecalendar has no data for this year yet
        if day.year not in _years_without_data:
            _years_without_data.add(day.year)
            log.warning(
                "chinesecalendar has no holidays for %d: workday-only jobs assume Mon-Fri "
                "minus fixed holidays until the package is upgraded",
                day.year,
            )
        return day.weekday() < 5 and (day.month, day.day) not in _FIXED_HOLIDAYS


def period_key(period: datetime) -> str:
    """The period as written in keys and logs: local ISO time, e.g. 2026-12-04T18:30+08:00."""
    whole_minute = period.second == 0 and period.microsecond == 0
    return period.isoformat(timespec="minutes" if whole_minute else "seconds")


def _clock(text: str) -> time:
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    return time(int(match[1]), int(match[2]))


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


@dataclass(frozen=True)
class Schedule:
    """When a job fires, in the company's wall-clock time (or every N seconds for a poll)."""

    kind: ScheduleKind
    times: tuple[time, ...] = ()
    weekdays: tuple[int, ...] = ()  # 0 = Monday, as datetime.weekday()
    expression: str = ""
    interval: timedelta = timedelta(0)

    @classmethod
    def daily(cls, *times: str) -> Schedule:
        """Every day at the given times, e.g. `Schedule.daily("09:00", "18:30")`."""
        if not times:
            raise ValueError("a daily schedule needs at least one time")
        return cls("daily", times=tuple(sorted({_clock(t) for t in times})))

    @classmethod
    def weekly(cls, weekdays: int | Iterable[int], *times: str) -> Schedule:
        """On the given weekdays (0 = Monday) at the given times, e.g. `weekly(0, "09:00")`."""
        days = (weekdays,) if isinstance(weekdays, int) else tuple(weekdays)
        if not days or any(d not in range(7) for d in days):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        if not times:
            raise ValueError("a weekly schedule needs at least one time")
        return cls(
            "weekly",
            times=tuple(sorted({_clock(t) for t in times})),
            weekdays=tuple(sorted(set(days))),
        )

    @classmethod
    def cron(cls, expression: str) -> Schedule:
        """A five-field cron expression in the company's zone, e.g. "30 18 * * 1-5"."""
        expression = " ".join(expression.split())
        if len(expression.split(" ")) != 5 or not croniter.is_valid(expression):
            raise ValueError(f"not a five-field cron expression: {expression!r}")
        return cls("cron", expression=expression)

    @classmethod
    def every(cls, interval: timedelta) -> Schedule:
        """A poll: fires at every epoch-aligned slot of `interval` (whole seconds)."""
        seconds = interval.total_seconds()
        if seconds < 1 or not seconds.is_integer():
            raise ValueError("an interval is a whole number of seconds, at least one")
        return cls("every", interval=interval)

    @property
    def is_interval(self) -> bool:
        return self.kind == "every"

    def fire_times(self, after: datetime, until: datetime, tz: ZoneInfo) -> list[datetime]:
        """Periods in (after, until], local to `tz`; a poll gives only its latest slot."""
        if until <= after:
            return []
        if self.kind == "every":
            slot = self._slot(until, tz)
            return [slot] if slot > after else []
        if self.kind == "cron":
            found: list[datetime] = []
            runner = croniter(self.expression, after.astimezone(tz))
            while (moment := runner.get_next(datetime)) <= until:
                found.append(moment)
            return found
        return [
            moment
            for day in _days(after.astimezone(tz).date(), until.astimezone(tz).date())
            for moment in self._on(day, tz)
            if after < moment <= until
        ]

    def next_after(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """The first period strictly after `moment`, local to `tz`."""
        if self.kind == "every":
            return self._slot(moment, tz) + self.interval
        if self.kind == "cron":
            found: datetime = croniter(self.expression, moment.astimezone(tz)).get_next(datetime)
            return found
        start = moment.astimezone(tz).date()
        for day in _days(start, start + timedelta(days=7)):
            for candidate in self._on(day, tz):
                if candidate > moment:
                    return candidate
        raise AssertionError("a daily or weekly schedule fires within eight days")

    def describe(self) -> str:
        """The schedule in words for `wecrm jobs list`."""
        clocks = "、".join(f"{t:%H:%M}" for t in self.times)
        if self.kind == "daily":
            return f"每天 {clocks}"
        if self.kind == "weekly":
            return f"每{_weekday_words(self.weekdays)} {clocks}"
        if self.kind == "cron":
            return _describe_cron(self.expression)
        seconds = int(self.interval.total_seconds())
        for unit, size in (("小时", 3600), ("分钟", 60)):
            if seconds % size == 0:
                return f"每 {seconds // size} {unit}"
        return f"每 {seconds} 秒"

    def _on(self, day: date, tz: ZoneInfo) -> list[datetime]:
        if self.kind == "weekly" and day.weekday() not in self.weekdays:
            return []
        return [datetime.combine(day, t, tzinfo=tz) for t in self.times]

    def _slot(self, moment: datetime, tz: ZoneInfo) -> datetime:
        seconds = int(self.interval.total_seconds())
        epoch = int(moment.timestamp())
        return datetime.fromtimestamp(epoch - epoch % seconds, UTC).astimezone(tz)


def _days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _weekday_words(days: Iterable[int]) -> str:
    days = sorted(set(days))
    if len(days) >= 3 and days == list(range(days[0], days[-1] + 1)):
        return f"周{_WEEKDAY_NAMES[days[0]]}至周{_WEEKDAY_NAMES[days[-1]]}"
    return "、".join(f"周{_WEEKDAY_NAMES[d]}" for d in days)


def _describe_cron(expression: str) -> str:
    """Plain words for the common "M H * * DOW" shape; the expression itself is always shown."""
    minute, hour, dom, month, dow = expression.split(" ")
    plain = re.compile(r"\d+(,\d+)*")
    if not (plain.fullmatch(minute) and plain.fullmatch(hour) and dom == "*" and month == "*"):
        return f"cron {expression}"
    clocks = "、".join(
        f"{int(h):02d}:{int(m):02d}"
        for h in sorted(hour.split(","), key=int)
        for m in sorted(minute.split(","), key=int)
    )
    if dow == "*":
        return f"每天 {clocks} (cron {expression})"
    expanded: list[Any] = croniter(expression).expanded[4]
    # cron counts Sunday as 0 (or 7); datetime counts Monday as 0.
    days = {(int(d) - 1) % 7 for d in expanded if d != "*"}
    return f"{_weekday_words(days)} {clocks} (cron {expression})"


@dataclass(frozen=True)
class Scheduled:
    """A reply and the key that makes it once-only across workers and re-runs."""

    key: str
    reply: Reply


@dataclass(frozen=True)
class JobContext:
    """What a job's function gets: one typed object, as a handler gets HandlerContext."""

    session: AsyncSession
    clock: Clock
    tz: ZoneInfo
    job: str
    period: datetime  # the scheduled fire time, local to tz
    now: datetime  # when this run happens (UTC): later than the period when caught up

    @property
    def period_key(self) -> str:
        return period_key(self.period)

    def local_now(self) -> datetime:
        return self.now.astimezone(self.tz)

    def render(self, template: str, /, **variables: Any) -> str:
        return templates.render(template, **variables)

    def reply(self, to_user: str, template: str, /, **variables: Any) -> Reply:
        """A message to `to_user`, rendered from templates/<template>."""
        return text_reply(to_user, template, **variables)

    def card(self, to_user: str, card: Card) -> Reply:
        return card_reply(to_user, card)


JobFn = Callable[[JobContext], Awaitable[list[Scheduled]]]


@dataclass(frozen=True)
class Job:
    """A named schedule and the function it runs; declared with `@router.job(...)`."""

    name: str
    schedule: Schedule
    fn: JobFn
    workdays_only: bool = False
    grace: timedelta = DEFAULT_GRACE
    audience: str = ""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"job names are lower-case words up to 48 characters: {self.name!r}")
        if self.grace < timedelta(0):
            raise ValueError("a job's grace window cannot be negative")

    def fire_times(self, after: datetime, until: datetime, tz: ZoneInfo) -> list[datetime]:
        """Periods in (after, until], working days only when the job says so."""
        found = self.schedule.fire_times(after, until, tz)
        return [p for p in found if not self.workdays_only or is_workday(p.date())]

    def next_after(self, moment: datetime, tz: ZoneInfo) -> datetime | None:
        """The next period after `moment`; None if none falls within a year or so."""
        for _ in range(_SEARCH_DAYS * 2):
            candidate = self.schedule.next_after(moment, tz)
            if not self.workdays_only or is_workday(candidate.date()):
                return candidate
            # Not a working day: go on from the end of that day, not from one slot later.
            moment = _local_midnight(candidate.date() + timedelta(days=1), tz) - _TINY
        return None

    def latest_at_or_before(self, moment: datetime, tz: ZoneInfo) -> datetime | None:
        """The most recent period at or before `moment` (what `wecrm jobs run NAME` runs)."""
        for days in (1, 8, 32, _SEARCH_DAYS):
            found = self.fire_times(moment - timedelta(days=days), moment, tz)
            if found:
                return found[-1]
        return None

    def on_date(self, day: date, tz: ZoneInfo) -> list[datetime]:
        """Every period on one local date (a poll has none to name)."""
        if self.schedule.is_interval:
            raise ValueError(f"{self.name} runs {self.schedule.describe()}: it has no dated runs")
        start = _local_midnight(day, tz) - _TINY
        end = _local_midnight(day + timedelta(days=1), tz) - _TINY
        return self.fire_times(start, end, tz)

    def describe(self) -> str:
        return self.schedule.describe() + ("，仅工作日" if self.workdays_only else "")


def by_name(jobs: Iterable[Job]) -> dict[str, Job]:
    """Jobs keyed by name; two jobs of one name would share their once-only keys, so refuse."""
    found: dict[str, Job] = {}
    for job in jobs:
        if job.name in found:
            raise ValueError(f"two jobs are named {job.name!r}")
        found[job.name] = job
    return found


def declare(
    jobs: list[Job],
    name: str,
    schedule: Schedule,
    *,
    workdays_only: bool = False,
    grace: timedelta = DEFAULT_GRACE,
    audience: str = "",
) -> Callable[[JobFn], JobFn]:
    """The decorator behind `Router.job`: append a Job running the decorated function."""

    def register(fn: JobFn) -> JobFn:
        jobs.append(Job(name, schedule, fn, workdays_only, grace, audience))
        return fn

    return register
