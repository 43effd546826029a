"""The outbox relay: sends owed messages through WeCom, following PROTOCOL.md §4.8's table.

Sends to different recipients run concurrently (bounded) as a pipeline: whenever a send ends,
its outcome is written together with whatever else ended meanwhile, and the freed slot claims
the next due message. Per recipient, messages go out one at a time, in order, and under
WeCom's 30-a-minute limit (§4.7: excess is dropped silently, so pacing must happen here).
Transient errors back off with jitter for as long as it takes (up to `max_age`); only errors
no retry can fix dead-letter. A send whose outcome is unknown is retried with WeCom's
duplicate check on, so the person never sees it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cache import Notifier
from bot.runtime.channels import OUTBOX_CHANNEL
from bot.runtime.leases import (
    DEFAULT_LEASE,
    DEFAULT_RENEW_EVERY,
    Heartbeat,
    Sleep,
    default_holder_id,
)
from bot.wecom.client import WeComClient, WeComError
from crm_store.clock import Clock
from crm_store.queues import outbox
from crm_store.queues.outbox import ClaimedReply, Delivered

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
    93000: "webhook url invalid",
}
# The request itself is malformed: the same payload is refused again however often it is sent.
PAYLOAD_ERRORS = {
    40008: "invalid message type",
    40058: "invalid parameter",
}
PERMANENT_ERRORS = {**CONFIG_ERRORS, **PAYLOAD_ERRORS}
# Doc 90236: a template_card's task_id is single-use per app; a retried card is refused with it.
TASK_ID_USED = 40058
RATE_LIMITED = 45009  # back off at least a minute (the minute window, §4.7)
DUPLICATE_CHECK_SECONDS = 1800  # §4.2: default window; covers our longest retry gap
WINDOW = timedelta(seconds=60)
BACKOFF_CAP = 300.0  # seconds: an outage of hours is retried every few minutes, never given up


@dataclass(frozen=True)
class Outcome:
    """What one send led to: a delivery (written in bulk) or another write for its row."""

    reply: ClaimedReply
    delivered: Delivered | None = None
    write: Callable[[AsyncSession], Awaitable[None]] | None = None


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
        max_age: timedelta = timedelta(hours=48),
        lease: timedelta = DEFAULT_LEASE,
        renew_every: float = DEFAULT_RENEW_EVERY,
        batch: int = 64,
        concurrency: int = 64,
        poll_seconds: float = 1.0,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.notifier = notifier
        self.relay_id = relay_id or default_holder_id("relay")
        self.per_user_per_minute = per_user_per_minute
        self.max_age = max_age
        self.lease = lease
        self.batch = batch
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.heartbeat = Heartbeat(self._renew, every=renew_every, sleep=sleep)
        self._rng = rng or random.Random()
        self._sends: set[asyncio.Task[Outcome]] = set()
        self._unwritten: list[Outcome] = []
        self._stopping = asyncio.Event()
        self._pump_task: asyncio.Task[int] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None

    def backoff(self, attempts: int, minimum: float = 1.0) -> timedelta:
        """Exponential with full jitter on the upper half: 1, 2, 4 ... capped at 5 minutes."""
        ceiling = min(BACKOFF_CAP, max(minimum, 2.0 ** min(max(0, attempts - 1), 30)))
        return timedelta(seconds=max(minimum, self._rng.uniform(ceiling / 2, ceiling)))

    # --- one send -------------------------------------------------------------------------

    async def send(self, reply: ClaimedReply, recent: list[datetime]) -> Outcome:
        """Send one message; returns the write that records what happened."""
        if len(recent) >= self.per_user_per_minute:
            at = recent[-self.per_user_per_minute] + WINDOW

            async def paced(s: AsyncSession) -> None:
                await outbox.reschedule(
                    s,
                    reply=reply,
                    at=at,
                    error="paced: per-user minute limit",
                    count_attempt=False,
                )

            return Outcome(reply, write=paced)
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
        return Outcome(
            reply,
            delivered=Delivered(
                reply,
                self.clock.now(),
                wecom_msgid=str(result.get("msgid") or "") or None,
                response_code=str(result.get("response_code") or "") or None,
            ),
        )

    def _on_wecom_error(self, reply: ClaimedReply, exc: WeComError) -> Outcome:
        retried = reply.uncertain or reply.attempts > 1
        if exc.errcode == TASK_ID_USED and reply.msgtype == "template_card" and retried:
            # An earlier attempt whose answer we never saw went through and used the task_id.
            log.info("outbox %s: card refused as a reused task_id; delivered before", reply.id)
            note = "delivered by an earlier attempt (WeCom refused the reused task_id)"
            return Outcome(reply, delivered=Delivered(reply, self.clock.now(), note=note))
        if exc.errcode in PERMANENT_ERRORS:
            return self._dead(reply, f"errcode {exc.errcode}: {PERMANENT_ERRORS[exc.errcode]}")
        minimum = 60.0 if exc.errcode == RATE_LIMITED else 1.0
        return self._retry(reply, f"errcode {exc.errcode}", minimum=minimum)

    def _dead(self, reply: ClaimedReply, reason: str) -> Outcome:
        log.error("dead-lettered outbox %s: %s", reply.id, reason)
        now = self.clock.now()

        async def dead(s: AsyncSession) -> None:
            await outbox.mark_dead(s, reply=reply, now=now, reason=reason)

        return Outcome(reply, write=dead)

    def _retry(
        self, reply: ClaimedReply, error: str, *, uncertain: bool = False, minimum: float = 1.0
    ) -> Outcome:
        now = self.clock.now()
        if now - reply.created_at >= self.max_age:
            hours = self.max_age.total_seconds() / 3600
            return self._dead(
                reply, f"gave up after {hours:g} h and {reply.attempts} attempts: {error}"
            )
        at = now + self.backoff(reply.attempts, minimum)

        async def again(s: AsyncSession) -> None:
            await outbox.reschedule(s, reply=reply, at=at, error=error, uncertain=uncertain)

        return Outcome(reply, write=again)

    async def _send_guarded(self, reply: ClaimedReply, recent: list[datetime]) -> Outcome:
        try:
            return await self.send(reply, recent)
        except Exception as exc:  # a bug here must not stall the row: retry it later
            log.exception("relay failed on outbox %s", reply.id)
            return self._retry(reply, f"relay error: {type(exc).__name__}", uncertain=True)

    # --- the pipeline ---------------------------------------------------------------------

    async def _claim(self, limit: int) -> list[tuple[ClaimedReply, list[datetime]]]:
        now = self.clock.now()
        async with self.sessions.begin() as session:
            claimed = await outbox.claim_due(
                session, relay_id=self.relay_id, now=now, lease=self.lease, limit=limit
            )
            windows = await outbox.sent_windows(
                session, users={r.to_user for r in claimed}, since=now - WINDOW
            )
        self.heartbeat.held.update(r.id for r in claimed)
        return [(reply, windows.get(reply.to_user, [])) for reply in claimed]

    def _start(self, reply: ClaimedReply, recent: list[datetime]) -> None:
        self._sends.add(asyncio.create_task(self._send_guarded(reply, recent)))

    async def _write(self, outcomes: list[Outcome]) -> int:
        """Every outcome in one transaction; kept for the next try if the database fails."""
        batch = self._unwritten + outcomes
        self._unwritten = []
        if not batch:
            return 0
        try:
            async with self.sessions.begin() as session:
                await outbox.mark_sent_many(session, [o.delivered for o in batch if o.delivered])
                for outcome in batch:
                    if outcome.write is not None:
                        await outcome.write(session)
        except Exception:  # still leased and renewed: written on the next round
            log.exception("writing %d relay outcome(s) failed", len(batch))
            self._unwritten = batch
            return 0
        self.heartbeat.held.difference_update(o.reply.id for o in batch)
        return len(batch)

    async def _pump(self, *, until_idle: bool, limit: int = 1_000_000) -> int:
        """Claim while there is room, write outcomes as sends end; returns rows finished."""
        finished = 0
        wake: asyncio.Task[None] | None = None
        try:
            while True:
                room = min(
                    self.concurrency - len(self._sends), limit - finished - len(self._sends)
                )
                # Claim in chunks, not for every freed slot: each claim is a transaction.
                worth_it = room >= max(1, min(self.batch, self.concurrency) // 4)
                if room > 0 and (worth_it or not self._sends) and not self._stopping.is_set():
                    try:
                        for reply, recent in await self._claim(min(room, self.batch)):
                            self._start(reply, recent)
                    except Exception:  # the database may be away for a moment
                        log.exception("outbox relay claim failed")
                        if until_idle:
                            raise
                if not self._sends:
                    finished += await self._write([])
                    if until_idle or self._stopping.is_set():
                        return finished
                    await self._idle()
                    continue
                waiting: set[asyncio.Future[Any]] = set(self._sends)
                if not until_idle and room > 0:
                    if wake is None or wake.done():
                        wake = asyncio.create_task(
                            self.notifier.wait(OUTBOX_CHANNEL, self.poll_seconds)
                        )
                    waiting.add(wake)
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                ended = [t for t in self._sends if t in done]
                self._sends.difference_update(ended)
                finished += await self._write([t.result() for t in ended])
        finally:
            if wake is not None:
                wake.cancel()
            for task in self._sends:
                task.cancel()
            self._sends.clear()

    async def _idle(self) -> None:
        try:
            async with self.sessions() as session:
                due = await outbox.next_due(session)
        except Exception:
            log.exception("outbox relay loop error")
            due = None
        wait = self.poll_seconds
        if due is not None:
            wait = min(wait, max(0.0, (due - self.clock.now()).total_seconds()))
        await self.notifier.wait(OUTBOX_CHANNEL, max(wait, 0.01))

    async def _renew(self, ids: set[int]) -> set[int]:
        async with self.sessions.begin() as session:
            return await outbox.renew(
                session, relay_id=self.relay_id, ids=ids, now=self.clock.now(), lease=self.lease
            )

    async def run_until_idle(self, limit: int = 100_000) -> int:
        """Send everything due now (tests and benchmarks); stops when only future work is left."""
        return await self._pump(until_idle=True, limit=limit)

    async def run_forever(self) -> None:
        self._heartbeat_task = asyncio.create_task(self.heartbeat.run())
        self._pump_task = asyncio.create_task(self._pump(until_idle=False))
        try:
            await self._pump_task
        finally:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task

    async def stop(self, grace: float) -> None:
        """Stop claiming; sends under way get `grace` seconds to end and be recorded; the rest
        are cancelled and handed back marked uncertain, so the next try asks WeCom to dedup."""
        self._stopping.set()
        self.notifier.event(OUTBOX_CHANNEL).set()
        pump = self._pump_task
        if pump is not None and not pump.done():
            _, late = await asyncio.wait({pump}, timeout=grace)
            if late:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pump
                log.warning("cancelled outbox sends still running after %.1f s", grace)
        try:
            async with self.sessions.begin() as session:
                released = await outbox.release(
                    session, relay_id=self.relay_id, ids=None, now=self.clock.now(), uncertain=True
                )
            if released:
                log.info("released %d outbox message(s) for other relays", released)
        except Exception:  # the lease hands them on all the same
            log.exception("releasing outbox messages on shutdown failed")
