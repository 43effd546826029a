"""The aiohttp application and the runtime it owns (engine, cache, WeCom client, loops).

Roles: `web` serves callbacks only; `worker` runs the inbox worker, outbox relay and scheduler;
`all` (the embedded default) does everything in one process and one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, Literal

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.cache import Cache, Notifier, make_cache
from bot.gateway.batcher import InboxBatcher
from bot.gateway.callback import INBOX_CHANNEL, CallbackState, add_routes, callback_state_key
from bot.gateway.crypto import WeComCrypto
from bot.metrics import CountingClient, scrape, timed_dispatch
from bot.runtime.media import MediaFetcher
from bot.runtime.relay import OutboxRelay
from bot.runtime.scheduler import Scheduler
from bot.runtime.worker import InboxWorker, PersonFetcher
from bot.serve import ServerLimits
from bot.settings import Settings
from bot.wecom.client import WeComClient
from bot.wecom.directory import DirectoryPersonFetcher, contact_change_handler
from crm_store.clock import Clock, SystemClock
from crm_store.search import CustomerSearch
from crm_store.session import create_engine, session_factory
from handlers.dispatch import dispatch

log = logging.getLogger(__name__)

Role = Literal["all", "web", "worker"]
READY_TIMEOUT: Final = 0.8  # seconds: a probe that hangs is an answer too ("unavailable")


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: Cache
    notifier: Notifier
    http: aiohttp.ClientSession
    client: WeComClient
    worker: InboxWorker
    relay: OutboxRelay
    scheduler: Scheduler
    search: CustomerSearch
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop_loops(self) -> None:
        """SIGTERM: hand back unstarted work at once, finish running work within the grace
        period (WECRM_SHUTDOWN_GRACE). Idempotent: the app's shutdown and close both call it."""
        grace = self.settings.shutdown_grace
        await asyncio.gather(self.worker.stop(grace), self.relay.stop(grace))

    @functools.cached_property
    def media(self) -> MediaFetcher:
        """Keeps the files forwarded into tickets (bot/runtime/media.py)."""
        return MediaFetcher(
            sessions=self.sessions,
            client=self.client,
            clock=self.clock,
            folder=self.settings.media_folder,
            notifier=self.notifier,
        )

    async def close(self) -> None:
        await self.stop_loops()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        await self.notifier.stop()
        await self.http.close()
        await self.cache.close()
        await self.engine.dispose()


runtime_key: Final = web.AppKey("runtime", Runtime)
PersonFetcherFactory = Callable[
    [WeComClient, async_sessionmaker[AsyncSession], Clock], PersonFetcher
]


async def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    person_fetcher_factory: PersonFetcherFactory | None = DirectoryPersonFetcher,
) -> Runtime:
    """Everything the bot runs on; `person_fetcher_factory=None` meets nobody from WeCom
    (the staff table is all there is), which tests with hand-made staff rows use."""
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url, **settings.engine_options())
    sessions = session_factory(engine)
    cache = make_cache(settings.redis_url)
    if cache.configured and not await cache.ping():
        log.warning(
            "WECRM_REDIS_URL is set but Redis is not reachable; running on local "
            "fallbacks until it is"
        )
    notifier = Notifier(cache)
    http = aiohttp.ClientSession()
    client = CountingClient(
        base_url=settings.wecom_api_base,
        corp_id=settings.wecom_corp_id,
        secret=settings.wecom_secret.get_secret_value(),
        agent_id=settings.wecom_agent_id,
        session=http,
        token_cache=cache,
        clock=clock,
    )
    search = CustomerSearch(clock=clock)
    worker = InboxWorker(
        sessions=sessions,
        clock=clock,
        tz=settings.tz,
        notifier=notifier,
        dispatch=timed_dispatch(dispatch),
        person_fetcher=(
            person_fetcher_factory(client, sessions, clock) if person_fetcher_factory else None
        ),
        search=search,
        on_contact_change=contact_change_handler(client, sessions, clock),
        # SQLite has one writer: one batch loop; PostgreSQL runs batches side by side.
        concurrency=1 if engine.dialect.name == "sqlite" else 4,
    )
    relay = OutboxRelay(
        sessions=sessions,
        client=client,
        clock=clock,
        notifier=notifier,
        max_age=timedelta(hours=settings.outbox_max_age_hours),
    )
    scheduler = Scheduler(
        sessions=sessions, clock=clock, tz=settings.tz, notifier=notifier, cache=cache
    )
    return Runtime(
        settings,
        clock,
        engine,
        sessions,
        cache,
        notifier,
        http,
        client,
        worker,
        relay,
        scheduler,
        search,
    )


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers within 0.8 s; a configured Redis that is down: degraded."""
    runtime = request.app[runtime_key]
    report: dict[str, str] = {}
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        report["database"] = "ok"
    except Exception as exc:  # any failure means "not ready", with its kind for the operator
        report["database"] = f"unreachable ({type(exc).__name__})"
    await runtime.cache.ping()
    report["redis"] = runtime.cache.describe()
    ok = report["database"] == "ok"
    degraded = runtime.cache.configured and not runtime.cache.healthy
    report["status"] = "degraded" if ok and degraded else ("ok" if ok else "unavailable")
    return web.json_response(report, status=200 if ok else 503)


async def _load_index(runtime: Runtime) -> None:
    """Build the lookup index off the ack path; searches before it is ready wait for it."""
    await runtime.search.load_from(runtime.sessions)


def create_app(
    settings: Settings,
    *,
    role: Role = "all",
    clock: Clock | None = None,
    background: bool = True,
    person_fetcher_factory: PersonFetcherFactory | None = DirectoryPersonFetcher,
    limits: ServerLimits | None = None,
) -> web.Application:
    """The web app; with background=False tests drive the worker and relay by hand."""
    limits = limits or ServerLimits()
    app = web.Application(client_max_size=1024 * 1024)
    serves_callbacks = role in ("all", "web")

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        runtime = await build_runtime(
            settings, clock=clock, person_fetcher_factory=person_fetcher_factory
        )
        app[runtime_key] = runtime
        batcher = InboxBatcher(
            runtime.engine,
            clock=runtime.clock,
            notifier=runtime.notifier,
            channel=INBOX_CHANNEL,
            window=limits.batch_window,
            max_batch=limits.batch_size,
            timeout=limits.ack_db_timeout,
        )
        app[callback_state_key] = CallbackState(
            crypto=WeComCrypto(
                settings.wecom_token.get_secret_value(),
                settings.wecom_aes_key.get_secret_value(),
                settings.wecom_corp_id,
            ),
            batcher=batcher,
            cache=runtime.cache,
            clock=runtime.clock,
            max_skew=settings.callback_max_skew,
            body_timeout=limits.body_timeout,
        )
        runtime.notifier.start()
        if serves_callbacks:
            batcher.start()
        if background and role in ("all", "worker"):
            runtime.tasks.append(asyncio.create_task(_load_index(runtime)))
            runtime.tasks.append(asyncio.create_task(runtime.worker.run_forever()))
            runtime.tasks.append(asyncio.create_task(runtime.relay.run_forever()))
            runtime.tasks.append(asyncio.create_task(runtime.scheduler.run_forever()))
            runtime.tasks.append(asyncio.create_task(runtime.media.run_forever()))
        yield
        await batcher.close()
        await runtime.close()

    async def stop_loops(app: web.Application) -> None:
        # Runs as soon as the server stops accepting (SIGTERM), before in-flight requests drain.
        await app[runtime_key].stop_loops()

    app.cleanup_ctx.append(runtime_ctx)
    app.on_shutdown.append(stop_loops)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", scrape)
    if serves_callbacks:
        add_routes(app)
    return app
