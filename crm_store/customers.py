"""Customer repository: every read takes a Scope, so lists, lookups and sums agree on scope.

Writes never commit (the worker owns the transaction) and each leaves an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import audit, config_data
from crm_store.dialect import affected_rows
from crm_store.models.audit import AuditEntry
from crm_store.models.customer import (
    Customer,
    CustomerOwnerHistory,
    CustomerShare,
    OwnerChange,
    ShareAccess,
)
from crm_store.models.org import Staff
from crm_store.models.sales import Lead, LeadStatus, Opportunity, OpportunityState, Task
from crm_store.names import clean_text, normalize_company_name, pinyin_keys, variant_cores
from crm_store.phones import stored_phone
from crm_store.scope import Actor, Scope

POOL_OWNER_NAME = "公海"
NO_OWNER_NAME = "无负责人"
_CUSTOMER_FIELDS = (
    "name",
    "name_core",
    "owner_id",
    "department_id",
    "industry",
    "city",
    "phone",
    "source_channel",
    "level",
    "status",
    "tags",
    "aliases",
    "in_pool",
)


class CustomerOrder(StrEnum):
    RECENT = "recent"  # last updated first
    NAME = "name"
    NEXT_FOLLOWUP = "next_followup"  # soonest due first, undated last
    CREATED = "created"  # newest first


class DuplicateReason(StrEnum):
    NAME = "name"
    PHONE = "phone"
    NAME_AND_PHONE = "name_and_phone"
    SIMILAR_NAME = "similar_name"  # one character different, same sound or look (篮海/蓝海)


@dataclass(frozen=True)
class DuplicateHint:
    """All a person learns about a duplicate they may not see: which one, whose, and why."""

    customer_id: int
    owner_name: str
    reason: DuplicateReason


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    NOT_FOUND = "not_found"
    NOT_IN_POOL = "not_in_pool"  # never was, or a colleague claimed it first
    ALREADY_YOURS = "already_yours"  # the actor owns it already
    LIMIT_REACHED = "limit_reached"
    COOLDOWN = "cooldown"  # the previous owner must wait before taking it back
    NOT_ALLOWED = "not_allowed"  # service staff do not own customers from the pool


@dataclass(frozen=True)
class ClaimResult:
    outcome: ClaimOutcome
    customer_id: int
    claims_today: int
    daily_limit: int
    cooldown_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is ClaimOutcome.CLAIMED


class NotAllowed(Exception):
    """The actor's scope does not reach what they asked to change."""


class UndoResult(StrEnum):
    """What 撤销 did to one write."""

    UNDONE = "undone"
    TOO_LATE = "too_late"
    NOT_FOUND = "not_found"
    NOT_YOURS = "not_yours"
    ALREADY_UNDONE = "already_undone"
    CHANGED_SINCE = "changed_since"  # something else was written on it after: undo that first


UNDO_WINDOW = timedelta(minutes=10)


def normalize_phone(phone: str | None) -> str | None:
    """One spelling per number ("138-0013 8000" → "13800138000"), so dedup compares equals;
    None when it is not a mainland phone (crm_store.phones is the one parser)."""
    return stored_phone(phone)


def _fit(keys: list[str], limit: int) -> str:
    """Space-join search keys, dropping the least likely ones that would overflow the column."""
    joined = ""
    for key in keys:
        candidate = f"{joined} {key}" if joined else key
        if len(candidate) > limit:
            break
        joined = candidate
    return joined


# Reads ---------------------------------------------------------------------------------------


def _filtered(query: Any, *, owner_id: str | None, in_pool: bool | None) -> Any:
    if owner_id is not None:
        query = query.where(Customer.owner_id == owner_id)
    if in_pool is not None:
        query = query.where(Customer.in_pool.is_(in_pool))
    return query


async def get_visible(session: AsyncSession, scope: Scope, customer_id: int) -> Customer | None:
    """Return the customer only if `scope` may see it; a hidden one looks like a missing one."""
    return await session.scalar(
        select(Customer).where(Customer.id == customer_id, scope.customers())
    )


async def get_by_id(session: AsyncSession, customer_id: int) -> Customer | None:
    """A customer regardless of scope: for the bot's own bookkeeping (index, 撞单 notices),
    never for showing it to someone."""
    return await session.get(Customer, customer_id)


async def owner_names(session: AsyncSession, owner_ids: list[str | None]) -> dict[str, str]:
    """Display names of owners, for telling similar customers apart in a choice list."""
    wanted = {o for o in owner_ids if o}
    if not wanted:
        return {}
    rows = await session.execute(select(Staff.userid, Staff.name).where(Staff.userid.in_(wanted)))
    return {userid: name for userid, name in rows.all()}


async def is_writable(session: AsyncSession, scope: Scope, customer_id: int) -> bool:
    """Whether the actor may change this customer (and so share it or log on its behalf)."""
    found = await session.scalar(
        select(Customer.id).where(Customer.id == customer_id, scope.customer_writable())
    )
    return found is not None


async def list_visible(
    session: AsyncSession,
    scope: Scope,
    *,
    owner_id: str | None = None,
    in_pool: bool | None = None,
    order: CustomerOrder = CustomerOrder.RECENT,
    limit: int = 50,
    offset: int = 0,
) -> list[Customer]:
    """One page of the customers the actor may see, optionally one owner's or the pool's."""
    ordering = {
        CustomerOrder.RECENT: (Customer.updated_at.desc(), Customer.id.desc()),
        CustomerOrder.NAME: (Customer.name_core, Customer.id),
        CustomerOrder.NEXT_FOLLOWUP: (
            Customer.next_followup_at.is_(None),
            Customer.next_followup_at,
            Customer.id,
        ),
        CustomerOrder.CREATED: (Customer.created_at.desc(), Customer.id.desc()),
    }[CustomerOrder(order)]
    query = _filtered(
        select(Customer).where(scope.customers()), owner_id=owner_id, in_pool=in_pool
    )
    rows = await session.scalars(query.order_by(*ordering).limit(limit).offset(offset))
    return list(rows)


async def count_visible(
    session: AsyncSession,
    scope: Scope,
    *,
    owner_id: str | None = None,
    in_pool: bool | None = None,
) -> int:
    """The count behind list_visible: an aggregate obeys the same scope as the list."""
    query = _filtered(
        select(func.count()).select_from(Customer).where(scope.customers()),
        owner_id=owner_id,
        in_pool=in_pool,
    )
    return int(await session.scalar(query) or 0)


async def visible_ids(session: AsyncSession, scope: Scope) -> set[int]:
    """Every customer id the actor may see, for filtering in-memory search hits."""
    return set(await session.scalars(select(Customer.id).where(scope.customers())))


async def sum_open_amount(
    session: AsyncSession, scope: Scope, *, owner_id: str | None = None
) -> Decimal:
    """Open pipeline value the actor may see; service staff get only amounts in their level."""
    query = select(func.coalesce(func.sum(Opportunity.amount), 0)).where(
        Opportunity.state == OpportunityState.OPEN.value, scope.opportunity_amounts()
    )
    if owner_id is not None:
        query = query.where(Opportunity.owner_id == owner_id)
    total = await session.scalar(query)
    return Decimal(str(total or 0)).quantize(Decimal("0.01"))


async def find_duplicates(
    session: AsyncSession,
    *,
    name_core: str | None,
    phone: str | None,
    exclude_id: int | None = None,
    limit: int = 5,
) -> list[DuplicateHint]:
    """查重 across ALL customers, scope ignored on purpose, returning only id, owner and reason.

    A rep adding a customer someone else owns must learn that it exists and whose it is, but
    never its record: nothing else leaves this function.
    """
    number = normalize_phone(phone)
    core = clean_text(name_core or "")  # a caller's raw spelling still compares (ＡＢＣ 科技)
    conditions = []
    if core:
        conditions.append(Customer.name_core == core)
    if number:
        conditions.append(Customer.phone == number)
    hints: list[DuplicateHint] = []
    seen: set[int] = set()
    if conditions:
        for row in await session.execute(_duplicate_query(or_(*conditions), exclude_id, limit)):
            customer_id, found_core, customer_phone, in_pool, owner_name = row
            same_name = bool(core) and found_core == core
            same_phone = number is not None and customer_phone == number
            reason = (
                DuplicateReason.NAME_AND_PHONE
                if same_name and same_phone
                else DuplicateReason.NAME
                if same_name
                else DuplicateReason.PHONE
            )
            hints.append(DuplicateHint(customer_id, _owner_label(in_pool, owner_name), reason))
            seen.add(customer_id)
    variants = variant_cores(core) if core and len(hints) < limit else []
    for start in range(0, len(variants), _VARIANTS_PER_QUERY):
        if len(hints) >= limit:
            break
        chunk = variants[start : start + _VARIANTS_PER_QUERY]
        query = _duplicate_query(Customer.name_core.in_(chunk), exclude_id, limit - len(hints))
        if seen:
            query = query.where(Customer.id.not_in(sorted(seen)))
        for customer_id, _core, _phone, in_pool, owner_name in await session.execute(query):
            reason = DuplicateReason.SIMILAR_NAME
            hints.append(DuplicateHint(customer_id, _owner_label(in_pool, owner_name), reason))
            seen.add(customer_id)
    return hints


_VARIANTS_PER_QUERY = 800  # bound parameters per IN list, well under both databases' limits


def _duplicate_query(condition: Any, exclude_id: int | None, limit: int) -> Any:
    query = (
        select(Customer.id, Customer.name_core, Customer.phone, Customer.in_pool, Staff.name)
        .outerjoin(Staff, Staff.userid == Customer.owner_id)
        .where(condition)
        .order_by(Customer.id)
        .limit(limit)
    )
    if exclude_id is not None:
        query = query.where(Customer.id != exclude_id)
    return query


def _owner_label(in_pool: bool, owner_name: str | None) -> str:
    return POOL_OWNER_NAME if in_pool else owner_name or NO_OWNER_NAME


# Writes --------------------------------------------------------------------------------------


async def _main_department(session: AsyncSession, userid: str) -> int | None:
    return await session.scalar(select(Staff.main_department_id).where(Staff.userid == userid))


async def create_customer(
    session: AsyncSession,
    *,
    actor: Actor,
    name: str,
    now: datetime,
    source_key: str | None = None,
    owner_id: str | None = None,
    in_pool: bool = False,
    phone: str | None = None,
    industry: str | None = None,
    city: str | None = None,
    source_channel: str | None = None,
    level: str | None = None,
    status: str | None = None,
    tags: list[str] | tuple[str, ...] = (),
    aliases: list[str] | tuple[str, ...] = (),
    name_core: str | None = None,
    pinyin: str | None = None,
    initials: str | None = None,
) -> Customer:
    """Add a customer owned by the actor (or owner_id within the actor's scope, or the pool).

    The same source_key twice returns the first customer: a WeCom retry adds nothing. Search
    keys default to crm_store.names of the core name; importers may pass precomputed ones.
    Run find_duplicates first: this function does not refuse a duplicate.
    """
    if source_key is not None:
        existing = await session.scalar(select(Customer).where(Customer.source_key == source_key))
        if existing is not None:
            return existing
    name = name.strip()
    if not name:
        raise ValueError("a customer needs a name")
    owner: str | None = None
    if not in_pool:
        owner = owner_id or actor.userid
        if (
            owner != actor.userid
            and actor.member_ids is not None
            and owner not in actor.member_ids
        ):
            raise NotAllowed(f"{actor.userid} may not assign customers to {owner}")
    core = name_core if name_core is not None else normalize_company_name(name)
    if pinyin is None or initials is None:
        full_keys, initial_keys = pinyin_keys(core or name)
        pinyin = _fit(full_keys, 1000) if pinyin is None else pinyin
        initials = _fit(initial_keys, 200) if initials is None else initials
    customer = Customer(
        name=name,
        name_core=core,
        pinyin=pinyin,
        initials=initials,
        aliases=list(dict.fromkeys(a.strip() for a in aliases if a.strip())),
        owner_id=owner,
        department_id=await _main_department(session, owner) if owner else None,
        industry=industry,
        city=city,
        phone=normalize_phone(phone),
        source_channel=source_channel,
        level=level,
        status=status,
        tags=list(dict.fromkeys(tags)),
        in_pool=in_pool,
        pool_entered_at=now if in_pool else None,
        source_key=source_key,
        created_at=now,
        updated_at=now,
    )
    session.add(customer)
    await session.flush()
    session.add(
        CustomerOwnerHistory(
            customer_id=customer.id,
            from_owner_id=None,
            to_owner_id=owner,
            reason=OwnerChange.CREATE.value,
            at=now,
            by_id=actor.userid,
        )
    )
    await audit.record(
        session,
        actor_id=actor.userid,
        action="customer.create",
        entity="customer",
        entity_id=customer.id,
        before=None,
        after=audit.snapshot(customer, _CUSTOMER_FIELDS),
        source_key=source_key,
        now=now,
    )
    return customer


async def share(
    session: AsyncSession,
    *,
    customer_id: int,
    userid: str,
    access: ShareAccess | str,
    until: datetime | None,
    by: str,
    now: datetime,
    source_key: str | None = None,
) -> CustomerShare:
    """Let a colleague in on a customer (joint deal) until `until`; sharing again updates it.

    The caller checks is_writable for `by` first; this is the write, not the permission.
    """
    access = ShareAccess(access)
    row = await session.scalar(
        select(CustomerShare).where(
            CustomerShare.customer_id == customer_id, CustomerShare.userid == userid
        )
    )
    before = None if row is None else audit.snapshot(row, ("access", "until"))
    if row is None:
        row = CustomerShare(
            customer_id=customer_id,
            userid=userid,
            access=access.value,
            until=until,
            created_by=by,
            created_at=now,
        )
        session.add(row)
    else:
        row.access = access.value
        row.until = until
    await session.flush()
    await audit.record(
        session,
        actor_id=by,
        action="customer.share",
        entity="customer",
        entity_id=customer_id,
        before=None if before is None else {"userid": userid, **before},
        after={"userid": userid, **audit.snapshot(row, ("access", "until"))},
        source_key=source_key,
        now=now,
    )
    return row


async def revoke_share(
    session: AsyncSession,
    *,
    customer_id: int,
    userid: str,
    by: str,
    now: datetime,
    source_key: str | None = None,
) -> bool:
    """End a share at once; False when there was none."""
    row = await session.scalar(
        select(CustomerShare).where(
            CustomerShare.customer_id == customer_id, CustomerShare.userid == userid
        )
    )
    if row is None:
        return False
    before = {"userid": userid, **audit.snapshot(row, ("access", "until"))}
    await session.delete(row)
    await audit.record(
        session,
        actor_id=by,
        action="customer.unshare",
        entity="customer",
        entity_id=customer_id,
        before=before,
        after=None,
        source_key=source_key,
        now=now,
    )
    return True


async def release_to_pool(
    session: AsyncSession,
    *,
    customer_id: int,
    by: str,
    now: datetime,
    source_key: str | None = None,
) -> bool:
    """Put an owned customer into the public pool, remembering who had it (for the cool-down)."""
    owner = await session.scalar(
        select(Customer.owner_id).where(Customer.id == customer_id, Customer.in_pool.is_(False))
    )
    result = await session.execute(
        update(Customer)
        .where(Customer.id == customer_id, Customer.in_pool.is_(False))
        .values(
            previous_owner_id=owner,
            owner_id=None,
            in_pool=True,
            pool_entered_at=now,
            updated_at=now,
        )
    )
    if affected_rows(result) != 1:
        return False
    session.add(
        CustomerOwnerHistory(
            customer_id=customer_id,
            from_owner_id=owner,
            to_owner_id=None,
            reason=OwnerChange.RELEASE.value,
            at=now,
            by_id=by,
        )
    )
    await audit.record(
        session,
        actor_id=by,
        action="customer.release",
        entity="customer",
        entity_id=customer_id,
        before={"owner_id": owner, "in_pool": False},
        after={"owner_id": None, "in_pool": True},
        source_key=source_key,
        now=now,
    )
    return True


def _day_start(now: datetime, tz: tzinfo) -> datetime:
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(now.tzinfo)


async def claims_today(session: AsyncSession, *, userid: str, now: datetime, tz: tzinfo) -> int:
    """Pool claims by this person since local midnight, the count the daily limit applies to."""
    count = await session.scalar(
        select(func.count())
        .select_from(CustomerOwnerHistory)
        .where(
            CustomerOwnerHistory.to_owner_id == userid,
            CustomerOwnerHistory.reason == OwnerChange.CLAIM.value,
            CustomerOwnerHistory.at >= _day_start(now, tz),
        )
    )
    return int(count or 0)


async def claim_from_pool(
    session: AsyncSession,
    *,
    actor: Actor,
    customer_id: int,
    now: datetime,
    tz: tzinfo,
    source_key: str | None = None,
) -> ClaimResult:
    """Take a pool customer, within the daily limit (per local day, 0 turns claiming off) and
    not back within the cool-down after releasing it; two claimers race safely, one wins."""
    rules = await config_data.get_pool_rules(session)
    used = await claims_today(session, userid=actor.userid, now=now, tz=tz)

    def result(outcome: ClaimOutcome, until: datetime | None = None) -> ClaimResult:
        return ClaimResult(outcome, customer_id, used, rules.daily_claim_limit, until)

    if actor.is_service:
        return result(ClaimOutcome.NOT_ALLOWED)
    row = (
        await session.execute(
            select(
                Customer.in_pool,
                Customer.owner_id,
                Customer.previous_owner_id,
                Customer.pool_entered_at,
            ).where(Customer.id == customer_id)
        )
    ).first()
    if row is None:
        return result(ClaimOutcome.NOT_FOUND)
    if not row.in_pool:
        mine = row.owner_id == actor.userid
        return result(ClaimOutcome.ALREADY_YOURS if mine else ClaimOutcome.NOT_IN_POOL)
    if row.previous_owner_id == actor.userid and row.pool_entered_at is not None:
        until = row.pool_entered_at + timedelta(days=rules.reclaim_cooldown_days)
        if now < until:
            return result(ClaimOutcome.COOLDOWN, until)
    if used >= rules.daily_claim_limit:
        return result(ClaimOutcome.LIMIT_REACHED)
    before_department = await session.scalar(
        select(Customer.department_id).where(Customer.id == customer_id)
    )
    claimed = await session.execute(
        update(Customer)
        .where(Customer.id == customer_id, Customer.in_pool.is_(True))
        .values(
            owner_id=actor.userid,
            in_pool=False,
            department_id=await _main_department(session, actor.userid),
            updated_at=now,
        )
    )
    if affected_rows(claimed) != 1:
        return result(ClaimOutcome.NOT_IN_POOL)
    session.add(
        CustomerOwnerHistory(
            customer_id=customer_id,
            from_owner_id=None,
            to_owner_id=actor.userid,
            reason=OwnerChange.CLAIM.value,
            at=now,
            by_id=actor.userid,
        )
    )
    await audit.record(
        session,
        actor_id=actor.userid,
        action="customer.claim",
        entity="customer",
        entity_id=customer_id,
        before={"owner_id": None, "in_pool": True, "department_id": before_department},
        after={"owner_id": actor.userid, "in_pool": False},
        source_key=source_key,
        now=now,
    )
    await session.flush()
    return ClaimResult(ClaimOutcome.CLAIMED, customer_id, used + 1, rules.daily_claim_limit)


async def handover(
    session: AsyncSession,
    *,
    from_userid: str,
    to_userid: str,
    by: str,
    now: datetime,
    source_key: str | None = None,
) -> int:
    """Give everything a person owns and has open (customers, open deals, open tasks and
    unconverted leads) to a colleague, e.g. when they leave; returns the customers moved."""
    target = (
        await session.execute(
            select(Staff.active, Staff.main_department_id).where(Staff.userid == to_userid)
        )
    ).first()
    if target is None or not target.active:
        raise ValueError(f"cannot hand over to {to_userid!r}: unknown or inactive")
    if from_userid == to_userid:
        return 0
    customer_ids = list(
        await session.scalars(
            select(Customer.id).where(Customer.owner_id == from_userid).order_by(Customer.id)
        )
    )
    if customer_ids:
        await session.execute(
            update(Customer)
            .where(Customer.owner_id == from_userid)
            .values(owner_id=to_userid, department_id=target.main_department_id, updated_at=now)
        )
        await session.execute(
            insert(CustomerOwnerHistory),
            [
                {
                    "customer_id": customer_id,
                    "from_owner_id": from_userid,
                    "to_owner_id": to_userid,
                    "reason": OwnerChange.HANDOVER.value,
                    "at": now,
                    "by_id": by,
                }
                for customer_id in customer_ids
            ],
        )
    deals = await session.execute(
        update(Opportunity)
        .where(
            Opportunity.owner_id == from_userid,
            Opportunity.state == OpportunityState.OPEN.value,
        )
        .values(owner_id=to_userid, updated_at=now)
    )
    tasks = await session.execute(
        update(Task)
        .where(Task.owner_id == from_userid, Task.done_at.is_(None))
        .values(owner_id=to_userid)
    )
    leads = await session.execute(
        update(Lead)
        .where(
            Lead.owner_id == from_userid,
            Lead.status.in_((LeadStatus.NEW.value, LeadStatus.CONTACTED.value)),
        )
        .values(owner_id=to_userid)
    )
    await audit.record(
        session,
        actor_id=by,
        action="customer.handover",
        entity="staff",
        entity_id=from_userid,
        before={"owner_id": from_userid},
        after={
            "owner_id": to_userid,
            "customers": len(customer_ids),
            "opportunities": affected_rows(deals),
            "tasks": affected_rows(tasks),
            "leads": affected_rows(leads),
        },
        source_key=source_key,
        now=now,
    )
    return len(customer_ids)


class CustomerField(StrEnum):
    """What 改 may change on a customer."""

    NAME = "name"
    INDUSTRY = "industry"
    PHONE = "phone"
    CITY = "city"


async def edit_customer(
    session: AsyncSession,
    *,
    scope: Scope,
    customer_id: int,
    field: CustomerField,
    value: str,
    source_key: str,
    now: datetime,
) -> tuple[str | None, str | None]:
    """Change one field of a customer the actor may change; (before, after), audited.

    A rename recomputes the lookup keys, so the customer is found by its new name at once.
    A retry of the same message changes nothing again.
    """
    if await _already_done(session, source_key):
        current = await session.get(Customer, customer_id)
        shown = None if current is None else getattr(current, field.value)
        return shown, shown
    customer = await session.scalar(
        select(Customer)
        .where(Customer.id == customer_id, scope.customer_writable())
        .with_for_update()
    )
    if customer is None:
        raise NotAllowed(f"{scope.actor.userid} may not change customer {customer_id}")
    before = audit.snapshot(customer, _CUSTOMER_FIELDS)
    old = getattr(customer, field.value)
    cleaned = value.strip()
    if field is CustomerField.NAME:
        if not cleaned:
            raise ValueError("a customer needs a name")
        customer.name = cleaned[:200]
        customer.name_core = normalize_company_name(cleaned)
        full_keys, initial_keys = pinyin_keys(customer.name_core or cleaned)
        customer.pinyin = _fit(full_keys, 1000)
        customer.initials = _fit(initial_keys, 200)
    elif field is CustomerField.PHONE:
        customer.phone = normalize_phone(cleaned)
    else:
        setattr(customer, field.value, cleaned[:64] or None)
    customer.updated_at = now
    await session.flush()
    await audit.record(
        session,
        actor_id=scope.actor.userid,
        action=f"customer.edit.{field.value}",
        entity="customer",
        entity_id=customer_id,
        before=before,
        after=audit.snapshot(customer, _CUSTOMER_FIELDS),
        source_key=source_key,
        now=now,
    )
    return old, getattr(customer, field.value)


async def _already_done(session: AsyncSession, source_key: str) -> bool:
    found = await session.scalar(
        select(AuditEntry.id).where(AuditEntry.source_key == source_key).limit(1)
    )
    return found is not None


# Undo (撤销) -----------------------------------------------------------------------------------


async def audit_of(
    session: AsyncSession, *, entity: str, entity_id: int, action: str, source_key: str | None
) -> AuditEntry | None:
    """The audit row one message wrote for one action (the write 撤销 takes back)."""
    query = select(AuditEntry).where(
        AuditEntry.entity == entity,
        AuditEntry.entity_id == str(entity_id),
        AuditEntry.action.like(action),
    )
    if source_key is not None:
        query = query.where(AuditEntry.source_key == source_key)
    return await session.scalar(query.order_by(AuditEntry.id.desc()).limit(1))


async def written_since(
    session: AsyncSession, *, entity: str, entity_id: int, after_id: int
) -> bool:
    """Whether anything else was audited on the entity after the row `after_id`."""
    found = await session.scalar(
        select(AuditEntry.id)
        .where(
            AuditEntry.entity == entity,
            AuditEntry.entity_id == str(entity_id),
            AuditEntry.id > after_id,
        )
        .limit(1)
    )
    return found is not None


async def undo_outcome(
    session: AsyncSession,
    *,
    entity: str,
    entity_id: int,
    undo_action: str,
    after_id: int,
    source_key: str,
) -> UndoResult | None:
    """UNDONE for a retry of the same 撤销, ALREADY_UNDONE for a later one, else None."""
    done = await session.scalar(
        select(AuditEntry)
        .where(
            AuditEntry.entity == entity,
            AuditEntry.entity_id == str(entity_id),
            AuditEntry.action == undo_action,
            AuditEntry.id > after_id,
        )
        .limit(1)
    )
    if done is None:
        return None
    return UndoResult.UNDONE if done.source_key == source_key else UndoResult.ALREADY_UNDONE


async def _refusal(
    entry: AuditEntry | None, *, actor_id: str, now: datetime, window: timedelta
) -> UndoResult | None:
    if entry is None:
        return UndoResult.NOT_FOUND
    if entry.actor_id != actor_id:
        return UndoResult.NOT_YOURS
    if now - entry.at > window:
        return UndoResult.TOO_LATE
    return None


async def _has_records(session: AsyncSession, customer_id: int) -> bool:
    """Follow-ups, deals, tasks, tickets, leads or shares: a customer someone has worked on."""
    from crm_store.models.sales import Followup
    from crm_store.models.service import Ticket

    for column in (
        Followup.customer_id,
        Opportunity.customer_id,
        Task.customer_id,
        Ticket.customer_id,
        Lead.converted_customer_id,
        CustomerShare.customer_id,
    ):
        found = await session.scalar(select(column).where(column == customer_id).limit(1))
        if found is not None:
            return True
    return False


async def undo_create_customer(
    session: AsyncSession,
    *,
    actor_id: str,
    customer_id: int,
    created_key: str,
    source_key: str,
    now: datetime,
    window: timedelta = UNDO_WINDOW,
) -> UndoResult:
    """Take back a customer one just created (新客户), with its contact; audited.

    Refused once anything else was written on it (a follow-up, a deal, an edit, a claim).
    """
    from crm_store.models.customer import Contact

    created = await audit_of(
        session,
        entity="customer",
        entity_id=customer_id,
        action="customer.create",
        source_key=created_key,
    )
    if created is not None:
        again = await undo_outcome(
            session,
            entity="customer",
            entity_id=customer_id,
            undo_action="customer.undo_create",
            after_id=created.id,
            source_key=source_key,
        )
        if again is not None:
            return again
    refused = await _refusal(created, actor_id=actor_id, now=now, window=window)
    if refused is not None:
        return refused
    assert created is not None
    customer = await session.scalar(
        select(Customer).where(Customer.id == customer_id).with_for_update()
    )
    if customer is None:
        return UndoResult.NOT_FOUND
    if await written_since(
        session, entity="customer", entity_id=customer_id, after_id=created.id
    ) or await _has_records(session, customer_id):
        return UndoResult.CHANGED_SINCE
    contacts = list(
        await session.scalars(select(Contact).where(Contact.customer_id == customer_id))
    )
    if any(c.created_at != customer.created_at for c in contacts):
        return UndoResult.CHANGED_SINCE
    before = {
        "id": customer.id,
        **audit.snapshot(customer, _CUSTOMER_FIELDS),
        "contacts": [{"name": c.name, "phone": c.phone} for c in contacts],
    }
    await session.execute(delete(Contact).where(Contact.customer_id == customer_id))
    await session.execute(
        delete(CustomerOwnerHistory).where(CustomerOwnerHistory.customer_id == customer_id)
    )
    await session.execute(delete(Customer).where(Customer.id == customer_id))
    session.expunge(customer)
    await audit.record(
        session,
        actor_id=actor_id,
        action="customer.undo_create",
        entity="customer",
        entity_id=customer_id,
        before=before,
        after=None,
        source_key=source_key,
        now=now,
    )
    return UndoResult.UNDONE


async def undo_claim(
    session: AsyncSession,
    *,
    actor_id: str,
    customer_id: int,
    claim_key: str,
    source_key: str,
    now: datetime,
    window: timedelta = UNDO_WINDOW,
) -> UndoResult:
    """Put a customer one just claimed back in the pool (领取 taken back); the claim no longer
    counts against today's limit. Refused once anything else was written on it."""
    from crm_store.models.sales import Followup

    claimed = await audit_of(
        session,
        entity="customer",
        entity_id=customer_id,
        action="customer.claim",
        source_key=claim_key,
    )
    if claimed is not None:
        again = await undo_outcome(
            session,
            entity="customer",
            entity_id=customer_id,
            undo_action="customer.undo_claim",
            after_id=claimed.id,
            source_key=source_key,
        )
        if again is not None:
            return again
    refused = await _refusal(claimed, actor_id=actor_id, now=now, window=window)
    if refused is not None:
        return refused
    assert claimed is not None
    customer = await session.scalar(
        select(Customer).where(Customer.id == customer_id).with_for_update()
    )
    if customer is None:
        return UndoResult.NOT_FOUND
    worked = False
    for column, at in (
        (Followup.customer_id, Followup.created_at),
        (Opportunity.customer_id, Opportunity.created_at),
    ):
        found = await session.scalar(
            select(column).where(column == customer_id, at >= claimed.at).limit(1)
        )
        worked = worked or found is not None
    if (
        worked
        or customer.owner_id != actor_id
        or customer.in_pool
        or await written_since(
            session, entity="customer", entity_id=customer_id, after_id=claimed.id
        )
    ):
        return UndoResult.CHANGED_SINCE
    department = (claimed.before or {}).get("department_id")
    customer.owner_id = None
    customer.in_pool = True
    customer.department_id = department if isinstance(department, int) else None
    customer.updated_at = now
    history = await session.scalar(
        select(CustomerOwnerHistory)
        .where(
            CustomerOwnerHistory.customer_id == customer_id,
            CustomerOwnerHistory.to_owner_id == actor_id,
            CustomerOwnerHistory.reason == OwnerChange.CLAIM.value,
        )
        .order_by(CustomerOwnerHistory.id.desc())
        .limit(1)
    )
    if history is not None:
        await session.execute(
            delete(CustomerOwnerHistory).where(CustomerOwnerHistory.id == history.id)
        )
    await session.flush()
    await audit.record(
        session,
        actor_id=actor_id,
        action="customer.undo_claim",
        entity="customer",
        entity_id=customer_id,
        before=claimed.after,
        after={"owner_id": None, "in_pool": True, "department_id": customer.department_id},
        source_key=source_key,
        now=now,
    )
    return UndoResult.UNDONE


async def undo_edit_customer(
    session: AsyncSession,
    *,
    actor_id: str,
    customer_id: int,
    edit_key: str,
    source_key: str,
    now: datetime,
    window: timedelta = UNDO_WINDOW,
) -> UndoResult:
    """Put back what 改 changed on a customer, unless it was changed again since."""
    edited = await audit_of(
        session,
        entity="customer",
        entity_id=customer_id,
        action="customer.edit.%",
        source_key=edit_key,
    )
    if edited is not None:
        again = await undo_outcome(
            session,
            entity="customer",
            entity_id=customer_id,
            undo_action="customer.undo_edit",
            after_id=edited.id,
            source_key=source_key,
        )
        if again is not None:
            return again
    refused = await _refusal(edited, actor_id=actor_id, now=now, window=window)
    if refused is not None:
        return refused
    assert edited is not None
    customer = await session.scalar(
        select(Customer).where(Customer.id == customer_id).with_for_update()
    )
    if customer is None:
        return UndoResult.NOT_FOUND
    if await written_since(session, entity="customer", entity_id=customer_id, after_id=edited.id):
        return UndoResult.CHANGED_SINCE
    before = audit.snapshot(customer, _CUSTOMER_FIELDS)
    old = edited.before or {}
    for name in ("name", "name_core", "industry", "city", "phone"):
        if name in old:
            setattr(customer, name, old[name])
    full_keys, initial_keys = pinyin_keys(customer.name_core or customer.name)
    customer.pinyin = _fit(full_keys, 1000)
    customer.initials = _fit(initial_keys, 200)
    customer.updated_at = now
    await session.flush()
    await audit.record(
        session,
        actor_id=actor_id,
        action="customer.undo_edit",
        entity="customer",
        entity_id=customer_id,
        before=before,
        after=audit.snapshot(customer, _CUSTOMER_FIELDS),
        source_key=source_key,
        now=now,
    )
    return UndoResult.UNDONE
