"""The inbox worker: claim the heads of many users at once, handle them, commit once per batch.

Each message runs in its own SAVEPOINT inside the batch's transaction, so its business writes,
audit rows, outbox rows and "done" succeed or fail together, one message's failure rolls back
only its own savepoint, and the whole batch costs one commit. PostgreSQL runs several batch
loops side by side; SQLite has one writer and runs one. Claims are leases, renewed while the
worker lives; a dead worker's messages are taken over when their lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cache import Notifier
from bot.gateway.wire import to_inbound
from bot.runtime.channels import INBOX_CHANNEL, OUTBOX_CHANNEL
from bot.runtime.leases import (
    DEFAULT_LEASE,
    DEFAULT_RENEW_EVERY,
    Heartbeat,
    Sleep,
    default_holder_id,
)
from bot.runtime.outgoing import enqueue_replies
from bot.runtime.people import PersonUnreachable
from crm_store.clock import Clock
from crm_store.queues import inbox
from crm_store.queues.inbox import ClaimedMessage, LeaseLost
from crm_store.scope import load_actor
from crm_store.search import CustomerSearch
from handlers.kit.context import MessageContext
from handlers.kit.inbound import ContactChange, Inbound
from handlers.kit.replies import Reply

log = logging.getLogger(__name__)

Dispatch = Callable[[Inbound, MessageContext], Awaitable[list[Reply]]]
ContactChangeHandler = Callable[[ContactChange], Awaitable[None]]
KNOWN, UNKNOWN, WAIT, RETRY = "known", "unknown", "wait", "retry"  # meeting a newcomer
NEWCOMER_RETRY = timedelta(seconds=5)  # a newcomer's message waits this long for user/get again
SYSTEM_SENDER = "sys"  # PROTOCOL.md §3: FromUserName of change_contact and other system events


class PersonFetcher(Protocol):
    """Meets someone the worker has not seen: adds them from WeCom if our directory lacks them.

    Runs outside any transaction (a WeCom call must never hold a database lock)."""

    async def fetch(self, user_id: str) -> bool:
        """True when `user_id` is in the staff table now (already, or just added); raises
        PersonUnreachable when WeCom cannot tell for the moment."""
        ...


@dataclass(frozen=True)
class _Work:
    message: ClaimedMessage
    inbound: Inbound | None  # None: the stored payload cannot be parsed
    parse_error: str = ""


class InboxWorker:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        tz: ZoneInfo,
        notifier: Notifier,
        dispatch: Dispatch,
        person_fetcher: PersonFetcher | None = None,
        search: CustomerSearch | None = None,
        on_contact_change: ContactChangeHandler | None = None,
        worker_id: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        renew_every: float = DEFAULT_RENEW_EVERY,
        max_attempts: int = 3,
        batch: int = 16,
        concurrency: int = 1,
        commit_every: float = 0.05,
        poll_seconds: float = 1.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.tz = tz
        self.notifier = notifier
        self.dispatch = dispatch
        self.person_fetcher = person_fetcher
        self.search = search
        self.on_contact_change = on_contact_change
        self.worker_id = worker_id or default_holder_id("worker")
        self.lease = lease
        self.max_attempts = max_attempts
        self.batch = batch
        self.concurrency = concurrency
        # Wall-clock budget of one transaction: on SQLite it holds the only writer (and every ack).
        self.commit_every = commit_every
        self.poll_seconds = poll_seconds
        self.heartbeat = Heartbeat(self._renew, every=renew_every, sleep=sleep)
        self.processed = 0
        self._known: set[str] = set()
        self._stopping = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._heartbeat_task: asyncio.Task[None] | None = None

    # --- claiming -------------------------------------------------------------------------

    async def claim_batch(self, limit: int | None = None) -> list[ClaimedMessage]:
        """One statement claims the next message of up to `limit` users (committed at once)."""
        async with self.sessions.begin() as session:
            claimed = await inbox.claim_batch(
                session,
                worker_id=self.worker_id,
                now=self.clock.now(),
                lease=self.lease,
                max_attempts=self.max_attempts,
                limit=limit or self.batch,
            )
        self.heartbeat.held.update(m.id for m in claimed)
        return claimed

    async def claim(self) -> ClaimedMessage | None:
        claimed = await self.claim_batch(1)
        return claimed[0] if claimed else None

    async def _renew(self, ids: set[int]) -> set[int]:
        async with self.sessions.begin() as session:
            return await inbox.renew(
                session, worker_id=self.worker_id, ids=ids, now=self.clock.now(), lease=self.lease
            )

    # --- handling -------------------------------------------------------------------------

    async def process_batch(self) -> int:
        """Claim and handle one batch; returns how many messages it claimed (0: none due)."""
        if self._stopping.is_set():
            return 0
        claimed = await self.claim_batch()
        if claimed:
            await self.handle_batch(claimed)
        return len(claimed)

    async def process_one(self) -> bool:
        message = await self.claim()
        if message is None:
            return False
        await self.handle(message)
        return True

    async def handle(self, message: ClaimedMessage) -> None:
        """Handle one claimed message (a batch of one)."""
        await self.handle_batch([message])

    async def handle_batch(self, claimed: list[ClaimedMessage]) -> None:
        """Handle claimed messages of distinct users; each commits or fails on its own."""
        try:
            work = [self._parse(message) for message in claimed]
            pending = await self._before(work)
            while pending:
                if self._stopping.is_set():
                    await self._release([w.message.id for w in pending])
                    return
                try:
                    pending = await self._transaction(pending)
                except Exception:  # the batch's transaction broke: isolate every message
                    log.exception("batch transaction failed; handling its messages one by one")
                    for item in pending:
                        await self._alone(item)
                    return
        finally:
            self.heartbeat.held.difference_update(m.id for m in claimed)

    def _parse(self, message: ClaimedMessage) -> _Work:
        try:
            return _Work(message, to_inbound(message.payload, message.dedup_key))
        except Exception as exc:  # any parse failure: record and skip now, never retry
            log.warning("unparseable inbox row %s (%s)", message.id, type(exc).__name__)
            return _Work(message, None, f"unparseable: {type(exc).__name__}: {exc}")

    async def _before(self, work: list[_Work]) -> list[_Work]:
        """The steps that call WeCom, outside any transaction: directory pushes, newcomers.

        Returns the work to do now; a newcomer WeCom cannot describe at the moment is not told
        "who are you?" but waits: their message is deferred and tried again shortly."""
        for item in work:
            if isinstance(item.inbound, ContactChange) and self.on_contact_change is not None:
                try:
                    await self.on_contact_change(item.inbound)
                except Exception:  # the nightly sync repairs what a failed push left behind
                    log.exception("applying change_contact failed")
        if self.person_fetcher is None:
            return work
        strangers = sorted(
            {
                item.inbound.user_id
                for item in work
                if item.inbound is not None
                and item.inbound.user_id
                and item.inbound.user_id != SYSTEM_SENDER
                and item.inbound.user_id not in self._known
            }
        )
        met = dict(zip(strangers, await asyncio.gather(*map(self._meet, strangers)), strict=True))
        waiting = {user_id for user_id, known in met.items() if known in (WAIT, RETRY)}
        if not waiting:
            return work
        later = [w for w in work if w.inbound is not None and w.inbound.user_id in waiting]
        async with self.sessions.begin() as session:
            for counted in (False, True):
                await inbox.defer(
                    session,
                    worker_id=self.worker_id,
                    ids=[
                        w.message.id
                        for w in later
                        if w.inbound is not None and (met[w.inbound.user_id] == RETRY) is counted
                    ],
                    until=self.clock.now() + NEWCOMER_RETRY,
                    count_attempt=counted,
                )
        return [w for w in work if w not in later]

    async def _meet(self, user_id: str) -> str:
        """KNOWN, UNKNOWN (WeCom does not know them either), WAIT (WeCom cannot tell now) or
        RETRY (an unexpected error: try again, counting the attempt)."""
        assert self.person_fetcher is not None
        try:
            known = await self.person_fetcher.fetch(user_id)
        except PersonUnreachable:
            return WAIT
        except Exception:  # e.g. two workers adding the same department at once
            log.exception("fetching a new sender failed; trying again shortly")
            return RETRY
        if known:
            self._known.add(user_id)
            return KNOWN
        return UNKNOWN

    async def _transaction(self, pending: list[_Work]) -> list[_Work]:
        """Handle `pending` in one transaction until the time budget is spent; the rest."""
        started = time.monotonic()
        handled = owed = 0
        rest: list[_Work] = []
        async with self.sessions.begin() as session:
            for index, item in enumerate(pending):
                out_of_time = time.monotonic() - started >= self.commit_every
                if index and (out_of_time or self._stopping.is_set()):
                    rest = pending[index:]
                    break
                owed += await self._handle_in(session, item)
                handled += 1
        self.processed += handled
        if owed:
            await self.notifier.notify(OUTBOX_CHANNEL)
        return rest

    async def _alone(self, item: _Work) -> None:
        try:
            async with self.sessions.begin() as session:
                owed = await self._handle_in(session, item)
        except Exception:  # e.g. the database is away: the lease hands the message on
            log.exception("inbox row %s could not be handled", item.message.id)
            return
        self.processed += 1
        if owed:
            await self.notifier.notify(OUTBOX_CHANNEL)

    async def _handle_in(self, session: AsyncSession, item: _Work) -> int:
        """One message inside its own savepoint; returns how many outbox rows it owes."""
        message = item.message
        if item.inbound is None:
            async with session.begin_nested():
                await inbox.mark_failed(
                    session, message=message, now=self.clock.now(), error=item.parse_error
                )
            return 0
        try:
            async with session.begin_nested():
                return await self._effects(session, message, item.inbound)
        except LeaseLost:
            log.warning("lease lost on %s; another worker has it", message.dedup_key)
            return 0
        except Exception as exc:  # a handler bug must not stop other people's messages
            log.exception("handler failed on %s (%s)", message.dedup_key, message.kind)
            async with session.begin_nested():
                return await self._record_failure(session, message, item.inbound, exc)

    async def _effects(
        self, session: AsyncSession, message: ClaimedMessage, inbound: Inbound
    ) -> int:
        # Read fresh in the message's own transaction: a move, a new leader or a departure
        # applies to the very next message.
        actor = await load_actor(session, inbound.user_id)
        ctx = MessageContext(
            session=session,
            message=inbound,
            clock=self.clock,
            tz=self.tz,
            actor=actor,
            search=self.search,
        )
        replies = await self.dispatch(inbound, ctx)
        owed = await enqueue_replies(
            session, replies=replies, source_key=message.dedup_key, clock=self.clock
        )
        await inbox.mark_done(session, message=message, now=self.clock.now())
        return owed

    async def _record_failure(
        self, session: AsyncSession, message: ClaimedMessage, inbound: Inbound, exc: Exception
    ) -> int:
        """The handler's writes were rolled back; record the error and tell the person."""
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if not await inbox.mark_failed(
            session, message=message, now=self.clock.now(), error=error
        ):
            return 0
        if not inbound.user_id or inbound.user_id == SYSTEM_SENDER:
            return 0
        apology = MessageContext(
            session=session, message=inbound, clock=self.clock, tz=self.tz
        ).reply("errors/apology")
        return await enqueue_replies(
            session,
            replies=[apology],
            source_key=f"{message.dedup_key}:apology",
            clock=self.clock,
        )

    async def _release(self, ids: list[int] | None) -> None:
        async with self.sessions.begin() as session:
            released = await inbox.release(session, worker_id=self.worker_id, ids=ids)
        if released:
            log.info("released %d inbox message(s) for other workers", released)
            await self.notifier.notify(INBOX_CHANNEL)

    # --- loops ----------------------------------------------------------------------------

    async def run_until_idle(self, limit: int = 10_000) -> int:
        """Drain what is claimable now (tests and benchmarks), like arq's burst mode."""
        handled = 0
        while handled < limit:
            claimed = await self.process_batch()
            if not claimed:
                break
            handled += claimed
        return handled

    async def run_forever(self) -> None:
        self._heartbeat_task = asyncio.create_task(self.heartbeat.run())
        self._loops = [asyncio.create_task(self._loop()) for _ in range(self.concurrency)]
        try:
            # A loop that stop() cancelled past the grace period ends the run, not an error.
            await asyncio.gather(*self._loops, return_exceptions=True)
        finally:
            for task in (*self._loops, self._heartbeat_task):
                task.cancel()
            for task in (*self._loops, self._heartbeat_task):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if await self.process_batch():
                    continue
            except Exception:  # the database may be away for a moment; keep the loop alive
                log.exception("inbox worker loop error")
            if not self._stopping.is_set():
                await self.notifier.wait(INBOX_CHANNEL, self.poll_seconds)

    async def stop(self, grace: float) -> None:
        """Stop claiming, hand back at once what no handler has started, give running messages
        `grace` seconds, then cancel them (their transaction rolls back) and hand those back
        too. Nothing is lost (every claim ends done or pending) and nothing is doubled."""
        self._stopping.set()
        self.notifier.event(INBOX_CHANNEL).set()
        running = [task for task in self._loops if not task.done()]
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if late:
                log.warning("cancelled %d batch(es) still running after %.1f s", len(late), grace)
        try:
            await self._release(None)
        except Exception:  # the lease hands them on all the same
            log.exception("releasing inbox messages on shutdown failed")
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
