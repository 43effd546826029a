"""The inbox worker: claim a message, run the handlers, commit their effects and replies at once.

Business writes, audit rows, outbox rows and "inbox row done" share one transaction, so a crash
leaves either all of them or none; the lease then hands the message to another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cache import Notifier
from bot.gateway.callback import INBOX_CHANNEL
from bot.gateway.wire import WireError, to_inbound
from bot.runtime.outgoing import to_messages
from crm_store.clock import Clock
from crm_store.queues import inbox, outbox
from crm_store.queues.inbox import ClaimedMessage, LeaseLost
from crm_store.scope import Actor, load_actor
from crm_store.search import CustomerSearch
from handlers.kit.context import MessageContext
from handlers.kit.inbound import ContactChange, Inbound
from handlers.kit.replies import Reply

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "outbox"
Dispatch = Callable[[Inbound, MessageContext], Awaitable[list[Reply]]]
ActorLoader = Callable[[str], Awaitable[Actor | None]]


def default_worker_id(role: str) -> str:
    return f"{role}-{socket.gethostname()[:24]}-{os.getpid()}"


async def enqueue_replies(
    session: AsyncSession, *, replies: list[Reply], source_key: str, clock: Clock
) -> int:
    """Replies become outbox rows keyed by their source, so a re-run adds nothing."""
    count = 0
    for r_index, reply in enumerate(replies):
        for m_index, message in enumerate(to_messages(reply)):
            inserted = await outbox.enqueue(
                session,
                dedup_key=f"{source_key}:{r_index}:{m_index}:{message.to_user}"[:160],
                to_user=message.to_user,
                msgtype=message.msgtype,
                payload=message.payload,
                now=clock.now(),
            )
            count += int(inserted)
    return count


class InboxWorker:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        tz: ZoneInfo,
        notifier: Notifier,
        dispatch: Dispatch,
        actor_loader: ActorLoader | None = None,
        search: CustomerSearch | None = None,
        on_contact_change: Callable[[ContactChange], Awaitable[None]] | None = None,
        worker_id: str | None = None,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 3,
        concurrency: int = 1,
        poll_seconds: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.tz = tz
        self.notifier = notifier
        self.dispatch = dispatch
        self.actor_loader = actor_loader
        self._known: set[str] = set()
        self.search = search
        self.on_contact_change = on_contact_change
        self.worker_id = worker_id or default_worker_id("worker")
        self.lease = lease
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.processed = 0

    async def claim(self) -> ClaimedMessage | None:
        async with self.sessions.begin() as session:
            return await inbox.claim_next(
                session,
                worker_id=self.worker_id,
                now=self.clock.now(),
                lease=self.lease,
                max_attempts=self.max_attempts,
            )

    async def process_one(self) -> bool:
        """Claim and handle one message; False when nothing is claimable right now."""
        message = await self.claim()
        if message is None:
            return False
        await self.handle(message)
        return True

    async def handle(self, message: ClaimedMessage) -> None:
        try:
            inbound = to_inbound(message.payload, message.dedup_key)
        except WireError as exc:
            async with self.sessions.begin() as session:
                await inbox.mark_failed(
                    session, message=message, now=self.clock.now(), error=f"unparseable: {exc}"
                )
            return
        if isinstance(inbound, ContactChange) and self.on_contact_change is not None:
            try:
                await self.on_contact_change(inbound)
            except Exception:  # the nightly sync repairs what a failed push left behind
                log.exception("applying change_contact failed")
        try:
            await self._meet(inbound.user_id)
            async with self.sessions.begin() as session:
                # Read fresh in the message's own transaction: a move, a new leader or a
                # departure applies to the very next message.
                actor = await load_actor(session, inbound.user_id) if self.actor_loader else None
                ctx = MessageContext(
                    session=session,
                    message=inbound,
                    clock=self.clock,
                    tz=self.tz,
                    actor=actor,
                    search=self.search,
                )
                replies = await self.dispatch(inbound, ctx)
                await enqueue_replies(
                    session, replies=replies, source_key=message.dedup_key, clock=self.clock
                )
                await inbox.mark_done(session, message=message, now=self.clock.now())
        except LeaseLost:
            log.warning("lease lost on %s; another worker has it", message.dedup_key)
            return
        except Exception as exc:  # a handler bug must not stop other people's messages
            log.exception("handler failed on %s (%s)", message.dedup_key, message.kind)
            await self._fail(message, inbound, exc)
            return
        finally:
            self.processed += 1
        await self.notifier.notify(OUTBOX_CHANNEL)

    async def _meet(self, user_id: str) -> None:
        """First message from someone this worker has not seen: let the loader fetch them from
        WeCom if needed, outside any transaction (on SQLite it would hold up every ack)."""
        if self.actor_loader is None or user_id in self._known:
            return
        if await self.actor_loader(user_id) is not None:
            self._known.add(user_id)

    async def _fail(self, message: ClaimedMessage, inbound: Inbound, exc: Exception) -> None:
        """Roll back was done; record the error and tell the person, in one transaction."""
        error = f"{type(exc).__name__}: {exc}"[:2000]
        async with self.sessions.begin() as session:
            if not await inbox.mark_failed(
                session, message=message, now=self.clock.now(), error=error
            ):
                return
            if inbound.user_id and inbound.user_id != "sys":
                apology = MessageContext(
                    session=session, message=inbound, clock=self.clock, tz=self.tz
                ).reply("errors/apology")
                await enqueue_replies(
                    session,
                    replies=[apology],
                    source_key=f"{message.dedup_key}:apology",
                    clock=self.clock,
                )
        await self.notifier.notify(OUTBOX_CHANNEL)

    async def run_until_idle(self, limit: int = 10_000) -> int:
        """Drain what is claimable now (tests and benchmarks), like arq's burst mode."""
        handled = 0
        while handled < limit and await self.process_one():
            handled += 1
        return handled

    async def run_forever(self) -> None:
        loops = [asyncio.create_task(self._loop(i)) for i in range(self.concurrency)]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in loops:
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _loop(self, index: int) -> None:
        while True:
            try:
                while await self.process_one():
                    pass
            except Exception:  # the database may be away for a moment; keep the loop alive
                log.exception("inbox worker loop error")
            await self.notifier.wait(INBOX_CHANNEL, self.poll_seconds)
