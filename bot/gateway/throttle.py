"""Rate-limited logging: a flood of bad requests costs one line per reason per interval."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Window:
    started: float
    suppressed: int = 0


class LogThrottle:
    """Log the first occurrence of each reason per interval and count the rest.

    The next line for a reason reports how many were suppressed before it, so nothing is
    silently lost. Reasons are our own constant strings; the table is capped all the same.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = 60.0,
        level: int = logging.WARNING,
        monotonic: Callable[[], float] = time.monotonic,
        max_reasons: int = 256,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._level = level
        self._monotonic = monotonic
        self._max_reasons = max_reasons
        self._windows: dict[str, _Window] = {}

    def log(self, reason: str, detail: str = "") -> bool:
        """Log `reason` (and `detail`) unless logged within the interval; True if it was."""
        now = self._monotonic()
        window = self._windows.get(reason)
        if window is not None and now - window.started < self._interval:
            window.suppressed += 1
            return False
        if window is None and len(self._windows) >= self._max_reasons:
            self._windows.clear()
        suppressed = window.suppressed if window is not None else 0
        self._windows[reason] = _Window(started=now)
        message = f"{reason}: {detail}" if detail else reason
        if suppressed:
            message += f" ({suppressed} more in the previous {self._interval:g} s)"
        self._logger.log(self._level, "%s", message)
        return True

    def suppressed(self, reason: str) -> int:
        """How many occurrences of `reason` the current interval has swallowed so far."""
        window = self._windows.get(reason)
        return window.suppressed if window is not None else 0
