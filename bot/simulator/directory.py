"""The simulated 通讯录: departments and members in WeCom's JSON shapes (PROTOCOL.md §5)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.simulator.errors import ApiError

__all__ = [
    "Department",
    "Directory",
    "Member",
    "department_get",
    "department_list",
    "department_simplelist",
    "user_get",
    "user_list",
    "user_list_id",
    "user_simplelist",
]

# PROTOCOL.md §5: status 1 active, 2 disabled, 4 not activated, 5 quit [U]. Members that have
# not activated yet still get messages once they join, so only 2 and 5 cannot receive.
RECEIVING_STATUSES = frozenset({1, 4})


@dataclass
class Department:
    """One node of the department tree."""

    id: int
    name: str
    parentid: int
    order: int = 0
    leaders: list[str] = field(default_factory=list)
    name_en: str = ""

    def as_json(self) -> dict[str, Any]:
        """department/list and department/get shape (doc 90208)."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "parentid": self.parentid,
            "order": self.order,
            "department_leader": list(self.leaders),
        }
        if self.name_en:
            data["name_en"] = self.name_en
        return data

    def as_simple_json(self) -> dict[str, Any]:
        """department/simplelist shape: ids only."""
        return {"id": self.id, "parentid": self.parentid, "order": self.order}


@dataclass
class Member:
    """One 成员 as the app sees them."""

    userid: str
    name: str
    department: list[int]
    main_department: int
    is_leader_in_dept: list[int]
    direct_leader: list[str]
    status: int = 1
    position: str = ""
    alias: str = ""
    order: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """user/get and user/list shape; since 2022-06-20 no mobile/email/avatar (§5)."""
        return {
            "userid": self.userid,
            "name": self.name,
            "department": list(self.department),
            "order": list(self.order) or [0] * len(self.department),
            "position": self.position,
            "is_leader_in_dept": list(self.is_leader_in_dept),
            "direct_leader": list(self.direct_leader),
            "main_department": self.main_department,
            "status": self.status,
            "alias": self.alias,
            "open_userid": f"wo-{self.userid.lower()}",
        }

    def as_simple_json(self) -> dict[str, Any]:
        """user/simplelist shape."""
        return {
            "userid": self.userid,
            "name": self.name,
            "department": list(self.department),
            "open_userid": f"wo-{self.userid.lower()}",
        }


class Directory:
    """Departments and members of one corp; userids are case-insensitive as in WeCom."""

    def __init__(self) -> None:
        self._departments: dict[int, Department] = {}
        self._members: dict[str, Member] = {}

    def add_department(
        self,
        id: int,
        name: str,
        parentid: int = 0,
        *,
        leaders: Iterable[str] = (),
        order: int = 0,
        name_en: str = "",
    ) -> Department:
        """Add or replace a department; its parent must exist unless it is a root (parentid 0)."""
        if parentid and parentid not in self._departments:
            raise ValueError(f"parent department {parentid} does not exist")
        if parentid == id:
            raise ValueError("a department cannot be its own parent")
        dept = Department(id, name, parentid, order, list(leaders), name_en)
        self._departments[id] = dept
        return dept

    def remove_department(self, id: int) -> None:
        """Remove a department that has no sub-departments and no members."""
        if any(d.parentid == id for d in self._departments.values()):
            raise ValueError(f"department {id} still has sub-departments")
        if any(id in m.department for m in self._members.values()):
            raise ValueError(f"department {id} still has members")
        self._departments.pop(id, None)

    def add_member(
        self,
        userid: str,
        name: str,
        department: Iterable[int] = (1,),
        *,
        main_department: int | None = None,
        is_leader_in_dept: Iterable[int] | None = None,
        direct_leader: Iterable[str] = (),
        status: int = 1,
        position: str = "",
        alias: str = "",
    ) -> Member:
        """Add or replace a member; every department must exist."""
        depts = list(department)
        if not depts:
            raise ValueError("a member belongs to at least one department")
        missing = [d for d in depts if d not in self._departments]
        if missing:
            raise ValueError(f"unknown departments {missing}")
        leader_flags = [0] * len(depts) if is_leader_in_dept is None else list(is_leader_in_dept)
        if len(leader_flags) != len(depts):
            raise ValueError("is_leader_in_dept must have one flag per department")
        main = depts[0] if main_department is None else main_department
        if main not in depts:
            raise ValueError("main_department must be one of the member's departments")
        member = Member(
            userid=userid,
            name=name,
            department=depts,
            main_department=main,
            is_leader_in_dept=leader_flags,
            direct_leader=list(direct_leader),
            status=status,
            position=position,
            alias=alias,
        )
        self._members[userid.lower()] = member
        return member

    def remove_member(self, userid: str) -> None:
        """Delete a member (as if they left the company); later sends report them invalid."""
        self._members.pop(userid.lower(), None)

    def department(self, id: int) -> Department | None:
        """The department with this id, if any."""
        return self._departments.get(id)

    def member(self, userid: str) -> Member | None:
        """The member with this userid, in any letter case."""
        return self._members.get(userid.lower())

    def departments(self) -> list[Department]:
        """Every department, in insertion order."""
        return list(self._departments.values())

    def members(self) -> list[Member]:
        """Every member, in insertion order."""
        return list(self._members.values())

    def subtree(self, id: int) -> list[Department]:
        """The department and all its descendants, parents before children."""
        root = self._departments.get(id)
        if root is None:
            return []
        out = [root]
        for dept in out:
            out.extend(d for d in self._departments.values() if d.parentid == dept.id)
        return out

    def members_of(self, department_id: int, *, fetch_child: bool) -> list[Member]:
        """Members of a department, or of its whole subtree when fetch_child is set."""
        ids = {d.id for d in self.subtree(department_id)} if fetch_child else {department_id}
        return [m for m in self._members.values() if ids.intersection(m.department)]

    def receivers(self) -> list[Member]:
        """Everyone a message to @all reaches."""
        return [m for m in self._members.values() if m.status in RECEIVING_STATUSES]


# --- the directory endpoints, as functions of the query (or JSON body) they get -------------

LIST_ID_MAX = 10_000  # PROTOCOL.md §5: user/list_id limit ≤ 10000


def _department_param(
    directory: Directory, query: Mapping[str, str], name: str, *, required: bool
) -> int | None:
    raw = query.get(name, "")
    if not raw:
        if required:
            raise ApiError(41019)
        return None
    if not raw.isdigit():
        raise ApiError(40058, f"invalid {name}")
    if directory.department(int(raw)) is None:
        raise ApiError(60003)
    return int(raw)


def user_get(directory: Directory, query: Mapping[str, str]) -> dict[str, Any]:
    """GET user/get?userid= (doc 90196)."""
    userid = query.get("userid", "")
    if not userid:
        raise ApiError(41009)
    member = directory.member(userid)
    if member is None:
        raise ApiError(60111)
    return member.as_json()


def _members(directory: Directory, query: Mapping[str, str]) -> list[Member]:
    dept = _department_param(directory, query, "department_id", required=True)
    if dept is None:
        raise ApiError(41019)
    # PROTOCOL.md §5: whether WeCom still honours fetch_child is [U]; the simulator does
    return directory.members_of(dept, fetch_child=query.get("fetch_child", "0") == "1")


def user_list(directory: Directory, query: Mapping[str, str]) -> dict[str, Any]:
    """GET user/list?department_id=&fetch_child= (doc 90201)."""
    return {"userlist": [m.as_json() for m in _members(directory, query)]}


def user_simplelist(directory: Directory, query: Mapping[str, str]) -> dict[str, Any]:
    """GET user/simplelist?department_id=&fetch_child= (doc 90200)."""
    return {"userlist": [m.as_simple_json() for m in _members(directory, query)]}


def user_list_id(directory: Directory, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST user/list_id {cursor, limit}: one row per (member, department) (doc 96067)."""
    limit = body.get("limit", LIST_ID_MAX)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LIST_ID_MAX:
        raise ApiError(40058, "invalid limit")
    start = _decode_cursor(body.get("cursor", ""))
    pairs = [
        {"userid": m.userid, "department": d} for m in directory.members() for d in m.department
    ]
    page = pairs[start : start + limit]
    end = start + len(page)
    return {"next_cursor": _encode_cursor(end) if end < len(pairs) else "", "dept_user": page}


def _departments(directory: Directory, query: Mapping[str, str]) -> list[Department]:
    dept = _department_param(directory, query, "id", required=False)
    return directory.departments() if dept is None else directory.subtree(dept)


def department_list(directory: Directory, query: Mapping[str, str]) -> dict[str, Any]:
    """GET department/list?id= : the department and its subtree, or all (doc 90208)."""
    return {"department": [d.as_json() for d in _departments(directory, query)]}


def department_simplelist(directory: Directory, query: Mapping[str, str]) -> dict[str, Any]:
    """GET department/simplelist?id= : ids, parentids and order only."""
    return {"department_id": [d.as_simple_json() for d in _departments(directory, query)]}


def department_get(directory: Directory, query: Mapping[str, str]) -> dict[str, Any]:
    """GET department/get?id= : one department."""
    dept = _department_param(directory, query, "id", required=True)
    department = directory.department(dept) if dept is not None else None
    if department is None:
        raise ApiError(60003)
    return {"department": department.as_json()}


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sim:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: Any) -> int:
    if cursor in ("", None):
        return 0
    if not isinstance(cursor, str):
        raise ApiError(40058, "invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        prefix, offset = raw.decode().split(":")
        if prefix != "sim" or not offset.isdigit():
            raise ValueError(cursor)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(40058, "invalid cursor") from None
    return int(offset)
