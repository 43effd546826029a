"""The WeCom directory in our database: full syncs, and people fetched on first contact.

A sync reads everything from WeCom first and then writes it in one transaction, so a WeCom
failure half-way changes nothing, and no database lock is held while waiting on the network.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.runtime.people import PersonUnreachable
from bot.wecom.client import WeComClient, WeComError, WeComTransportError
from crm_store import audit, config_data, staff
from crm_store.clock import Clock, SystemClock
from crm_store.models.audit import AuditEntry
from crm_store.models.org import Role, Staff, StaffDepartment
from crm_store.scope import Actor, load_actor
from handlers.kit.inbound import ContactChange

__all__ = [
    "DirectoryPersonFetcher",
    "SyncError",
    "SyncReport",
    "actor_loader_factory",
    "contact_change_handler",
    "sync_directory",
]

logger = logging.getLogger(__name__)

# PROTOCOL.md §5 / §4.8: outside the app's visibility, or an API this secret or IP may no
# longer call (department/list, user/list since 2022-08-15): use the id lists instead.
REFUSED_ERRCODES = frozenset({48002, 60011})
ACTIVE_STATUS = 1  # PROTOCOL.md §5: 1 active, 2 disabled, 4 not activated, 5 quit
USER_NOT_FOUND = 60111


class SyncError(Exception):
    """The directory could not be read well enough to write it; nothing was changed."""


@dataclass
class SyncReport:
    """What a sync changed, for the admin's summary and the log."""

    departments: int = 0
    people: int = 0
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    demoted: list[str] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # listed, but user/get refused


@dataclass(frozen=True)
class _Dept:
    id: int
    name: str
    parent_id: int
    order: int
    leaders: tuple[str, ...]


@dataclass(frozen=True)
class _Member:
    userid: str
    name: str
    department_ids: tuple[int, ...]
    main_department_id: int | None
    leader_in: frozenset[int]
    direct_leaders: tuple[str, ...]
    active: bool
    position: str | None

    def view(self) -> tuple[Any, ...]:
        """What the database holds of this person, to tell changed from unchanged."""
        return (
            self.name,
            self.active,
            self.main_department_id,
            tuple(sorted((d, d in self.leader_in) for d in set(self.department_ids))),
            tuple(u for u in dict.fromkeys(self.direct_leaders) if u != self.userid),
            self.position,
        )


def _member(data: dict[str, Any], leaders_by_dept: dict[int, set[str]]) -> _Member:
    """user/get and user/list shape (doc 90196) → _Member; leader flags from both sources."""
    userid = str(data["userid"])
    departments = tuple(int(d) for d in data.get("department") or ())
    flags = list(data.get("is_leader_in_dept") or ())
    leader_in = {d for d, flag in zip(departments, flags, strict=False) if flag}
    leader_in |= {d for d in departments if userid in leaders_by_dept.get(d, ())}
    main = data.get("main_department")
    main_id = int(main) if main else (departments[0] if departments else None)
    if main_id is not None and departments and main_id not in departments:
        main_id = departments[0]
    return _Member(
        userid=userid,
        name=str(data.get("name") or userid),
        department_ids=departments,
        main_department_id=main_id,
        leader_in=frozenset(leader_in),
        direct_leaders=tuple(str(u) for u in data.get("direct_leader") or ()),
        active=int(data.get("status", ACTIVE_STATUS)) == ACTIVE_STATUS,
        position=str(data.get("position") or "") or None,
    )


def _dept(data: dict[str, Any]) -> _Dept:
    return _Dept(
        id=int(data["id"]),
        name=str(data.get("name") or f"部门{data['id']}"),
        parent_id=int(data.get("parentid") or 0),
        order=int(data.get("order") or 0),
        leaders=tuple(str(u) for u in data.get("department_leader") or ()),
    )


def _refused(exc: WeComError) -> bool:
    return exc.errcode in REFUSED_ERRCODES


async def _fetch_departments(client: WeComClient, report: SyncReport) -> list[_Dept]:
    try:
        return [_dept(d) for d in await client.list_departments()]
    except WeComError as exc:
        if not _refused(exc):
            raise
        logger.info("department/list refused (errcode %s); using simplelist + get", exc.errcode)
    report.fallbacks.append("department/simplelist")
    departments = []
    for row in await client.list_department_ids():
        try:
            departments.append(_dept(await client.get_department(int(row["id"]))))
        except WeComError as exc:
            if not _refused(exc):
                raise
            # Listed but not readable: keep the tree right; the name shows as 部门<id>.
            departments.append(_dept(row))
    return departments


async def _fetch_members(
    client: WeComClient, departments: list[_Dept], report: SyncReport
) -> list[_Member]:
    leaders = {d.id: set(d.leaders) for d in departments}
    found: dict[str, _Member] = {}
    try:
        for department in departments:
            for data in await client.list_users(department.id, fetch_child=False):
                found.setdefault(str(data["userid"]), _member(data, leaders))
        return list(found.values())
    except WeComError as exc:
        if not _refused(exc):
            raise
        logger.info("user/list refused (errcode %s); using user/list_id + user/get", exc.errcode)
    report.fallbacks.append("user/list_id")
    userids = list(dict.fromkeys(str(row["userid"]) for row in await client.list_user_ids()))
    members = []
    for userid in userids:
        try:
            members.append(_member(await client.get_user(userid), leaders))
        except WeComError as exc:
            if exc.errcode == USER_NOT_FOUND:
                continue  # left between the two calls: gone, like anyone not listed
            if not _refused(exc):
                raise
            # Listed but not readable: keep them as they are rather than deactivate them.
            report.unreadable.append(userid)
    if report.unreadable and not members:
        raise SyncError(
            "企业微信拒绝读取成员详情 (user/get refused for everyone): 请检查应用权限和可信 IP"
        )
    return members


async def _manual_roles(session: AsyncSession) -> set[str]:
    """People whose role someone set by hand: a sync never overrides those."""
    rows = await session.scalars(
        select(AuditEntry.entity_id)
        .where(
            AuditEntry.action == "staff.set_role",
            AuditEntry.entity == "staff",
            AuditEntry.actor_id != staff.SYNC_ACTOR,
        )
        .distinct()
    )
    return set(rows)


async def _current_views(session: AsyncSession) -> dict[str, tuple[Any, ...]]:
    memberships: dict[str, list[tuple[int, bool]]] = {}
    for userid, department_id, is_leader in await session.execute(
        select(StaffDepartment.userid, StaffDepartment.department_id, StaffDepartment.is_leader)
    ):
        memberships.setdefault(userid, []).append((department_id, is_leader))
    views = {}
    for person in await session.scalars(select(Staff)):
        views[person.userid] = (
            person.name,
            person.active,
            person.main_department_id,
            tuple(sorted(memberships.get(person.userid, []))),
            tuple(person.direct_leaders or ()),
            person.position,
        )
    return views


async def _apply_roles(
    session: AsyncSession,
    members: Iterable[_Member],
    *,
    now: datetime,
    report: SyncReport,
) -> None:
    """WeCom leaders become managers; a sync-made manager who leads nothing any more goes back
    to the default role. A role an admin set is left alone."""
    manual = await _manual_roles(session)
    default_role = await config_data.get_default_role(session)
    roles: dict[str, str] = {
        u: r for u, r in await session.execute(select(Staff.userid, Staff.role))
    }
    for member in members:
        if member.userid in manual or not member.active:
            continue
        role = roles.get(member.userid)
        if member.leader_in and role == default_role and role != Role.MANAGER.value:
            await staff.set_role(
                session, userid=member.userid, role=Role.MANAGER.value, by=staff.SYNC_ACTOR,
                now=now,
            )  # fmt: skip
            report.promoted.append(member.userid)
        elif not member.leader_in and role == Role.MANAGER.value and default_role != role:
            await staff.set_role(
                session, userid=member.userid, role=default_role, by=staff.SYNC_ACTOR, now=now
            )
            report.demoted.append(member.userid)


async def sync_directory(
    client: WeComClient, sessions: async_sessionmaker[AsyncSession], *, now: datetime
) -> SyncReport:
    """Make departments and staff match WeCom; people WeCom no longer lists become inactive."""
    report = SyncReport()
    try:
        departments = await _fetch_departments(client, report)
        members = await _fetch_members(client, departments, report)
    except (WeComError, WeComTransportError) as exc:
        raise SyncError(
            f"读取企业微信通讯录失败 (reading the WeCom directory failed): {exc}"
        ) from exc
    if not members:
        # An app whose visibility was emptied would otherwise deactivate the whole company.
        raise SyncError(
            "企业微信没有返回任何成员，请检查应用的可见范围 (WeCom listed nobody; check the "
            "app's visibility); nothing was changed"
        )
    report.departments = len(departments)
    report.people = sum(1 for m in members if m.active)

    async with sessions() as session, session.begin():
        before = await _current_views(session)
        # Parents first, so a reader of a half-applied tree never sees a dangling parent.
        for department in sorted(departments, key=lambda d: (d.parent_id != 0, d.id)):
            await staff.upsert_department(
                session,
                department_id=department.id,
                name=department.name,
                parent_id=department.parent_id,
                order=department.order,
                now=now,
            )
        for member in members:
            await _upsert_member(session, member, now=now)
            old = before.get(member.userid)
            if old is None:
                report.new.append(member.userid)
            elif old != member.view():
                report.changed.append(member.userid)
        gone = await staff.mark_inactive_except(
            session,
            seen_userids=[m.userid for m in members if m.active] + report.unreadable,
            now=now,
        )
        # Listed but disabled or quit (status != 1): upserted inactive above.
        disabled = {m.userid for m in members if not m.active and m.userid in before}
        report.deactivated = sorted(set(gone) | {u for u in disabled if before[u][1]})
        await _apply_roles(session, members, now=now, report=report)
    logger.info(
        "directory synced: %d departments, %d active people, %d new, %d changed, "
        "%d deactivated, fallbacks=%s",
        report.departments,
        report.people,
        len(report.new),
        len(report.changed),
        len(report.deactivated),
        report.fallbacks or "none",
    )
    return report


async def _upsert_member(session: AsyncSession, member: _Member, *, now: datetime) -> None:
    await staff.upsert_staff(
        session,
        userid=member.userid,
        name=member.name,
        department_ids=member.department_ids,
        main_department_id=member.main_department_id,
        leader_in=member.leader_in,
        direct_leaders=member.direct_leaders,
        active=member.active,
        position=member.position,
        now=now,
    )


# PROTOCOL.md §4.8: system busy and rate limits pass; the rest (60111 no such user …) do not.
TRANSIENT_ERRCODES = frozenset({-1, 45009, 45033})


class DirectoryPersonFetcher:
    """The worker's "meet an unknown person" step: fetch them from WeCom if we lack them.

    Someone who messages the bot before the next sync is added from `user/get` on the spot
    (their departments as bare ids if unknown), so nobody is told "who are you?". A WeCom
    error leaves them unknown for this message and is logged without any secret. No session
    is held while WeCom answers: on SQLite that would stall every callback's ack.
    """

    def __init__(
        self,
        client: WeComClient,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        self._sessions = sessions
        self._clock = clock or SystemClock()

    async def fetch(self, user_id: str) -> bool:
        """True when `user_id` is in our staff table now (already, or just added)."""
        async with self._sessions() as session:
            if await session.get(Staff, user_id) is not None:
                return True
        try:
            data = await self._client.get_user(user_id)
        except WeComTransportError as exc:
            logger.warning(
                "user/get for a new sender did not answer (%s); asking again soon",
                type(exc).__name__,
            )
            raise PersonUnreachable(user_id) from None
        except WeComError as exc:
            if exc.errcode in TRANSIENT_ERRCODES:
                logger.warning(
                    "user/get for a new sender is busy (%s); asking again soon", exc.errcode
                )
                raise PersonUnreachable(user_id) from None
            logger.warning(
                "user/get for an unknown sender failed (%s); treating them as unknown",
                exc.errcode,
            )
            return False
        member = _member(data, {})
        if not member.active:
            return False
        now = self._clock.now()
        async with self._sessions.begin() as session:
            await _upsert_member(session, member, now=now)
            await _apply_roles(session, [member], now=now, report=SyncReport())
        return True


def actor_loader_factory(
    client: WeComClient,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock | None = None,
) -> Callable[[str], Awaitable[Actor | None]]:
    """Load an actor, meeting them first (see DirectoryPersonFetcher) if we do not know them."""
    fetcher = DirectoryPersonFetcher(client, sessions, clock)

    async def load(userid: str) -> Actor | None:
        if not await fetcher.fetch(userid):
            return None
        async with sessions() as session:
            return await load_actor(session, userid)

    return load


_PERSON_CHANGES = frozenset({"create_user", "update_user", "delete_user"})
_NOT_IN_WECOM = frozenset({46004, 60111})


def contact_change_handler(
    client: WeComClient,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock | None = None,
) -> Callable[[ContactChange], Awaitable[None]]:
    """Apply WeCom's change_contact pushes for one person at once, so a move, a new leader
    or a leaver changes what people see before the next full sync."""
    clock = clock or SystemClock()

    async def apply(change: ContactChange) -> None:
        userid = change.changed_user_id
        if not userid or change.change_type not in _PERSON_CHANGES:
            return
        data: dict[str, Any] | None = None
        if change.change_type != "delete_user":
            try:
                data = await client.get_user(userid)
            except WeComError as exc:
                if exc.errcode not in _NOT_IN_WECOM:
                    logger.warning("user/get after change_contact failed (%s)", exc.errcode)
                    return
            except WeComTransportError as exc:
                logger.warning("user/get after change_contact failed (%s)", exc.reason)
                return
        now = clock.now()
        async with sessions.begin() as session:
            if data is None:
                await _deactivate(session, userid, now=now)
                return
            member = _member(data, {})
            await _upsert_member(session, member, now=now)
            await _apply_roles(session, [member], now=now, report=SyncReport())

    return apply


async def _deactivate(session: AsyncSession, userid: str, *, now: datetime) -> None:
    person = await staff.get_staff(session, userid)
    if person is None or not person.active:
        return
    person.active = False
    person.updated_at = now
    await audit.record(
        session,
        actor_id=staff.SYNC_ACTOR,
        action="staff.deactivate",
        entity="staff",
        entity_id=userid,
        before={"active": True},
        after={"active": False},
        source_key=None,
        now=now,
    )
