"""Customer lookup for chat: the in-memory index, kept fresh from the database, under scope.

One index per process. It is built at start (off the event loop) and then follows the
`customers.updated_at` watermark, so a customer created by another worker is findable within
a refresh interval. Every result is re-read through the actor's scope before anyone sees it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import conversation
from crm_store.clock import Clock, SystemClock
from crm_store.customers import visible_ids
from crm_store.models import Customer
from crm_store.names import normalize_company_name
from crm_store.scope import Scope
from crm_store.search.index import CustomerIndex, Hit, IndexedCustomer

log = logging.getLogger(__name__)

THREAD_THRESHOLD = 20_000  # above this many customers a search runs in a worker thread
_LOAD_CHUNK = 20_000
LOOKBACK = timedelta(seconds=5)
_PAGE = 5_000
# One search thread: more would only fight the event loop for the GIL and stall it longer.
_SEARCH_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="customer-search")
RECONCILE_SECONDS = 60.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Found:
    customer: Customer
    hit: Hit


def _indexed(row: tuple[Any, ...]) -> IndexedCustomer:
    cid, name, aliases, owner_id, in_pool, updated_at, last_followup_at = row
    activity = max(t for t in (updated_at, last_followup_at, _EPOCH) if t is not None)
    return IndexedCustomer(
        id=cid,
        name=name,
        aliases=tuple(aliases or ()),
        owner_id=None if in_pool else owner_id,
        last_activity=activity.timestamp(),
    )


_COLUMNS = (
    Customer.id,
    Customer.name,
    Customer.aliases,
    Customer.owner_id,
    Customer.in_pool,
    Customer.updated_at,
    Customer.last_followup_at,
)


class CustomerSearch:
    def __init__(self, *, refresh_seconds: float = 1.0, clock: Clock | None = None) -> None:
        self.index = CustomerIndex()
        self.refresh_seconds = refresh_seconds
        # When the last read began, on the clock that stamps customers.updated_at.
        self._read_at: datetime | None = None
        self._clock = clock or SystemClock()
        # Rows applied within the look-back window, so re-reading them does not re-index them.
        self._applied: dict[int, datetime] = {}
        self._loaded = asyncio.Event()
        self._load_lock = asyncio.Lock()
        self._refresh_lock = asyncio.Lock()
        self._last_refresh = 0.0
        self._last_reconcile = time.monotonic()

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    async def load(self, session: AsyncSession) -> int:
        """Build the index from every customer (chunked reads, build in a thread)."""

        @asynccontextmanager
        async def same_session() -> AsyncIterator[AsyncSession]:
            yield session

        return await self.load_from(same_session)

    async def load_from(
        self, sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]]
    ) -> int:
        """Like load, with a fresh session per chunk: on SQLite's single connection the ack
        path gets its turn between chunks instead of waiting for the whole scan."""
        async with self._load_lock:
            if self._loaded.is_set():
                return len(self.index)
            started = time.perf_counter()
            read_at = self._clock.now()
            rows: list[IndexedCustomer] = []
            last_id = 0
            while True:
                async with sessions() as session:
                    chunk = (
                        await session.execute(
                            select(*_COLUMNS)
                            .where(Customer.id > last_id)
                            .order_by(Customer.id)
                            .limit(_LOAD_CHUNK)
                        )
                    ).all()
                if not chunk:
                    break
                rows.extend(_indexed(tuple(row)) for row in chunk)
                last_id = chunk[-1].id
            self.index = await asyncio.to_thread(CustomerIndex.build, rows)
            del rows
            _settle_heap()
            self._read_at = read_at
            self._last_refresh = time.monotonic()
            self._loaded.set()
            log.info(
                "customer index: %d customers in %.1fs",
                len(self.index),
                time.perf_counter() - started,
            )
            return len(self.index)

    async def refresh(self, session: AsyncSession, *, force: bool = False) -> int:
        """Apply customers changed since the watermark; cheap when nothing changed."""
        if not self._loaded.is_set():
            return await self.load(session)
        if not force and time.monotonic() - self._last_refresh < self.refresh_seconds:
            return 0
        async with self._refresh_lock:
            changed = await self._apply_changes(session)
            if time.monotonic() - self._last_reconcile >= RECONCILE_SECONDS:
                changed += await self._reconcile(session)
            return changed

    async def _reconcile(self, session: AsyncSession) -> int:
        """Catch what the look-back cannot: rows a long transaction (an import) stamped long
        before it committed. A count that differs from the index's size means a rebuild."""
        self._last_reconcile = time.monotonic()
        total = int(await session.scalar(select(func.count()).select_from(Customer)) or 0)
        if total == len(self.index):
            return 0
        log.info("customer index has %d of %d customers: rebuilding", len(self.index), total)
        read_at = self._clock.now()
        rows: list[IndexedCustomer] = []
        last_id = 0
        while True:
            chunk = (
                await session.execute(
                    select(*_COLUMNS)
                    .where(Customer.id > last_id)
                    .order_by(Customer.id)
                    .limit(_LOAD_CHUNK)
                )
            ).all()
            if not chunk:
                break
            rows.extend(_indexed(tuple(row)) for row in chunk)
            last_id = chunk[-1].id
        self.index = await asyncio.to_thread(CustomerIndex.build, rows)
        del rows
        _settle_heap()
        self._read_at = read_at
        self._applied = {}
        return len(self.index)

    async def _apply_changes(self, session: AsyncSession) -> int:
        # Everything stamped since the previous read began, minus a look-back: a transaction
        # that stamped updated_at earlier may have committed after that read (and app servers'
        # clocks may differ by a few seconds). Keyset pages read a burst through to the end.
        read_at = self._clock.now()
        since = None if self._read_at is None else self._read_at - LOOKBACK
        cursor: tuple[datetime, int] | None = None
        changed = 0
        while True:
            query = select(*_COLUMNS).order_by(Customer.updated_at, Customer.id).limit(_PAGE)
            if cursor is not None:
                query = query.where(
                    or_(
                        Customer.updated_at > cursor[0],
                        and_(Customer.updated_at == cursor[0], Customer.id > cursor[1]),
                    )
                )
            elif since is not None:
                query = query.where(Customer.updated_at >= since)
            rows = (await session.execute(query)).all()
            # A page of an import is thousands of upserts: off the event loop.
            if len(rows) > 200:
                changed += await asyncio.to_thread(self._apply_rows, rows)
            else:
                changed += self._apply_rows(rows)
            if len(rows) < _PAGE:
                break
            cursor = (rows[-1].updated_at, rows[-1].id)
        self._read_at = read_at
        horizon = read_at - LOOKBACK
        if self._applied:
            self._applied = {k: v for k, v in self._applied.items() if v >= horizon}
        self._last_refresh = time.monotonic()
        return changed

    def _apply_rows(self, rows: Sequence[Any]) -> int:
        changed = 0
        for row in rows:
            if self._applied.get(row.id) != row.updated_at:
                self.index.upsert(_indexed(tuple(row)))
                self._applied[row.id] = row.updated_at
                changed += 1
        return changed

    def note(self, customer: Customer) -> None:
        """Index a customer this process just wrote, without waiting for the next refresh."""
        self.index.upsert(
            _indexed(
                (
                    customer.id,
                    customer.name,
                    customer.aliases,
                    customer.owner_id,
                    customer.in_pool,
                    customer.updated_at,
                    customer.last_followup_at,
                )
            )
        )

    async def _allowed(self, session: AsyncSession, scope: Scope) -> frozenset[int] | None:
        actor = scope.actor
        if actor.sees_all or actor.is_service:
            return None
        return frozenset(await visible_ids(session, scope))

    async def search(
        self,
        session: AsyncSession,
        *,
        scope: Scope,
        query: str,
        limit: int = 5,
        suggest: bool = False,
    ) -> list[Found]:
        """Matches the actor may see, best first, re-read from the database under scope."""
        await self.refresh(session)
        allowed = await self._allowed(session, scope)
        learned = await conversation.learned_for(
            session, user_id=scope.actor.userid, query=learned_key(query)
        )
        owner = scope.actor.userid

        def run() -> list[Hit]:
            if suggest:
                return self.index.suggest(query, allowed=allowed, owner_id=owner, limit=limit)
            return self.index.search(
                query, allowed=allowed, owner_id=owner, learned=learned, limit=limit
            )

        if len(self.index) > THREAD_THRESHOLD:
            loop = asyncio.get_running_loop()
            hits = await loop.run_in_executor(_SEARCH_THREAD, run)
        else:
            hits = run()
        return await self._load_visible(session, scope, hits)

    async def _load_visible(
        self, session: AsyncSession, scope: Scope, hits: Sequence[Hit]
    ) -> list[Found]:
        if not hits:
            return []
        ids = [h.id for h in hits]
        rows = (
            await session.scalars(select(Customer).where(Customer.id.in_(ids), scope.customers()))
        ).all()
        by_id = {c.id: c for c in rows}
        return [Found(by_id[h.id], h) for h in hits if h.id in by_id]


def _settle_heap() -> None:
    """Move the freshly built index out of the collector's sight: a full collection walking
    millions of long-lived objects would otherwise stall the event loop for tens of ms."""
    gc.collect()
    gc.freeze()


def learned_key(query: str) -> str:
    """How a query is remembered: its normalized core, so "阿里 " and "阿里" are one."""
    return (normalize_company_name(query) or query.strip().lower())[:100]
