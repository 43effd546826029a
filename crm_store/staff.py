"""The directory: departments and people as WeCom reports them, plus CRM roles.

Every write is an upsert that leaves an audit row only when something changed, so a nightly
directory sync is cheap and its audit trail shows real moves, not noise.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_store import audit, config_data
from crm_store.models.org import Department, Role, Staff, StaffDepartment

SYNC_ACTOR = "sync"
_DEPARTMENT_FIELDS = ("name", "parent_id", "order")


async def get_staff(session: AsyncSession, userid: str) -> Staff | None:
    """The person with their department memberships loaded (relationships never lazy-load)."""
    return await session.scalar(
        select(Staff).where(Staff.userid == userid).options(selectinload(Staff.memberships))
    )


async def get_department(session: AsyncSession, department_id: int) -> Department | None:
    return await session.get(Department, department_id)


async def upsert_department(
    session: AsyncSession,
    *,
    department_id: int,
    name: str,
    parent_id: int | None,
    order: int = 0,
    now: datetime,
    by: str = SYNC_ACTOR,
    source_key: str | None = None,
) -> Department:
    """Create or update one WeCom department; WeCom's root has parent 0, stored as NULL."""
    parent = parent_id or None
    department = await session.get(Department, department_id)
    before = None if department is None else audit.snapshot(department, _DEPARTMENT_FIELDS)
    if department is None:
        department = Department(id=department_id, name=name, parent_id=parent, order=order)
        session.add(department)
    else:
        department.name = name
        department.parent_id = parent
        department.order = order
    after = audit.snapshot(department, _DEPARTMENT_FIELDS)
    if before != after:
        await audit.record(
            session,
            actor_id=by,
            action="department.upsert",
            entity="department",
            entity_id=department_id,
            before=before,
            after=after,
            source_key=source_key,
            now=now,
        )
    return department


async def _ensure_departments(session: AsyncSession, department_ids: set[int]) -> None:
    # A person fetched on first contact may name a department the sync has not seen yet: a
    # placeholder keeps the membership (and so the scopes) right until the next sync names it.
    if not department_ids:
        return
    known = set(
        await session.scalars(select(Department.id).where(Department.id.in_(department_ids)))
    )
    for missing in sorted(department_ids - known):
        session.add(Department(id=missing, name=f"部门{missing}", parent_id=None, order=0))
    if department_ids - known:
        await session.flush()


def _staff_view(staff: Staff, memberships: dict[int, bool]) -> dict[str, Any]:
    return {
        "name": staff.name,
        "role": staff.role,
        "active": staff.active,
        "position": staff.position,
        "main_department_id": staff.main_department_id,
        "department_ids": sorted(memberships),
        "leader_in": sorted(d for d, leader in memberships.items() if leader),
        "direct_leaders": list(staff.direct_leaders or []),
    }


async def upsert_staff(
    session: AsyncSession,
    *,
    userid: str,
    name: str,
    department_ids: Iterable[int],
    main_department_id: int | None = None,
    leader_in: Iterable[int] = (),
    direct_leaders: Iterable[str] = (),
    active: bool = True,
    position: str | None = None,
    now: datetime,
    by: str = SYNC_ACTOR,
    source_key: str | None = None,
) -> Staff:
    """Make the person and their memberships match WeCom; new people get the default role."""
    leaders = {int(d) for d in leader_in}
    wanted = {int(d) for d in department_ids} | leaders
    if main_department_id is None and wanted:
        main_department_id = min(wanted)
    if main_department_id is not None:
        wanted.add(main_department_id)
    await _ensure_departments(session, wanted)

    staff = await session.get(Staff, userid)
    rows = list(
        await session.scalars(select(StaffDepartment).where(StaffDepartment.userid == userid))
    )
    current = {row.department_id: row.is_leader for row in rows}
    before = None if staff is None else _staff_view(staff, current)
    if staff is None:
        staff = Staff(
            userid=userid,
            name=name,
            role=await config_data.get_default_role(session),
            created_at=now,
            updated_at=now,
        )
        session.add(staff)
    staff.name = name
    staff.main_department_id = main_department_id
    staff.direct_leaders = [u for u in dict.fromkeys(direct_leaders) if u != userid]
    staff.active = active
    staff.position = position
    await session.flush()

    for row in rows:
        if row.department_id not in wanted:
            await session.delete(row)
        else:
            row.is_leader = row.department_id in leaders
    for department_id in sorted(wanted - current.keys()):
        session.add(
            StaffDepartment(
                userid=userid, department_id=department_id, is_leader=department_id in leaders
            )
        )
    after = _staff_view(staff, {d: d in leaders for d in wanted})
    if before != after:
        staff.updated_at = now
        await audit.record(
            session,
            actor_id=by,
            action="staff.upsert",
            entity="staff",
            entity_id=userid,
            before=before,
            after=after,
            source_key=source_key,
            now=now,
        )
    await session.flush()
    return staff


async def set_role(
    session: AsyncSession,
    *,
    userid: str,
    role: str,
    by: str,
    now: datetime,
    source_key: str | None = None,
) -> Staff | None:
    """Give a person a CRM role; None if nobody has this userid. Applies on their next message."""
    if role not in {r.value for r in Role}:
        raise ValueError(f"unknown role {role!r}; expected one of {[r.value for r in Role]}")
    staff = await session.get(Staff, userid)
    if staff is None:
        return None
    if staff.role != role:
        before = {"role": staff.role}
        staff.role = role
        staff.updated_at = now
        await audit.record(
            session,
            actor_id=by,
            action="staff.set_role",
            entity="staff",
            entity_id=userid,
            before=before,
            after={"role": role},
            source_key=source_key,
            now=now,
        )
    return staff


async def mark_inactive_except(
    session: AsyncSession,
    *,
    seen_userids: Iterable[str],
    now: datetime,
    by: str = SYNC_ACTOR,
    source_key: str | None = None,
) -> list[str]:
    """After a full sync, deactivate everyone WeCom no longer lists; their customers stay put."""
    seen = set(seen_userids)
    active = set(await session.scalars(select(Staff.userid).where(Staff.active.is_(True))))
    gone = sorted(active - seen)
    # Chunked: an IN list of a whole company would pass the drivers' parameter limits.
    for start in range(0, len(gone), 500):
        chunk = gone[start : start + 500]
        await session.execute(
            update(Staff).where(Staff.userid.in_(chunk)).values(active=False, updated_at=now)
        )
    for userid in gone:
        await audit.record(
            session,
            actor_id=by,
            action="staff.deactivate",
            entity="staff",
            entity_id=userid,
            before={"active": True},
            after={"active": False},
            source_key=source_key,
            now=now,
        )
    return gone


async def find_active(
    session: AsyncSession, text: str, *, limit: int = 5
) -> list[tuple[str, str]]:
    """(userid, name) of active people whose userid is `text` or whose name is or contains it:
    how chat names a colleague (共享 … 张三)."""
    wanted = text.strip()
    if not wanted:
        return []
    rows = await session.execute(
        select(Staff.userid, Staff.name)
        .where(Staff.active.is_(True))
        .where((Staff.userid == wanted) | (Staff.name == wanted) | Staff.name.contains(wanted))
        .order_by((Staff.userid != wanted), (Staff.name != wanted), Staff.name)
        .limit(limit)
    )
    return [(userid, name) for userid, name in rows.all()]
