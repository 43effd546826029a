"""Schedules in the company's wall-clock time, workdays by the Chinese calendar, 调休 included.

The dates are real: in 2026 National Day runs 10-01..10-07 and Saturday 10-10 is a 调休 working
day; Mid-Autumn (Friday 09-25) is a holiday and Sunday 09-20 a 调休 working day.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers.kit import jobs as kit_jobs
from handlers.kit.jobs import Job, JobContext, Schedule, Scheduled, by_name, is_workday, period_key
from handlers.kit.routing import Dispatcher, Router

SH = ZoneInfo("Asia/Shanghai")


def at(day: str, clock: str = "00:00", tz: ZoneInfo = SH) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=tz)


async def nothing(_ctx: JobContext) -> list[Scheduled]:
    return []


def job(schedule: Schedule, **options: object) -> Job:
    return Job("demo", schedule, nothing, **options)  # type: ignore[arg-type]


WEEK_START, WEEK_END = at("2026-10-05"), at("2026-10-12")  # Monday .. next Monday, 00:00


def test_the_calendar_knows_the_holiday_and_the_tiaoxiu_saturday() -> None:
    assert [d.day for d in (date(2026, 10, day) for day in range(5, 12)) if is_workday(d)] == [
        8,
        9,
        10,
    ]
    assert is_workday(date(2026, 9, 20)) and not is_workday(date(2026, 9, 25))


def test_daily_fires_every_day_and_workdays_only_follows_the_calendar() -> None:
    daily = Schedule.daily("18:30", "09:00")
    every_day = job(daily).fire_times(WEEK_START, WEEK_END, SH)
    assert len(every_day) == 14 and every_day[0] == at("2026-10-05", "09:00")
    assert every_day[1] == at("2026-10-05", "18:30")
    workdays = job(daily, workdays_only=True).fire_times(WEEK_START, WEEK_END, SH)
    assert [p.day for p in workdays] == [8, 8, 9, 9, 10, 10]
    assert all(p.tzinfo == SH for p in workdays)


def test_fire_times_are_half_open_after_until() -> None:
    daily = Schedule.daily("09:00")
    nine = at("2026-10-08", "09:00")
    assert daily.fire_times(nine, nine + timedelta(hours=1), SH) == []
    assert daily.fire_times(nine - timedelta(seconds=1), nine, SH) == [nine]


def test_weekly_monday_skips_a_holiday_monday_when_workdays_only() -> None:
    monday = Schedule.weekly(0, "09:00")
    assert [p.date() for p in job(monday).fire_times(at("2026-09-28"), WEEK_END, SH)] == [
        date(2026, 9, 28),
        date(2026, 10, 5),
    ]
    only = job(monday, workdays_only=True)
    assert only.fire_times(at("2026-10-01"), WEEK_END, SH) == []  # 10-05 is a holiday
    assert only.next_after(at("2026-10-01"), SH) == at("2026-10-12", "09:00")


def test_cron_runs_in_the_company_zone_and_combines_with_the_calendar() -> None:
    weekday_evening = Schedule.cron("30 18 * * 1-5")
    plain = job(weekday_evening).fire_times(WEEK_START, WEEK_END, SH)
    assert [p.day for p in plain] == [5, 6, 7, 8, 9]
    assert plain[0] == at("2026-10-05", "18:30") and plain[0].utcoffset() == timedelta(hours=8)
    # Workdays only: the holiday Mon-Wed drop out, and the 调休 Saturday is not in 1-5.
    only = job(weekday_evening, workdays_only=True).fire_times(WEEK_START, WEEK_END, SH)
    assert [p.day for p in only] == [8, 9]


def test_a_poll_fires_at_its_latest_epoch_aligned_slot() -> None:
    poll = Schedule.every(timedelta(seconds=30))
    now = at("2026-10-08", "10:00") + timedelta(seconds=47)
    assert poll.fire_times(now - timedelta(hours=1), now, SH) == [now - timedelta(seconds=17)]
    assert poll.fire_times(now - timedelta(seconds=10), now, SH) == []  # slot already past
    assert poll.next_after(now, SH) == now + timedelta(seconds=13)
    assert poll.is_interval and not Schedule.daily("09:00").is_interval


def test_next_run_of_a_workday_job_crosses_the_holiday() -> None:
    morning = job(Schedule.daily("09:00"), workdays_only=True)
    assert morning.next_after(at("2026-09-30", "10:00"), SH) == at("2026-10-08", "09:00")
    assert morning.next_after(at("2026-10-09", "09:00"), SH) == at("2026-10-10", "09:00")
    poll = job(Schedule.every(timedelta(minutes=5)), workdays_only=True)
    assert poll.next_after(at("2026-10-03", "12:00"), SH) == at("2026-10-08")


def test_latest_and_dated_periods() -> None:
    twice = job(Schedule.daily("09:00", "18:30"), workdays_only=True)
    assert twice.latest_at_or_before(at("2026-10-07", "12:00"), SH) == at("2026-09-30", "18:30")
    assert twice.latest_at_or_before(at("2026-10-08", "09:00"), SH) == at("2026-10-08", "09:00")
    assert twice.on_date(date(2026, 10, 10), SH) == [
        at("2026-10-10", "09:00"),
        at("2026-10-10", "18:30"),
    ]
    assert twice.on_date(date(2026, 10, 11), SH) == []
    with pytest.raises(ValueError, match="no dated runs"):
        job(Schedule.every(timedelta(seconds=30))).on_date(date(2026, 10, 10), SH)


def test_a_year_without_calendar_data_falls_back_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kit_jobs._years_without_data.discard(2099)
    with caplog.at_level(logging.WARNING, logger="handlers.kit.jobs"):
        assert is_workday(date(2099, 1, 2))  # a Friday
        assert not is_workday(date(2099, 1, 1))  # New Year's Day, fixed
        assert not is_workday(date(2099, 1, 3))  # Saturday
    assert sum("2099" in r.getMessage() for r in caplog.records) == 1  # warned once


def test_other_zones_keep_wall_clock_time_across_dst() -> None:
    new_york = ZoneInfo("America/New_York")
    daily = Schedule.daily("09:00")
    found = daily.fire_times(
        at("2026-03-07", tz=new_york), at("2026-03-10", tz=new_york), new_york
    )
    assert [p.hour for p in found] == [9, 9, 9]
    # 2026-03-08: clocks go forward, so that day's 09:00 comes 23 real hours after the last.
    assert found[1].astimezone(UTC) - found[0].astimezone(UTC) == timedelta(hours=23)


def test_descriptions_in_words() -> None:
    assert Schedule.daily("18:30", "09:00").describe() == "每天 09:00、18:30"
    assert Schedule.weekly(0, "09:00").describe() == "每周一 09:00"
    assert Schedule.weekly([0, 2], "9:05").describe() == "每周一、周三 09:05"
    assert Schedule.cron("30 18 * * 1-5").describe() == "周一至周五 18:30 (cron 30 18 * * 1-5)"
    assert Schedule.cron("0 9 * * *").describe() == "每天 09:00 (cron 0 9 * * *)"
    assert Schedule.cron("*/15 9-18 * * *").describe() == "cron */15 9-18 * * *"
    assert Schedule.every(timedelta(seconds=30)).describe() == "每 30 秒"
    assert Schedule.every(timedelta(minutes=5)).describe() == "每 5 分钟"
    assert job(Schedule.daily("09:00"), workdays_only=True).describe() == "每天 09:00，仅工作日"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Schedule.daily(),
        lambda: Schedule.daily("24:00"),
        lambda: Schedule.daily("9点"),
        lambda: Schedule.weekly(7, "09:00"),
        lambda: Schedule.weekly(0),
        lambda: Schedule.cron("61 * * * *"),
        lambda: Schedule.cron("0 0 9 * * *"),
        lambda: Schedule.every(timedelta(0)),
        lambda: Schedule.every(timedelta(seconds=1.5)),
        lambda: job(Schedule.daily("09:00"), grace=timedelta(hours=-1)),
        lambda: Job("Has Spaces", Schedule.daily("09:00"), nothing),
        lambda: Job("a:b", Schedule.daily("09:00"), nothing),
    ],
)
def test_bad_declarations_fail_at_import_time(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_period_keys_are_local_iso_times() -> None:
    assert period_key(at("2026-12-04", "18:30")) == "2026-12-04T18:30+08:00"
    assert period_key(at("2026-12-04", "18:30") + timedelta(seconds=30)) == (
        "2026-12-04T18:30:30+08:00"
    )


def test_routers_declare_jobs_and_the_dispatcher_collects_them() -> None:
    sales, service = (
        Router("sales", audience="sales", title="销售"),
        Router("service", audience="service", title="客服"),
    )

    @sales.job("sales.digest", Schedule.daily("18:30"), workdays_only=True)
    async def digest(_ctx: JobContext) -> list[Scheduled]:
        return []

    service.job("service.sla", Schedule.every(timedelta(minutes=1)), grace=timedelta(0))(nothing)

    found = Dispatcher([sales, service]).jobs
    assert [(j.name, j.audience, j.workdays_only) for j in found] == [
        ("sales.digest", "sales", True),
        ("service.sla", "service", False),
    ]
    assert found[0].fn is digest and found[1].grace == timedelta(0)
    with pytest.raises(ValueError, match="two jobs"):
        by_name([*found, found[0]])


def test_the_reminder_poll_is_declared_on_the_sales_side() -> None:
    from handlers.dispatch import dispatcher

    [reminders] = [j for j in dispatcher().jobs if j.name == "reminders"]
    assert reminders.audience == "sales.reminders"
    assert reminders.schedule == Schedule.every(timedelta(seconds=30))
