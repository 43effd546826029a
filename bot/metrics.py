"""Prometheus metrics for operators: `/metrics` on every process, in the standard text format.

Each process has its own registry (this module's REGISTRY): scrape every web and worker process
on its own port, and sum in PromQL. Counters are bumped after the work they count is committed
(a callback after its ack, a message after its transaction), never inside a critical section.
The queue gauges come from the database, two cheap counts per scrape at most, cached briefly
so several scrapers cost the same as one.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select

from bot.wecom.client import WeComClient, WeComError
from crm_store.models.messaging import (
    INBOX_PENDING,
    INBOX_PROCESSING,
    OUTBOX_DEAD,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    InboxMessage,
)
from crm_store.queues import outbox

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from sqlalchemy.orm import Session

    from crm_store.clock import Clock
    from handlers.kit.context import MessageContext
    from handlers.kit.inbound import Inbound
    from handlers.kit.replies import Reply

__all__ = [
    "REGISTRY",
    "CountingClient",
    "callback_done",
    "handler_done",
    "job_ran",
    "scrape",
    "send_answered",
    "timed_callback",
    "timed_dispatch",
]

QUEUE_CACHE_SECONDS: Final = 5.0
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

CALLBACKS = Counter(
    "wecrm_callbacks", "WeCom callbacks answered, by outcome", ["outcome"], registry=REGISTRY
)
ACK_SECONDS = Histogram(
    "wecrm_ack_seconds",
    "Time to answer a callback POST (WeCom retries after 5 s)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
SENDS = Counter(
    "wecrm_sends", "message/send answers by WeCom errcode (0 = ok)", ["errcode"], registry=REGISTRY
)
HANDLED = Counter(
    "wecrm_messages_handled", "Inbox messages handled, by outcome", ["outcome"], registry=REGISTRY
)
HANDLER_SECONDS = Histogram(
    "wecrm_handler_seconds",
    "Handler time per message, by command (text without one: 'text')",
    ["command"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
    registry=REGISTRY,
)
JOB_RUNS = Counter(
    "wecrm_job_runs", "Scheduled job periods run, by job and trigger", ["job", "trigger"],
    registry=REGISTRY,
)  # fmt: skip
# Answer statuses of the callback endpoint, as the outcomes operators alert on.
OUTCOMES: Final = {
    200: "accepted",
    400: "malformed",
    403: "forbidden",
    408: "too_slow",
    413: "too_large",
    503: "unavailable",
}


# --- the hooks the runtime calls -------------------------------------------------------------


def callback_done(status: int, seconds: float) -> None:
    CALLBACKS.labels(OUTCOMES.get(status, str(status))).inc()
    ACK_SECONDS.observe(seconds)


def send_answered(errcode: int | str) -> None:
    """One message/send answer: 0, WeCom's errcode, or "transport" for no answer."""
    SENDS.labels(str(errcode)).inc()


def handler_done(command: str, seconds: float, *, ok: bool) -> None:
    HANDLED.labels("ok" if ok else "failed").inc()
    if ok:
        HANDLER_SECONDS.labels(command).observe(seconds)


def job_ran(job: str, trigger: str) -> None:
    JOB_RUNS.labels(job, trigger).inc()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def timed_callback(handler: Handler) -> Handler:
    """The callback endpoint, counted by outcome and timed once it has answered."""

    async def timed(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        response = await handler(request)
        callback_done(response.status, time.perf_counter() - started)
        return response

    return timed


Dispatch = Callable[["Inbound", "MessageContext"], Awaitable[list["Reply"]]]


def command_of(message: Inbound) -> str:
    """A bounded label: the command's name, or text / card / event."""
    from handlers.dispatch import dispatcher
    from handlers.kit.inbound import CardAction, TextMessage
    from handlers.kit.routing import normalize_text

    if isinstance(message, TextMessage):
        matched = dispatcher().match(normalize_text(message.text))
        return matched[0].name if matched else "text"
    return "card" if isinstance(message, CardAction) else "event"


def timed_dispatch(dispatch: Dispatch) -> Dispatch:
    """Dispatch, timed per command; counted when the worker's transaction commits."""

    async def timed(message: Inbound, ctx: MessageContext) -> list[Reply]:
        started = time.perf_counter()
        try:
            replies = await dispatch(message, ctx)
        except Exception:
            handler_done(command_of(message), 0.0, ok=False)
            raise
        seconds = time.perf_counter() - started
        command = command_of(message)

        def committed(_session: Session) -> None:
            handler_done(command, seconds, ok=True)

        event.listen(ctx.session.sync_session, "after_commit", committed, once=True)
        return replies

    return timed


class CountingClient(WeComClient):
    """The WeCom client, with every message/send answer counted by errcode."""

    async def send_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            result = await super().send_message(payload)
        except WeComError as exc:
            send_answered(exc.errcode)
            raise
        except (TimeoutError, aiohttp.ClientError):
            send_answered("transport")
            raise
        send_answered(0)
        return result


# --- the queue gauges and the endpoint -------------------------------------------------------


@dataclass
class QueueStats:
    inbox_depth: int = 0
    inbox_oldest_age: float = 0.0
    outbox_depth: int = 0
    dead_letters: int = 0
    read_at: float = float("-inf")


class QueueCollector(Collector):
    def __init__(self, stats: QueueStats) -> None:
        self.stats = stats

    def collect(self) -> Iterable[GaugeMetricFamily]:
        s = self.stats
        yield GaugeMetricFamily(
            "wecrm_inbox_depth", "Inbox messages not handled yet", value=s.inbox_depth
        )
        yield GaugeMetricFamily(
            "wecrm_inbox_oldest_age_seconds",
            "Age of the oldest unhandled inbox message (0 when empty)",
            value=s.inbox_oldest_age,
        )
        yield GaugeMetricFamily(
            "wecrm_outbox_depth",
            "Replies owed to WeCom (pending or sending)",
            value=s.outbox_depth,
        )
        yield GaugeMetricFamily(
            "wecrm_dead_letters",
            "Replies WeCom will never take (need a person)",
            value=s.dead_letters,
        )


_stats: weakref.WeakKeyDictionary[Any, QueueStats] = weakref.WeakKeyDictionary()
_refresh_lock = asyncio.Lock()


def expire_queue_cache() -> None:
    """The next scrape reads the queues again (tests; an operator never needs it)."""
    for stats in _stats.values():
        stats.read_at = float("-inf")


async def read_queues(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, stats: QueueStats
) -> None:
    """Refresh `stats` unless they are younger than QUEUE_CACHE_SECONDS: two counts."""
    async with _refresh_lock:
        if time.monotonic() - stats.read_at < QUEUE_CACHE_SECONDS:
            return
        async with sessions() as session:
            depth, oldest = (
                await session.execute(
                    select(func.count(), func.min(InboxMessage.received_at)).where(
                        InboxMessage.status.in_([INBOX_PENDING, INBOX_PROCESSING])
                    )
                )
            ).one()
            counts = await outbox.counts_by_status(session)
        stats.inbox_depth = int(depth or 0)
        stats.inbox_oldest_age = (
            max(0.0, (clock.now() - oldest).total_seconds()) if oldest is not None else 0.0
        )
        stats.outbox_depth = counts.get(OUTBOX_PENDING, 0) + counts.get(OUTBOX_SENDING, 0)
        stats.dead_letters = counts.get(OUTBOX_DEAD, 0)
        stats.read_at = time.monotonic()


async def scrape(request: web.Request) -> web.Response:
    """GET /metrics: this process's counters plus the shared queue gauges."""
    from bot.app import runtime_key

    runtime = request.app[runtime_key]
    stats = _stats.setdefault(runtime.engine, QueueStats())  # one per database
    queues = CollectorRegistry()
    queues.register(QueueCollector(stats))
    try:
        await read_queues(runtime.sessions, runtime.clock, stats)
    except Exception:  # a database outage must not hide the process metrics
        stats.read_at = time.monotonic()
    body = generate_latest(REGISTRY) + generate_latest(queues)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
