"""跟进 through the chat: configured kinds, dated confirmations, no silent filing on the last
customer, and a rep's markdown reaching colleagues as inert text (both databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm_store import config_data, customers, staff
from crm_store.config_data import DEFAULT_FOLLOWUP_KINDS, FollowupKind
from crm_store.models import Customer, Followup
from crm_store.scope import load_actor
from tests.e2e.conftest import BotHarness

PEOPLE = [  # userid, name, department, led departments, direct leaders
    ("wangjl", "王经理", 2, [2], []),
    ("zhangsan", "张三", 3, [], ["wangjl"]),
    ("qianqi", "钱七", 4, [], ["wangjl"]),
    ("admin", "吴管理员", 1, [], []),
]
CUSTOMERS = [  # name, owner, aliases
    ("阿里巴巴网络技术有限公司", "zhangsan", ["阿里"]),
    ("深圳市腾讯计算机系统有限公司", "zhangsan", ["鹅厂"]),
    ("北京字节跳动科技有限公司", "qianqi", ["字节"]),
]


@pytest.fixture
async def crm(bot: BotHarness) -> BotHarness:
    """A manager over two reps, each with customers of their own."""
    now = bot.clock.now()
    async with bot.runtime.sessions.begin() as session:
        for dept_id, name, parent in [(1, "总部", None), (2, "销售部", 1), (3, "一组", 2)]:
            await staff.upsert_department(
                session, department_id=dept_id, name=name, parent_id=parent, now=now
            )
        await staff.upsert_department(session, department_id=4, name="二组", parent_id=2, now=now)
        for userid, name, dept, led, leaders in PEOPLE:
            await staff.upsert_staff(
                session,
                userid=userid,
                name=name,
                department_ids=[dept],
                main_department_id=dept,
                leader_in=led,
                direct_leaders=leaders,
                now=now,
            )
        await staff.set_role(session, userid="admin", role="admin", by="test", now=now)
        admin = await load_actor(session, "admin")
        assert admin is not None
        for name, owner, aliases in CUSTOMERS:
            await customers.create_customer(
                session, actor=admin, name=name, now=now, owner_id=owner, aliases=aliases
            )
    for userid, *_ in PEOPLE:
        bot.sim.add_user(userid, userid, [1])
    return bot


async def followups(bot: BotHarness) -> list[tuple[str, str, str]]:
    """(customer, kind, content) of every follow-up stored."""
    async with bot.runtime.sessions() as session:
        rows = await session.execute(
            select(Customer.name, Followup.kind, Followup.content)
            .join(Customer, Customer.id == Followup.customer_id)
            .order_by(Followup.id)
        )
        return [(name, kind, content) for name, kind, content in rows]


async def count_followups(bot: BotHarness) -> int:
    async with bot.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Followup)) or 0)


async def test_a_kind_an_admin_adds_is_detected_and_labelled(crm: BotHarness) -> None:
    async with crm.runtime.sessions.begin() as session:
        await config_data.set_followup_kinds(
            session,
            kinds=[*DEFAULT_FOLLOWUP_KINDS, FollowupKind("training", "培训", ("上课",))],
            by="admin",
            now=crm.clock.now(),
        )
    [confirmation] = await crm.say("zhangsan", "跟进 阿里 今天去做了培训，下周再回访")
    assert "已记录跟进" in confirmation and "培训" in confirmation
    [(customer, kind, _)] = await followups(crm)
    assert (customer, kind) == ("阿里巴巴网络技术有限公司", "training")


async def test_a_relabelled_kind_shows_its_new_label(crm: BotHarness) -> None:
    relabelled = [
        FollowupKind("call", "电话沟通", ("打电话",)) if k.code == "call" else k
        for k in DEFAULT_FOLLOWUP_KINDS
    ]
    async with crm.runtime.sessions.begin() as session:
        await config_data.set_followup_kinds(
            session, kinds=relabelled, by="admin", now=crm.clock.now()
        )
    [confirmation] = await crm.say("zhangsan", "跟进 阿里 打电话问了进度")
    assert "电话沟通" in confirmation
    assert [k for _, k, _ in await followups(crm)] == ["call"]


async def test_the_confirmation_names_the_day_absolutely(crm: BotHarness) -> None:
    """Friday 18:00 in Shanghai: 明天 is Saturday 21 November, and the card says so."""
    [confirmation] = await crm.say("zhangsan", "跟进 阿里 拜访了，明天下午3点再联系")
    assert "明天 11月21日(周六) 15:00" in confirmation


async def test_a_dot_date_is_a_next_step(crm: BotHarness) -> None:
    [confirmation] = await crm.say("zhangsan", "跟进 阿里 聊了报价1.2万，12.12下午再联系")
    assert "12月12日(周六) 14:00" in confirmation
    [(_, _, content)] = await followups(crm)
    assert "1.2万" in content


@pytest.mark.parametrize(
    "name",
    [
        "字节",  # a colleague's customer: not visible to zhangsan
        "北京字节跳动科技有限公司",
        "星辰科技",  # nobody's
    ],
)
async def test_an_unresolvable_name_asks_and_stores_nothing(crm: BotHarness, name: str) -> None:
    """After a lookup, "跟进 <a name> …" that finds nothing must not land on the last customer."""
    await crm.say("zhangsan", "查 鹅厂")
    [answer] = await crm.say("zhangsan", f"跟进 {name} 拜访了，明天再联系")
    assert "没有找到" in answer
    assert "腾讯" not in answer and "已记录" not in answer
    assert await count_followups(crm) == 0


async def test_a_typo_of_a_name_resolves_by_name_not_to_the_last_customer(
    crm: BotHarness,
) -> None:
    await crm.say("zhangsan", "查 鹅厂")
    await crm.say("zhangsan", "跟进 阿里吧吧网咯 拜访了")
    assert [c for c, _, _ in await followups(crm)] == ["阿里巴巴网络技术有限公司"]


@pytest.mark.parametrize(
    "note",
    ["电话沟通了续约，明天上午再确认", "今天拜访了王总", "已发报价，下周再跟"],
)
async def test_a_note_without_a_name_goes_to_the_last_customer(crm: BotHarness, note: str) -> None:
    await crm.say("zhangsan", "查 鹅厂")
    [confirmation] = await crm.say("zhangsan", f"跟进 {note}")
    assert "已记录跟进" in confirmation and "腾讯" in confirmation
    assert [c for c, _, _ in await followups(crm)] == ["深圳市腾讯计算机系统有限公司"]


async def test_markdown_in_a_note_reaches_the_owner_as_inert_text(crm: BotHarness) -> None:
    """The manager logs on a rep's customer; the 撞单 notice quotes the note without a link."""
    note = '电话聊了 [点我](http://evil) **急** <font color="info">x</font>'
    await crm.say("wangjl", f"跟进 阿里 {note}")
    [notice] = [s for s in crm.sim.screen("zhangsan") if "撞单" in s]
    assert "[点我](http://evil)" not in notice
    assert "［点我］（http://evil）" in notice
    assert "**急**" not in notice and '<font color="info">x' not in notice
    assert notice.count("<font") == 1  # only the template's own grey footer
    sent = [m for m in crm.sim.messages_to("zhangsan") if "撞单" in str(m.payload)]
    assert [m.msgtype for m in sent] == ["markdown"]
