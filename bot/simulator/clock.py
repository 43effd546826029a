"""A clock the demo can move forward: real time plus an offset, shared by the bot and WeCom.

"09:00 tomorrow" must happen for the bot's scheduler, its SLA clocks, the callback timestamps
and the token expiry at once, so every part of the demo process reads this one clock.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo

from crm_store.clock import Clock, SystemClock

__all__ = ["MovableClock", "next_local"]


class MovableClock:
    """`base` time plus an offset that only grows, so nothing ever sees time run backwards."""

    def __init__(self, base: Clock | None = None, offset: timedelta = timedelta()) -> None:
        if offset < timedelta():
            raise ValueError("a clock offset cannot be negative")
        self._base = base or SystemClock()
        self._offset = offset

    def now(self) -> datetime:
        return self._base.now() + self._offset

    @property
    def offset(self) -> timedelta:
        return self._offset

    def move_to(self, moment: datetime) -> datetime:
        """Jump forward to `moment` (aware); a moment already past is refused."""
        if moment.tzinfo is None:
            raise ValueError("move_to needs an aware datetime")
        gap = moment - self.now()
        if gap <= timedelta():
            raise ValueError("the demo clock only moves forward")
        self._offset += gap
        return self.now()

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta` (positive)."""
        return self.move_to(self.now() + delta)


def next_local(now: datetime, at: time, tz: tzinfo, *, day: str = "next") -> datetime:
    """The wall-clock time `at` in `tz`: "today", "tomorrow", or the "next" one after now."""
    local = now.astimezone(tz)
    if day == "tomorrow":
        date = local.date() + timedelta(days=1)
    elif day in ("today", "next"):
        date = local.date()
    else:
        raise ValueError(f"day must be today, tomorrow or next, not {day!r}")
    moment = datetime.combine(date, at, tzinfo=tz)
    if day == "next" and moment <= local:
        moment = datetime.combine(date + timedelta(days=1), at, tzinfo=tz)
    return moment
