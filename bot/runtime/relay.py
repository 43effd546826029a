"""The outbox relay: sends owed messages through WeCom, following PROTOCOL.md §4.8's table.

Per recipient, messages go out in order and under WeCom's 30-a-minute limit (§4.7: excess is
dropped silently, so pacing must happen here). Transient errors back off with jitter; config
errors dead-letter with the reason; a send whose outcome is unknown is retried with WeCom's
duplicate check on, so the person never sees it twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cache import Notifier
from bot.runtime.worker import OUTBOX_CHANNEL, default_worker_id
from bot.wecom.client import WeComClient, WeComError
from crm_store.clock import Clock
from crm_store.queues import outbox
from crm_store.queues.outbox import ClaimedReply

log = logging.getLogger(__name__)

# PROTOCOL.md §4.8: no retry can fix these; a person must change the app's configuration.
CONFIG_ERRORS = {
    40001: "invalid secret (WECOM_SECRET)",
    48002: "API not permitted for this app",
    60011: "recipient outside the app's visible range",
    60020: "server IP not in the app's trusted IPs",
    81013: "no valid recipient (userid/party/tag)",
    82001: "no valid recipient (userid/party/tag)",
    40003: "invalid userid",
    46004: "userid does not exist",
    60111: "userid does not exist",
    44004: "empty content",
    45002: "content too large",
    41001: "access_token missing",
}
RATE_LIMITED = 45009  # back off at least a minute (the minute window, §4.7)
DUPLICATE_CHECK_SECONDS = 1800  # §4.2: default window; covers our longest retry gap
WINDOW = timedelta(seconds=60)
Outcome = Callable[[AsyncSession], Awaitable[None]]


class OutboxRelay:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        client: WeComClient,
        clock: Clock,
        notifier: Notifier,
        relay_id: str | None = None,
        per_user_per_minute: int = 28,
        max_attempts: int = 8,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 32,
        concurrency: int = 8,
        poll_seconds: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.notifier = notifier
        self.relay_id = relay_id or default_worker_id("relay")
        self.per_user_per_minute = per_user_per_minute
        self.max_attempts = max_attempts
        self.lease = lease
        self.batch = batch
        self.poll_seconds = poll_seconds
        self._semaphore = asyncio.Semaphore(concurrency)
        self._rng = rng or random.Random()

    def backoff(self, attempts: int, minimum: float = 1.0) -> timedelta:
        """Exponential with full jitter on the upper half: 1, 2, 4 ... capped at 5 minutes."""
        ceiling = min(300.0, max(minimum, 2.0 ** max(0, attempts - 1)))
        return timedelta(seconds=max(minimum, self._rng.uniform(ceiling / 2, ceiling)))

    async def process_batch(self) -> int:
        """Send what is due now (one message per recipient at a time); returns how many.

        Three short transactions per batch, not per message: claim (with each recipient's
        pacing window), the sends, then every outcome at once. A crash before the last one
        leaves the rows leased; whoever takes them next sends with WeCom's duplicate check.
        """
        now = self.clock.now()
        async with self.sessions.begin() as session:
            claimed = await outbox.claim_due(
                session, relay_id=self.relay_id, now=now, lease=self.lease, limit=self.batch
            )
            windows = await outbox.sent_windows(
                session, users={r.to_user for r in claimed}, since=now - WINDOW
            )
        if not claimed:
            return 0
        outcomes = await asyncio.gather(
            *(self._send_guarded(reply, windows.get(reply.to_user, [])) for reply in claimed)
        )
        async with self.sessions.begin() as session:
            for apply in outcomes:
                if apply is not None:
                    await apply(session)
        return len(claimed)

    async def _send_guarded(self, reply: ClaimedReply, recent: list[datetime]) -> Outcome | None:
        async with self._semaphore:
            try:
                return await self.send(reply, recent)
            except Exception:  # never lose the batch over one row; its lease will expire
                log.exception("relay failed on outbox %s", reply.id)
                return None

    async def send(self, reply: ClaimedReply, recent: list[datetime]) -> Outcome:
        """Send one message; returns the write that records what happened."""
        if len(recent) >= self.per_user_per_minute:
            at = recent[0] + WINDOW
            return lambda s: outbox.reschedule(
                s, reply=reply, at=at, error="paced: per-user minute limit", count_attempt=False
            )
        payload = dict(reply.payload)
        if reply.uncertain:
            payload["enable_duplicate_check"] = 1
            payload["duplicate_check_interval"] = DUPLICATE_CHECK_SECONDS
        try:
            result = await self.client.send_message(payload)
        except WeComError as exc:
            return self._on_wecom_error(reply, exc)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return self._retry(reply, f"transport: {type(exc).__name__}", uncertain=True)
        if result.get("invaliduser"):
            log.warning("WeCom reported invalid recipients for outbox %s", reply.id)
        sent_at = self.clock.now()
        msgid = str(result.get("msgid") or "") or None
        code = str(result.get("response_code") or "") or None
        return lambda s: outbox.mark_sent(
            s, reply=reply, now=sent_at, wecom_msgid=msgid, response_code=code
        )

    def _on_wecom_error(self, reply: ClaimedReply, exc: WeComError) -> Outcome:
        if exc.errcode in CONFIG_ERRORS:
            reason = f"errcode {exc.errcode}: {CONFIG_ERRORS[exc.errcode]}"
            log.error("dead-lettered outbox %s: %s", reply.id, reason)
            now = self.clock.now()
            return lambda s: outbox.mark_dead(s, reply=reply, now=now, reason=reason)
        minimum = 60.0 if exc.errcode == RATE_LIMITED else 1.0
        return self._retry(reply, f"errcode {exc.errcode}", minimum=minimum)

    def _retry(
        self, reply: ClaimedReply, error: str, *, uncertain: bool = False, minimum: float = 1.0
    ) -> Outcome:
        now = self.clock.now()
        if reply.attempts >= self.max_attempts:
            log.error("dead-lettered outbox %s after %s attempts", reply.id, reply.attempts)
            reason = f"gave up after {reply.attempts} attempts: {error}"
            return lambda s: outbox.mark_dead(s, reply=reply, now=now, reason=reason)
        at = now + self.backoff(reply.attempts, minimum)
        return lambda s: outbox.reschedule(s, reply=reply, at=at, error=error, uncertain=uncertain)

    async def run_until_idle(self, limit: int = 100_000) -> int:
        """Send everything due now (tests and benchmarks); stops when only future work is left."""
        sent = 0
        while sent < limit:
            handled = await self.process_batch()
            if handled == 0:
                break
            sent += handled
        return sent

    async def run_forever(self) -> None:
        while True:
            try:
                while await self.process_batch():
                    pass
                async with self.sessions() as session:
                    due = await outbox.next_due(session)
            except Exception:
                log.exception("outbox relay loop error")
                due = None
            wait = self.poll_seconds
            if due is not None:
                wait = min(wait, max(0.0, (due - self.clock.now()).total_seconds()))
            await self.notifier.wait(OUTBOX_CHANNEL, max(wait, 0.01))
