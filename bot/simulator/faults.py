"""Queued faults per endpoint: errcodes, HTTP errors, slow answers and dropped connections."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from bot.simulator.errors import normalize_path

__all__ = ["Fault", "FaultPlan"]

FaultKind = Literal["errcode", "http", "delay", "drop"]


@dataclass
class Fault:
    """One queued fault and how many more calls it applies to."""

    kind: FaultKind
    value: float
    remaining: int


class FaultPlan:
    """FIFO of faults per path; each call to that path consumes one use of the head fault."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {}

    def add(self, path: str, kind: FaultKind, value: float, times: int) -> None:
        """Queue a fault behind any already queued for the path."""
        if times < 1:
            raise ValueError("times must be at least 1")
        self._queues.setdefault(normalize_path(path), deque()).append(Fault(kind, value, times))

    def take(self, path: str) -> Fault | None:
        """The fault to apply to this call, if any."""
        queue = self._queues.get(path)
        if not queue:
            return None
        head = queue[0]
        head.remaining -= 1
        if head.remaining == 0:
            queue.popleft()
        return head

    def pending(self, path: str) -> int:
        """How many calls to `path` will still be faulted."""
        return sum(f.remaining for f in self._queues.get(normalize_path(path), ()))

    def clear(self) -> None:
        """Forget every queued fault."""
        self._queues.clear()
