"""The demo company's organisation: who works where, with which CRM role.

It lives in the simulator's directory (as an admin's company lives in WeCom) and reaches the
database through the ordinary directory sync; roles a sync cannot know are set afterwards, as
an admin would with `wecrm staff set-role`. Add a department or a person here and both the
page's people list and the seed follow.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.simulator import WeComSimulator

ROOT, SALES, SALES_ONE, SALES_TWO, SERVICE, MARKETING = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True)
class Department:
    id: int
    name: str
    parent: int  # 0 for the root, as WeCom lists it


@dataclass(frozen=True)
class Person:
    userid: str
    name: str
    department: int
    position: str
    role: str  # rep | service | manager | admin (what `wecrm staff set-role` would say)
    leads: bool = False  # WeCom's is_leader_in_dept for `department`
    leader: str | None = None  # the direct leader's userid

    @property
    def role_title(self) -> str:
        return ROLE_TITLES.get(self.role, self.role)


ROLE_TITLES = {"rep": "销售", "service": "客服", "manager": "经理", "admin": "管理员"}

DEPARTMENTS: tuple[Department, ...] = (
    Department(ROOT, "云帆科技", 0),
    Department(SALES, "销售部", ROOT),
    Department(SALES_ONE, "华东销售组", SALES),
    Department(SALES_TWO, "华北销售组", SALES),
    Department(SERVICE, "客服部", ROOT),
    Department(MARKETING, "市场部", ROOT),
)

PEOPLE: tuple[Person, ...] = (
    Person("wangjg", "王建国", SALES, "销售总监", "manager", leads=True),
    Person("lina", "李娜", SALES_ONE, "华东组组长", "manager", leads=True, leader="wangjg"),
    Person("zhangwei", "张伟", SALES_ONE, "销售代表", "rep", leader="lina"),
    Person("liuyang", "刘洋", SALES_ONE, "销售代表", "rep", leader="lina"),
    Person("chenjing", "陈静", SALES_ONE, "销售代表", "rep", leader="lina"),
    Person("zhaolei", "赵磊", SALES_TWO, "华北组组长", "manager", leads=True, leader="wangjg"),
    Person("yangfan", "杨帆", SALES_TWO, "销售代表", "rep", leader="zhaolei"),
    Person("huangli", "黄丽", SALES_TWO, "销售代表", "rep", leader="zhaolei"),
    Person("zhoumin", "周敏", SERVICE, "客服主管", "service", leads=True),
    Person("wuting", "吴婷", SERVICE, "客服专员", "service", leader="zhoumin"),
    Person("zhenghao", "郑浩", SERVICE, "客服专员", "service", leader="zhoumin"),
    # Marketing has no audience of its own yet: its people use the sales commands for now.
    Person("sunyue", "孙悦", MARKETING, "市场专员", "rep", leads=True),
    Person("admin", "冯晓", ROOT, "系统管理员", "admin"),
)

REPS: tuple[str, ...] = tuple(p.userid for p in PEOPLE if p.department in (SALES_ONE, SALES_TWO))
SERVICE_AGENTS: tuple[str, ...] = tuple(p.userid for p in PEOPLE if p.department == SERVICE)


def person(userid: str) -> Person:
    """The demo person with this userid (KeyError for anyone else)."""
    for p in PEOPLE:
        if p.userid == userid:
            return p
    raise KeyError(userid)


def populate(sim: WeComSimulator) -> None:
    """Put the company into the simulator's directory, as WeCom would list it."""
    for dept in DEPARTMENTS:
        leaders = [p.userid for p in PEOPLE if p.department == dept.id and p.leads]
        sim.add_department(dept.id, dept.name, dept.parent, leaders=leaders)
    for p in PEOPLE:
        sim.add_user(
            p.userid,
            p.name,
            [p.department],
            is_leader_in_dept=[1 if p.leads else 0],
            position=p.position,
            direct_leader=[p.leader] if p.leader else [],
        )
        sim.roles[p.userid] = p.role_title
