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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.clock import Clock, SystemClock
from crm_store.models import Contact, Customer, CustomerShare, LearnedPick, StaffDepartment
from crm_store.names import normalize_company_name
from crm_store.scope import Scope
from crm_store.search.index import Allowed, CustomerIndex, Hit, IndexedCustomer, Owners

log = logging.getLogger(__name__)

SPARE_HITS = 3
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


People = dict[int, list[tuple[str, str | None]]]  # customer id -> its contacts (name, phone)


def owner_key(owner_id: str | None, in_pool: bool, department_id: int | None) -> str | None:
    """How the index files a customer for scoping: its owner, the pool (None), or "#<dept>"."""
    if in_pool:
        return None
    if owner_id is None:
        return f"#{department_id}" if department_id is not None else "#"
    return owner_id


def _indexed(row: Sequence[Any], people: People | None = None) -> IndexedCustomer:
    cid, name, aliases, owner_id, in_pool, department_id, phone, updated_at, followup = row
    activity = max(t for t in (updated_at, followup, _EPOCH) if t is not None)
    contacts = (people or {}).get(cid, ())
    phones = dict.fromkeys(p for p in (phone, *(p for _, p in contacts)) if p)
    return IndexedCustomer(
        id=cid,
        name=name,
        aliases=tuple(aliases or ()),
        owner_id=owner_key(owner_id, in_pool, department_id),
        last_activity=activity.timestamp(),
        phones=tuple(phones),
        contacts=tuple(dict.fromkeys(n for n, _ in contacts if n)),
    )


async def _people(session: AsyncSession, ids: Sequence[int]) -> People:
    """Contacts of these customers, to index their names and phones with the customer."""
    found: People = {}
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        rows = await session.execute(
            select(Contact.customer_id, Contact.name, Contact.phone)
            .where(Contact.customer_id.in_(chunk))
            .order_by(Contact.id)
        )
        for customer_id, name, phone in rows:
            found.setdefault(customer_id, []).append((name, phone))
    return found


async def _read_rows(session: AsyncSession, query: Any) -> list[IndexedCustomer]:
    rows = (await session.execute(query)).all()
    if not rows:
        return []
    people = await _people(session, [r.id for r in rows])
    return [_indexed(tuple(r), people) for r in rows]


_COLUMNS = (
    Customer.id,
    Customer.name,
    Customer.aliases,
    Customer.owner_id,
    Customer.in_pool,
    Customer.department_id,
    Customer.phone,
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
                    chunk = await _read_rows(session, _chunk_after(last_id))
                if not chunk:
                    break
                rows.extend(chunk)
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
            chunk = await _read_rows(session, _chunk_after(last_id))
            if not chunk:
                break
            rows.extend(chunk)
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
            people = await _people(session, [r.id for r in rows]) if rows else {}
            # A page of an import is thousands of upserts: off the event loop.
            if len(rows) > 200:
                changed += await asyncio.to_thread(self._apply_rows, rows, people)
            else:
                changed += self._apply_rows(rows, people)
            if len(rows) < _PAGE:
                break
            cursor = (rows[-1].updated_at, rows[-1].id)
        if since is not None:
            changed += await self._apply_new_contacts(session, since)
        self._read_at = read_at
        horizon = read_at - LOOKBACK
        if self._applied:
            self._applied = {k: v for k, v in self._applied.items() if v >= horizon}
        self._last_refresh = time.monotonic()
        return changed

    async def _apply_new_contacts(self, session: AsyncSession, since: datetime) -> int:
        """A contact added to an unchanged customer: re-index that customer with it."""
        owners = select(Contact.customer_id).where(Contact.created_at >= since).distinct()
        ids = list(await session.scalars(owners.limit(_PAGE)))
        if not ids:
            return 0
        rows = (await session.execute(select(*_COLUMNS).where(Customer.id.in_(ids)))).all()
        people = await _people(session, ids)
        for row in rows:
            self.index.upsert(_indexed(tuple(row), people))
        return len(rows)

    def _apply_rows(self, rows: Sequence[Any], people: People) -> int:
        changed = 0
        for row in rows:
            if self._applied.get(row.id) != row.updated_at:
                self.index.upsert(_indexed(tuple(row), people))
                self._applied[row.id] = row.updated_at
                changed += 1
        return changed

    def note(self, customer: Customer) -> None:
        """Index a customer this process just wrote, without waiting for the next refresh.

        Its contacts are kept as indexed (the next refresh reads them from the database).
        """
        before = self.index.get(customer.id)
        row = (
            customer.id,
            customer.name,
            customer.aliases,
            customer.owner_id,
            customer.in_pool,
            customer.department_id,
            customer.phone,
            customer.updated_at,
            customer.last_followup_at,
        )
        fresh = _indexed(row)
        if before is not None and before.contacts:
            phones = dict.fromkeys((*fresh.phones, *before.phones[1:]))
            fresh = replace(fresh, contacts=before.contacts, phones=tuple(phones))
        self.index.upsert(fresh)

    async def _allowed(self, session: AsyncSession, scope: Scope) -> Allowed:
        """Who the actor may see, in the index's own terms: owners, pool, departments, shares.

        No list of customer ids is read: the hits are re-read under the real scope anyway.
        """
        actor = scope.actor
        if actor.sees_all or actor.is_service:
            return None
        members = actor.member_ids
        departments = actor.visible_department_ids or frozenset()
        if members is None:  # an Actor built by hand: resolve its departments' people now
            members = frozenset(actor.visible_owner_ids or {actor.userid})
            if departments:
                members |= frozenset(
                    await session.scalars(
                        select(StaffDepartment.userid).where(
                            StaffDepartment.department_id.in_(sorted(departments))
                        )
                    )
                )
        shared = await session.scalars(
            select(CustomerShare.customer_id).where(
                CustomerShare.userid == actor.userid,
                or_(CustomerShare.until.is_(None), CustomerShare.until > scope.now),
            )
        )
        keys: set[str | None] = {None, *members}
        keys.update(f"#{d}" for d in departments)
        return Owners(frozenset(keys), frozenset(shared))

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
        owner = scope.actor.userid
        key = None if suggest else learned_key(query)
        # A few spare hits: the index's view of owners may lag a change by a refresh.
        wanted = limit + SPARE_HITS if allowed is not None else limit

        def run(learned: dict[int, float] | None = None) -> list[Hit]:
            if suggest:
                return self.index.suggest(query, allowed=allowed, owner_id=owner, limit=wanted)
            return self.index.search(
                query, allowed=allowed, owner_id=owner, learned=learned, limit=wanted
            )

        hits = await self._off_loop(run)
        rows = await self._read_hits(session, scope, [h.id for h in hits], owner, key)
        learned = {c.id: float(n) for c, n in rows.values() if n}
        if learned:  # picks the rep made before for these words: rank again with them
            hits = await self._off_loop(lambda: run(learned))
        found = [Found(rows[h.id][0], h) for h in hits if h.id in rows]
        return found[:limit]

    async def _off_loop(self, run: Callable[[], list[Hit]]) -> list[Hit]:
        if len(self.index) > THREAD_THRESHOLD:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(_SEARCH_THREAD, run)
        return run()

    async def _read_hits(
        self,
        session: AsyncSession,
        scope: Scope,
        ids: list[int],
        userid: str,
        key: str | None,
    ) -> dict[int, tuple[Customer, int | None]]:
        """The hits and the rep's learned picks for these words, under scope, in one query."""
        wanted: Any = Customer.id.in_(ids)
        picks = None
        if key is not None:
            mine = and_(LearnedPick.user_id == userid, LearnedPick.query == key[:100])
            wanted = or_(wanted, Customer.id.in_(select(LearnedPick.customer_id).where(mine)))
            picks = (
                select(LearnedPick.hits)
                .where(mine, LearnedPick.customer_id == Customer.id)
                .scalar_subquery()
            )
        if not ids and picks is None:
            return {}
        columns: tuple[Any, ...] = (Customer, picks) if picks is not None else (Customer,)
        rows = await session.execute(select(*columns).where(wanted, scope.customers()))
        if picks is None:
            return {c.id: (c, None) for (c,) in rows}
        return {c.id: (c, n) for c, n in rows}


def _settle_heap() -> None:
    """Move the freshly built index out of the collector's sight: a full collection walking
    millions of long-lived objects would otherwise stall the event loop for tens of ms."""
    gc.collect()
    gc.freeze()


def _chunk_after(last_id: int) -> Any:
    return select(*_COLUMNS).where(Customer.id > last_id).order_by(Customer.id).limit(_LOAD_CHUNK)


def learned_key(query: str) -> str:
    """How a query is remembered: its normalized core, so "阿里 " and "阿里" are one."""
    return (normalize_company_name(query) or query.strip().lower())[:100]
