"""LogThrottle: the first of each reason per interval is logged, the rest are counted."""

from __future__ import annotations

import logging

import pytest

from bot.gateway.throttle import LogThrottle


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_reason_per_interval_and_the_count_of_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    ticker = Ticker()
    throttle = LogThrottle(logging.getLogger("t"), interval=60, monotonic=ticker)
    results = [throttle.log("bad signature") for _ in range(500)]
    results += [throttle.log("malformed body", "not UTF-8") for _ in range(500)]
    assert results.count(True) == 2
    assert [r.getMessage() for r in caplog.records] == [
        "bad signature",
        "malformed body: not UTF-8",
    ]
    assert throttle.suppressed("bad signature") == 499

    ticker.now += 59.9
    assert throttle.log("bad signature") is False
    ticker.now += 0.2
    assert throttle.log("bad signature") is True
    assert caplog.records[-1].getMessage() == "bad signature (500 more in the previous 60 s)"
    assert throttle.suppressed("bad signature") == 0


def test_the_reason_table_stays_bounded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    throttle = LogThrottle(logging.getLogger("t"), monotonic=Ticker(), max_reasons=4)
    for i in range(100):
        throttle.log(f"reason {i}")
    assert len(caplog.records) == 100  # distinct reasons are each worth a line
    assert len(throttle._windows) <= 4
