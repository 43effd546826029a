"""Renewable leases: what a worker or relay holds stays its own while it is alive.

A claim is short (10 s by default) so that a dead process's messages are taken over quickly;
a heartbeat renews the claims its holder is still working on every few seconds, so a slow but
live handler is never overtaken. Finishing still requires holding the lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(seconds=10)
DEFAULT_RENEW_EVERY = 3.0  # seconds: three chances to renew before a 10 s lease runs out

Renew = Callable[[set[int]], Awaitable[set[int]]]
Sleep = Callable[[float], Awaitable[None]]


def default_holder_id(role: str) -> str:
    """Unique per process and per instance: releasing "all I hold" must never touch another's."""
    return f"{role}-{socket.gethostname()[:24]}-{os.getpid()}-{secrets.token_hex(3)}"


class Heartbeat:
    """Renews the leases on `held` every `every` seconds until cancelled.

    `sleep` is injectable so that tests drive the beats by hand with a fake clock.
    """

    def __init__(self, renew: Renew, *, every: float, sleep: Sleep = asyncio.sleep) -> None:
        self.held: set[int] = set()
        self.lost: set[int] = set()
        self.beats = 0
        self._renew = renew
        self._every = every
        self._sleep = sleep

    async def beat(self) -> None:
        """Renew everything held now; ids whose lease another holder took are noted as lost."""
        snapshot = set(self.held)
        if snapshot:
            kept = await self._renew(snapshot)
            # Finished while the renewal ran: not lost, just no longer held.
            lost = (snapshot - kept) & self.held
            if lost:
                log.warning("lease lost on %d row(s); another holder took them over", len(lost))
                self.lost |= lost
        self.beats += 1

    async def run(self) -> None:
        while True:
            await self._sleep(self._every)
            try:
                await self.beat()
            except Exception:  # the database may be away for a moment; try again next beat
                log.exception("lease renewal failed")
