"""The business-hours clock on the Chinese calendar, and SLA clocks that pause and warn."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from crm_store import sla
from crm_store.models.service import Ticket, TicketSla

TZ = ZoneInfo("Asia/Shanghai")
HOURS = sla.BusinessHours(TZ)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


def test_within_one_day() -> None:
    assert HOURS.add(local(2026, 11, 24, 10), 3600) == local(2026, 11, 24, 11)


def test_nights_are_skipped() -> None:
    assert HOURS.add(local(2026, 11, 24, 17), 2 * 3600) == local(2026, 11, 25, 10)


def test_a_start_outside_hours_begins_next_morning() -> None:
    assert HOURS.add(local(2026, 11, 24, 20), 3600) == local(2026, 11, 25, 10)


def test_weekends_are_skipped() -> None:
    assert HOURS.add(local(2026, 11, 27, 17), 2 * 3600) == local(2026, 11, 30, 10)  # Fri → Mon


def test_national_day_holidays_are_skipped() -> None:
    # 2025: 1–8 October off, Sunday 28 September and Saturday 11 October are 调休 workdays.
    assert HOURS.add(local(2025, 9, 30, 17), 2 * 3600) == local(2025, 10, 9, 10)


def test_a_tiaoxiu_saturday_counts() -> None:
    assert sla.is_workday(local(2025, 10, 11).date())
    assert HOURS.add(local(2025, 10, 10, 17), 2 * 3600) == local(2025, 10, 11, 10)


def test_between_is_the_inverse_of_add() -> None:
    start = local(2025, 9, 30, 15, 30)
    for seconds in (60, 3600, 9 * 3600, 40 * 3600):
        assert HOURS.between(start, HOURS.add(start, seconds)) == seconds


def test_split_hours_skip_lunch() -> None:
    hours = sla.BusinessHours(TZ, sla.parse_hours("09:00-12:00,13:30-18:00"))
    assert hours.day_seconds == 7.5 * 3600
    assert hours.add(local(2026, 11, 24, 11, 30), 3600) == local(2026, 11, 24, 14, 0)


@pytest.mark.parametrize("bad", ["9-18", "18:00-09:00", "09:00-12:00,11:00-13:00", "25:00-26:00"])
def test_bad_hours_are_refused(bad: str) -> None:
    with pytest.raises(sla.SlaConfigError):
        sla.parse_hours(bad)


def test_a_business_day_target_is_one_working_day() -> None:
    rule = sla.parse_duration("1d", business=True)
    assert rule.seconds(HOURS) == 9 * 3600
    assert sla.parse_duration("1d", business=False).seconds(HOURS) == 86_400


def _ticket(priority: str = "P2") -> Ticket:
    return Ticket(id=1, priority=priority)


def test_pause_while_waiting_moves_the_deadline_by_the_pause() -> None:
    policy = sla.SlaPolicy(TZ)
    clocks: dict[str, TicketSla] = {}
    opened = local(2026, 11, 24, 10).astimezone(UTC)
    clock = sla.start(clocks, _ticket(), "first_response", policy, opened)  # P2: 4 business h
    assert clock.due_at == local(2026, 11, 24, 14)
    assert clock.warn_at == local(2026, 11, 24, 13, 12)  # 80 %
    sla.pause_all(clocks.values(), policy, local(2026, 11, 24, 11))
    assert clock.due_at is None and clock.used_seconds == 3600
    sla.resume_all(clocks.values(), policy, local(2026, 11, 25, 9))  # the customer answered
    assert clock.due_at == local(2026, 11, 25, 12)
    sla.meet(clock, policy, local(2026, 11, 25, 11))
    assert clock.state == "met" and not clock.breached and clock.used_seconds == 3 * 3600


def test_a_late_answer_is_recorded_as_breached() -> None:
    policy = sla.SlaPolicy(TZ)
    clocks: dict[str, TicketSla] = {}
    clock = sla.start(clocks, _ticket("P1"), "first_response", policy, local(2026, 11, 24, 23))
    assert clock.due_at == local(2026, 11, 25, 0)  # P1 runs around the clock
    sla.meet(clock, policy, local(2026, 11, 25, 1))
    assert clock.breached


def test_a_new_priority_keeps_the_time_used() -> None:
    policy = sla.SlaPolicy(TZ)
    ticket = _ticket("P3")
    clocks: dict[str, TicketSla] = {}
    clock = sla.start(clocks, ticket, "resolution", policy, local(2026, 11, 24, 10))
    ticket.priority = "P2"
    sla.rebudget(clocks.values(), ticket, policy, local(2026, 11, 24, 12))
    assert clock.budget_seconds == 9 * 3600 and clock.due_at == local(2026, 11, 25, 10)


def test_default_targets_are_those_of_the_issue() -> None:
    policy = sla.SlaPolicy(TZ)
    assert policy.rule("P1", "first_response").text == "1h"
    assert policy.rule("P2", "resolution").text == "1d"
    assert policy.rule("P4", "resolution").text == "5d"
    assert policy.intervals == ((time(9), time(18)),)
