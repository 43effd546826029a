"""Who may see what: an actor's data scope, turned into WHERE clauses by the store.

The levels are Wukong CRM's `data_type`. A record belongs to the departments its *owner* is in
now (the owner's `staff_department` rows), not to `customers.department_id`, which only records
the department at assignment. So moving a person, making someone a leader or changing a role
changes what everyone sees at the next `load_actor`, with no record rewritten.

Rules beyond the level, one place for all of them:
- a department leader (`staff_department.is_leader`) gets the LEADER scope (default 本部门及下属)
  over the departments they lead, on top of their role's scope;
- people in several departments: DEPARTMENT covers all of them, DEPARTMENT_TREE their subtrees,
  and their records are visible to whoever sees any one of their departments;
- the public pool (公海) is visible to everyone; a pool customer can be written only by ALL;
- a share lets one colleague read (or with access "write", also write) one customer until
  `until` (exclusive), together with that customer's opportunities, tickets and follow-ups;
- service staff read every customer card, contact, follow-up, opportunity row and ticket, but
  an opportunity amount only where their own level reaches (by default only their own deals);
- an unowned customer that is not in the pool belongs to its recorded department;
- tasks are personal (owner plus whoever's level reaches the owner); unowned leads are a lead
  pool everyone sees; unknown and inactive people get no actor at all.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, null, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, aliased

from crm_store import config_data
from crm_store.config_data import LEADER, RoleScope
from crm_store.models.customer import Contact, Customer, CustomerShare, ShareAccess
from crm_store.models.org import Department, Role, ScopeLevel, Staff, StaffDepartment
from crm_store.models.sales import Followup, Lead, Opportunity, Task
from crm_store.models.service import Ticket

__all__ = ["Actor", "Scope", "ScopeLevel", "load_actor", "load_scope"]

_RANK = {
    ScopeLevel.SELF: 0,
    ScopeLevel.SELF_AND_SUBORDINATES: 1,
    ScopeLevel.DEPARTMENT: 2,
    ScopeLevel.DEPARTMENT_TREE: 3,
    ScopeLevel.CUSTOM: 4,
    ScopeLevel.ALL: 5,
}


@dataclass(frozen=True)
class Actor:
    """A person as the store sees them for one message; load it fresh, never cache it.

    visible_owner_ids and visible_department_ids are both None for ALL. Otherwise a record is
    in scope when its owner is in visible_owner_ids (always holding the actor) or is a member
    of one of visible_department_ids. member_ids resolves the same rule to people, for checks
    made in Python.
    """

    userid: str
    role: str
    level: ScopeLevel
    department_ids: frozenset[int]
    visible_department_ids: frozenset[int] | None
    visible_owner_ids: frozenset[str] | None
    is_service: bool
    led_department_ids: frozenset[int] = frozenset()
    member_ids: frozenset[str] | None = None

    @property
    def sees_all(self) -> bool:
        return self.visible_department_ids is None


def _subtree(roots: Iterable[int], children: dict[int, list[int]]) -> set[int]:
    seen: set[int] = set()
    queue = deque(roots)
    while queue:
        department = queue.popleft()
        if department in seen:
            continue  # a cycle in bad directory data must not hang us
        seen.add(department)
        queue.extend(children.get(department, ()))
    return seen


def _below(userid: str, leaders_of: dict[str, list[str]]) -> set[str]:
    """Everyone whose direct-leader chain reaches userid."""
    reports: dict[str, list[str]] = defaultdict(list)
    for person, leaders in leaders_of.items():
        for leader in leaders:
            reports[leader].append(person)
    seen: set[str] = set()
    queue = deque(reports.get(userid, ()))
    while queue:
        person = queue.popleft()
        if person in seen or person == userid:
            continue
        seen.add(person)
        queue.extend(reports.get(person, ()))
    return seen


async def load_actor(session: AsyncSession, userid: str) -> Actor | None:
    """Resolve a userid to its scope now; None for unknown or inactive people (no access)."""
    row = (
        await session.execute(
            select(Staff.role, Staff.active).where(Staff.userid == userid).limit(1)
        )
    ).first()
    if row is None or not row.active:
        return None
    role: str = row.role
    memberships = (
        await session.execute(
            select(StaffDepartment.department_id, StaffDepartment.is_leader).where(
                StaffDepartment.userid == userid
            )
        )
    ).all()
    department_ids = frozenset(m.department_id for m in memberships)
    led = frozenset(m.department_id for m in memberships if m.is_leader)

    scopes = await config_data.get_role_scopes(session)
    fallback = config_data.DEFAULT_ROLE_SCOPES[Role.REP.value]
    grants: list[tuple[RoleScope, frozenset[int]]] = [(scopes.get(role, fallback), department_ids)]
    if led:
        grants.append((scopes[LEADER], led))
    levels = {grant.level for grant, _ in grants}

    children: dict[int, list[int]] = defaultdict(list)
    if levels & {ScopeLevel.DEPARTMENT_TREE, ScopeLevel.CUSTOM}:
        for department_id, parent_id in await session.execute(
            select(Department.id, Department.parent_id)
        ):
            if parent_id is not None:
                children[parent_id].append(department_id)
    subordinates: set[str] = set()
    if ScopeLevel.SELF_AND_SUBORDINATES in levels:
        leaders_of = {
            person: list(leaders or [])
            for person, leaders in await session.execute(
                select(Staff.userid, Staff.direct_leaders)
            )
        }
        subordinates = _below(userid, leaders_of)

    owners: set[str] | None = {userid}
    departments: set[int] | None = set()
    for grant, basis in grants:
        if grant.level is ScopeLevel.ALL:
            owners = departments = None
            break
        assert owners is not None and departments is not None
        if grant.level is ScopeLevel.SELF_AND_SUBORDINATES:
            owners |= subordinates
        elif grant.level is ScopeLevel.DEPARTMENT:
            departments |= basis
        elif grant.level is ScopeLevel.DEPARTMENT_TREE:
            departments |= _subtree(basis, children)
        elif grant.level is ScopeLevel.CUSTOM:
            departments |= _subtree(grant.department_ids, children)

    level = max((grant.level for grant, _ in grants), key=_RANK.__getitem__)
    member_ids: frozenset[str] | None = None
    if owners is not None and departments is not None:
        members = set(owners)
        if departments:
            members |= set(
                await session.scalars(
                    select(StaffDepartment.userid)
                    .where(StaffDepartment.department_id.in_(sorted(departments)))
                    .distinct()
                )
            )
        member_ids = frozenset(members)
    return Actor(
        userid=userid,
        role=role,
        level=level,
        department_ids=department_ids,
        visible_department_ids=None if departments is None else frozenset(departments),
        visible_owner_ids=None if owners is None else frozenset(owners),
        is_service=role == Role.SERVICE.value,
        led_department_ids=led,
        member_ids=member_ids,
    )


async def load_scope(session: AsyncSession, userid: str, *, now: datetime) -> Scope | None:
    """load_actor plus the Scope for a query made at `now` (shares expire against it)."""
    actor = await load_actor(session, userid)
    return None if actor is None else Scope(actor, now=now)


class Scope:
    """An actor's scope at one moment, as WHERE clauses; combine them with any other filter."""

    def __init__(self, actor: Actor, *, now: datetime) -> None:
        self.actor = actor
        self.now = now

    def owned(self, owner: QueryableAttribute[Any]) -> ColumnElement[bool]:
        """Records whose owner this actor's level reaches (the level rule, without pool/shares)."""
        actor = self.actor
        if actor.visible_department_ids is None:
            return true()
        owners = sorted(actor.visible_owner_ids or {actor.userid})
        clauses: list[ColumnElement[bool]] = [owner.in_(owners)]
        if actor.visible_department_ids:
            members = (
                select(StaffDepartment.userid)
                .where(StaffDepartment.department_id.in_(sorted(actor.visible_department_ids)))
                .correlate(None)
            )
            clauses.append(owner.in_(members))
        return or_(*clauses)

    def _shared_ids(self, *, write: bool = False) -> Select[int]:
        query = select(CustomerShare.customer_id).where(
            CustomerShare.userid == self.actor.userid,
            or_(CustomerShare.until.is_(None), CustomerShare.until > self.now),
        )
        if write:
            query = query.where(CustomerShare.access == ShareAccess.WRITE.value)
        return query.correlate(None)

    def _customer_rule(self, c: type[Customer], *, reads: bool) -> ColumnElement[bool]:
        actor = self.actor
        if actor.visible_department_ids is None or (reads and actor.is_service):
            return true()
        clauses = [self.owned(c.owner_id)]
        if actor.visible_department_ids:
            clauses.append(
                and_(
                    c.owner_id.is_(None),
                    c.department_id.in_(sorted(actor.visible_department_ids)),
                )
            )
        clauses.append(c.id.in_(self._shared_ids(write=not reads)))
        if reads:
            return or_(c.in_pool.is_(True), *clauses)
        return and_(c.in_pool.is_(False), or_(*clauses))

    def customers(self) -> ColumnElement[bool]:
        """Customers the actor may read: level, pool, live shares; service reads every card."""
        return self._customer_rule(Customer, reads=True)

    def customer_writable(self) -> ColumnElement[bool]:
        """Customers the actor may change: level (own, subordinates', led departments'), write
        shares; never the pool unless ALL; service's read-everything does not extend to this."""
        return self._customer_rule(Customer, reads=False)

    def visible_customer_ids(self) -> Select[int]:
        """A subquery of readable customer ids, for filtering children of customers."""
        alias = aliased(Customer)
        return select(alias.id).where(self._customer_rule(alias, reads=True)).correlate(None)

    def contacts(self) -> ColumnElement[bool]:
        if self.actor.is_service or self.actor.sees_all:
            return true()
        return Contact.customer_id.in_(self.visible_customer_ids())

    def _opportunity_rule(self) -> ColumnElement[bool]:
        if self.actor.sees_all:
            return true()
        return or_(
            self.owned(Opportunity.owner_id), Opportunity.customer_id.in_(self._shared_ids())
        )

    def opportunities(self) -> ColumnElement[bool]:
        """Opportunity rows; service sees every row but amounts only via opportunity_amounts."""
        if self.actor.is_service:
            return true()
        return self._opportunity_rule()

    def opportunity_amounts(self) -> ColumnElement[bool]:
        """Opportunities whose amount the actor may see (and sum)."""
        return self._opportunity_rule()

    def amount_column(self) -> ColumnElement[Decimal | None]:
        """Opportunity.amount, or NULL where this actor may not see it: select this, not amount."""
        if not self.actor.is_service:
            return Opportunity.amount.label("amount")
        return case((self.opportunity_amounts(), Opportunity.amount), else_=null()).label("amount")

    def can_see_amount(self, opportunity_owner_id: str) -> bool:
        """opportunity_amounts in Python, for a row read through this scope (shares aside)."""
        actor = self.actor
        if not actor.is_service or actor.member_ids is None:
            return True
        return opportunity_owner_id in actor.member_ids

    def tickets(self) -> ColumnElement[bool]:
        """Service sees all tickets; others those of readable customers or of people in scope."""
        if self.actor.is_service or self.actor.sees_all:
            return true()
        return or_(
            Ticket.customer_id.in_(self.visible_customer_ids()),
            self.owned(Ticket.opened_by),
            self.owned(Ticket.assignee_id),
        )

    def followups(self) -> ColumnElement[bool]:
        """A customer's history goes with the customer; authors always see their own."""
        if self.actor.is_service or self.actor.sees_all:
            return true()
        return or_(
            Followup.customer_id.in_(self.visible_customer_ids()), self.owned(Followup.author_id)
        )

    def tasks(self) -> ColumnElement[bool]:
        """Tasks are personal: the owner and whoever's level reaches the owner."""
        return self.owned(Task.owner_id)

    def leads(self) -> ColumnElement[bool]:
        """Owned leads by level; unowned leads are a pool everyone may see."""
        if self.actor.sees_all:
            return true()
        return or_(Lead.owner_id.is_(None), self.owned(Lead.owner_id))
