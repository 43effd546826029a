"""A rep's day in chat, end to end through encrypted callbacks and the simulator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_store import customers, staff
from crm_store.models import Customer, Followup, Opportunity, Task
from crm_store.scope import load_actor
from tests.e2e.conftest import BotHarness

ORG = [
    (1, "总部", None),
    (2, "销售部", 1),
    (3, "销售一组", 2),
    (4, "销售二组", 2),
    (5, "客服部", 1),
]
PEOPLE = [  # userid, name, departments, led departments, direct leaders
    ("wangjl", "王经理", [2], [2], []),
    ("zhangsan", "张三", [3], [], ["wangjl"]),
    ("lisi", "李四", [3], [], ["wangjl"]),
    ("qianqi", "钱七", [4], [], ["wangjl"]),
    ("admin", "吴管理员", [1], [], []),
]
CUSTOMERS = [  # name, owner, aliases, city, industry
    ("阿里巴巴网络技术有限公司", "zhangsan", ["阿里"], "杭州", "互联网"),
    ("深圳市腾讯计算机系统有限公司", "zhangsan", ["鹅厂"], "深圳", "互联网"),
    ("华为技术有限公司", "zhangsan", [], "深圳", "通信"),
    ("华为终端有限公司", "zhangsan", [], "东莞", "电子"),
    ("北京字节跳动科技有限公司", "qianqi", ["字节"], "北京", "互联网"),
    ("杭州云栖科技有限公司", None, [], "杭州", "软件"),
]


@pytest.fixture
async def crm(bot: BotHarness) -> BotHarness:
    """The bot with a small sales org and customers in its database."""
    now = bot.clock.now()
    async with bot.runtime.sessions.begin() as session:
        for dept_id, name, parent in ORG:
            await staff.upsert_department(
                session, department_id=dept_id, name=name, parent_id=parent, now=now
            )
        for userid, name, depts, led, leaders in PEOPLE:
            await staff.upsert_staff(
                session,
                userid=userid,
                name=name,
                department_ids=depts,
                main_department_id=depts[0],
                leader_in=led,
                direct_leaders=leaders,
                now=now,
            )
        await staff.set_role(session, userid="admin", role="admin", by="test", now=now)
        admin = await load_actor(session, "admin")
        assert admin is not None
        for name, owner, aliases, city, industry in CUSTOMERS:
            await customers.create_customer(
                session,
                actor=admin,
                name=name,
                now=now,
                owner_id=owner,
                in_pool=owner is None,
                aliases=aliases,
                city=city,
                industry=industry,
            )
    for userid, *_ in PEOPLE:
        bot.sim.add_user(userid, userid, [1])
    return bot


async def count(bot: BotHarness, model: type, *where: Any) -> int:
    async with bot.runtime.sessions() as session:
        query = select(func.count()).select_from(model)
        for clause in where:
            query = query.where(clause)
        return int(await session.scalar(query) or 0)


@pytest.mark.parametrize("query", ["阿里巴巴", "albb", "alibaba", "阿里", "阿狸巴巴"])
async def test_lookup_finds_by_fragment_pinyin_initials_alias_typo(
    crm: BotHarness, query: str
) -> None:
    [card] = await crm.say("zhangsan", f"查 {query}")
    assert "阿里巴巴网络技术有限公司" in card and "张三" in card


async def test_lookup_with_a_chinese_typo(crm: BotHarness) -> None:
    [card] = await crm.say("zhangsan", "查 腾迅")
    assert "腾讯" in card


async def test_lookup_never_reveals_other_reps_customers(crm: BotHarness) -> None:
    [answer] = await crm.say("qianqi", "查 阿里巴巴")
    assert "没有找到" in answer and "阿里巴巴网络" not in answer


async def test_manager_sees_the_subtree(crm: BotHarness) -> None:
    [card] = await crm.say("wangjl", "查 字节")
    assert "北京字节跳动" in card and "钱七" in card


async def test_choice_by_number_and_the_pick_is_remembered(crm: BotHarness) -> None:
    [choices] = await crm.say("zhangsan", "查 华为")
    assert "华为技术" in choices and "华为终端" in choices
    lines = choices.splitlines()
    second = next(line for line in lines if line.startswith("2："))
    [card] = await crm.say("zhangsan", "2")
    chosen = "华为终端有限公司" if "终端" in second else "华为技术有限公司"
    assert chosen in card
    [again] = await crm.say("zhangsan", "查 华为")
    assert again.startswith(f"**{chosen}**")  # straight to the card this time


async def test_follow_up_becomes_a_record_and_a_reminder(crm: BotHarness) -> None:
    [confirmation] = await crm.say(
        "zhangsan", "跟进 阿里 今天拜访了王总，对报价有兴趣，下周三下午再联系"
    )
    assert "已记录跟进" in confirmation and "拜访" in confirmation
    assert "再联系" in confirmation and "11月25日" in confirmation
    async with crm.runtime.sessions() as session:
        followup = await session.scalar(select(Followup))
        task = await session.scalar(select(Task))
    assert followup is not None and followup.kind == "visit"
    assert "对报价有兴趣" in followup.content and "下周三" not in followup.content
    # 2026-11-20 is a Friday; next Wednesday afternoon is 2026-11-25 14:00 in Shanghai.
    assert task is not None and task.due_at == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


async def test_follow_up_right_after_a_lookup_uses_that_customer(crm: BotHarness) -> None:
    await crm.say("zhangsan", "查 鹅厂")
    [confirmation] = await crm.say("zhangsan", "跟进 电话沟通了续约，明天上午再确认")
    assert "腾讯" in confirmation and "电话" in confirmation


async def test_ambiguous_follow_up_asks_then_records_exactly_once(crm: BotHarness) -> None:
    [choices] = await crm.say("zhangsan", "跟进 华为 电话聊了新项目")
    assert "找到 2 个客户" in choices
    assert await count(crm, Followup) == 0
    await crm.say("zhangsan", "1", msg_id=991)
    await crm.say("zhangsan", "1", msg_id=991)  # WeCom retries the answer
    assert await count(crm, Followup) == 1


async def test_a_retried_callback_logs_nothing_twice(crm: BotHarness) -> None:
    for _ in range(3):
        await crm.say("zhangsan", "跟进 阿里 微信发了资料，后天再电话", msg_id=4242)
    assert await count(crm, Followup) == 1
    assert await count(crm, Task) == 1


async def test_past_or_impossible_times_are_questioned(crm: BotHarness) -> None:
    [answer] = await crm.say("zhangsan", "跟进 阿里 聊了报价，今天上午9点再联系")
    assert "已经过去" in answer
    [answer] = await crm.say("zhangsan", "跟进 阿里 聊了报价，2月30日再联系")
    assert "不是一个有效的日期" in answer
    assert await count(crm, Followup) == 0


async def test_undo_removes_the_follow_up_and_its_reminder(crm: BotHarness) -> None:
    await crm.say("zhangsan", "跟进 阿里 拜访了，明天下午再联系")
    [answer] = await crm.tap("zhangsan", "sales.followup.undo:")
    assert "已撤销" in answer
    assert await count(crm, Followup) == 0 and await count(crm, Task) == 0


async def test_undo_is_refused_after_ten_minutes(crm: BotHarness) -> None:
    await crm.say("zhangsan", "跟进 阿里 拜访了，明天下午再联系")
    crm.clock.advance(minutes=11)
    [answer] = await crm.tap("zhangsan", "sales.followup.undo:")
    assert "超过 10 分钟" in answer
    assert await count(crm, Followup) == 1


async def test_duplicate_customer_warning_leaks_nothing(crm: BotHarness) -> None:
    screen = await crm.say("lisi", "新客户 深圳腾讯计算机系统有限公司 互联网 0755-86013388")
    warning = screen[0]
    assert "已有相似客户" in warning and "张三" in warning
    assert "深圳" not in warning.replace("深圳腾讯", "") and "鹅厂" not in warning
    assert await count(crm, Customer) == len(CUSTOMERS)
    notices = crm.sim.screen("zhangsan")
    assert any("撞单" in n and "李四" in n for n in notices)
    assert any("撞单" in n for n in crm.sim.screen("wangjl"))  # the owner's leader too
    [created] = await crm.say("lisi", "确认")
    assert "已新建客户" in created
    assert await count(crm, Customer) == len(CUSTOMERS) + 1


async def test_new_customer_and_claim_from_the_pool(crm: BotHarness) -> None:
    [created] = await crm.say("lisi", "新客户 宁波海天塑机有限公司 机械 13800138000 张经理")
    assert "已新建客户" in created and "张经理" in created
    [pooled] = await crm.say("lisi", "新客户 杭州云栖科技")
    assert "公海" in pooled
    [claimed] = await crm.say("lisi", "领取 云栖科技")
    assert "已领取" in claimed
    [card] = await crm.say("lisi", "查 云栖")
    assert "李四" in card


async def test_deals_with_chinese_amounts_and_stages(crm: BotHarness) -> None:
    [created] = await crm.say("zhangsan", "商机 阿里 云服务器采购 50万")
    assert "已创建商机" in created and "50万" in created
    [moved] = await crm.say("zhangsan", "阶段 阿里 方案报价")
    assert "方案报价" in moved
    [won] = await crm.say("zhangsan", "阶段 阿里 签了")
    assert "赢单" in won
    await crm.say("zhangsan", "商机 鹅厂 企业微信集成 三十万")
    [question] = await crm.say("zhangsan", "阶段 鹅厂 丢了")
    assert "输单原因" in question
    [lost] = await crm.say("zhangsan", "价格太高，选了竞品")
    assert "输单" in lost
    async with crm.runtime.sessions() as session:
        deals = {o.title: o for o in (await session.scalars(select(Opportunity))).all()}
    assert deals["云服务器采购"].state == "won" and deals["云服务器采购"].amount == 500000
    assert deals["企业微信集成"].state == "lost"
    assert "价格太高" in (deals["企业微信集成"].lost_reason or "")


async def test_todos_reminders_done_and_postpone(crm: BotHarness) -> None:
    await crm.say("zhangsan", "跟进 阿里 电话沟通，明天上午10点再联系")
    await crm.say("zhangsan", "跟进 鹅厂 拜访，明天下午3点发方案")
    crm.clock.advance(hours=17)  # Saturday 11:00 in Shanghai: the first one is due
    await crm.runtime.scheduler.run_due()
    await crm.drain()
    reminders = [s for s in crm.sim.screen("zhangsan") if s.startswith("跟进提醒")]
    assert len(reminders) == 1 and "阿里" in reminders[0]
    await crm.runtime.scheduler.run_due(force=True)  # another worker's tick: nothing new
    await crm.drain()
    assert len([s for s in crm.sim.screen("zhangsan") if s.startswith("跟进提醒")]) == 1
    todo = await crm.say("zhangsan", "待办")
    assert "1." in todo[0] and "阿里" in todo[0] and "腾讯" in todo[0]
    [done] = await crm.say("zhangsan", "完成 1")
    assert "已完成" in done
    [moved] = await crm.say("zhangsan", "推迟 2 下周一上午")
    assert "已推迟" in moved
    assert await count(crm, Task, Task.done_at.is_not(None)) == 1


async def test_unknown_person_is_answered_politely(crm: BotHarness) -> None:
    crm.sim.add_user("stranger", "陌生人", [1])
    [answer] = await crm.say("stranger", "查 阿里")
    assert "通讯录" in answer


async def test_help_lists_the_sales_commands(crm: BotHarness) -> None:
    [overview] = await crm.say("zhangsan", "帮助")
    for word in ("查", "跟进", "商机", "阶段", "新客户", "领取", "待办", "完成", "推迟"):
        assert f"`{word}`" in overview
    [detail] = await crm.say("zhangsan", "帮助 跟进")
    assert "下周三下午再联系" in detail


async def test_lookup_choose_then_follow_up_on_that_customer(crm: BotHarness) -> None:
    """查 → pick "2" → 跟进 without a name: the record lands on the customer just chosen."""
    await crm.say("zhangsan", "查 华为")
    [card] = await crm.say("zhangsan", "2")
    chosen = card.splitlines()[0].strip("*")
    await crm.say("zhangsan", "跟进 电话确认了样机需求，周五下午3点再联系")
    async with crm.runtime.sessions() as session:
        followup = await session.scalar(select(Followup))
        assert followup is not None
        customer = await session.get(Customer, followup.customer_id)
        task = await session.scalar(select(Task))
    assert customer is not None and customer.name == chosen
    assert task is not None and task.customer_id == customer.id
    # 2026-11-20 18:00 in Shanghai is a Friday evening: "周五下午3点" is next Friday.
    assert task.due_at == datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


async def test_collision_notice_can_skip_the_leader(crm: BotHarness) -> None:
    from crm_store import config_data

    async with crm.runtime.sessions.begin() as session:
        await config_data.set_collision_notice(
            session,
            notice=config_data.CollisionNotice(owner=True, leader=False),
            by="admin",
            now=crm.clock.now(),
        )
    await crm.say("lisi", "新客户 阿里巴巴网络技术有限公司")
    assert any("撞单" in s for s in crm.sim.screen("zhangsan"))
    assert not any("撞单" in s for s in crm.sim.screen("wangjl"))


async def test_a_newcomer_is_fetched_from_wecom_on_first_message(make_bot: Any) -> None:
    """Nobody gets "who are you?": an unknown sender is looked up with user/get and added."""
    from bot.wecom.directory import DirectoryPersonFetcher

    bot: BotHarness = await make_bot(fetcher=DirectoryPersonFetcher)
    bot.sim.add_department(7, "华南销售", 1)
    bot.sim.add_user("newbie", "新同事", [7])
    [answer] = await bot.say("newbie", "我的客户")
    assert "通讯录" not in answer and "名下还没有客户" in answer
    assert bot.sim.calls["user/get"] == 1
    await bot.say("newbie", "待办")
    assert bot.sim.calls["user/get"] == 1  # known from now on


@pytest.mark.parametrize("fault", ["busy", "http"])
async def test_a_newcomer_waits_while_wecom_cannot_say_who_they_are(
    make_bot: Any, fault: str
) -> None:
    """user/get busy or down: no "who are you?", the message waits and is answered after."""
    from bot.wecom.directory import DirectoryPersonFetcher

    bot: BotHarness = await make_bot(fetcher=DirectoryPersonFetcher)
    bot.sim.add_department(7, "华南销售", 1)
    bot.sim.add_user("newbie", "新同事", [7])
    if fault == "busy":
        bot.sim.fail_next("user/get", errcode=-1, times=2)
    else:
        bot.sim.http_error_next("user/get", status=502, times=2)
    assert await bot.say("newbie", "我的客户") == []
    assert await bot.say("newbie", "待办") == []  # in order: behind the first one
    bot.clock.advance(6)
    assert await bot.say("newbie", "帮助") == []  # the second user/get fails too
    bot.clock.advance(6)
    await bot.drain()
    answers = bot.sim.screen("newbie")
    assert not any("通讯录" in a for a in answers)
    assert "名下还没有客户" in answers[0] and "CRM 助手" in "".join(answers[2:])


async def test_change_contact_pushes_update_people_at_once(crm: BotHarness) -> None:
    """WeCom tells us 钱七 moved to 销售一组 and later left: scopes follow without a sync."""
    from crm_store.models import Staff, StaffDepartment

    crm.sim.remove_user("qianqi")
    crm.sim.add_department(3, "销售一组", 1)
    crm.sim.add_user("qianqi", "钱七七", [3], direct_leader=["wangjl"])
    status, _ = await crm.sim.send_event(
        "sys", "change_contact", ChangeType="update_user", UserID="qianqi"
    )
    assert status == 200
    await crm.drain()
    async with crm.runtime.sessions() as session:
        person = await session.get(Staff, "qianqi")
        departments = set(
            await session.scalars(
                select(StaffDepartment.department_id).where(StaffDepartment.userid == "qianqi")
            )
        )
    assert person is not None and person.name == "钱七七" and departments == {3}

    await crm.sim.send_event("sys", "change_contact", ChangeType="delete_user", UserID="qianqi")
    await crm.drain()
    async with crm.runtime.sessions() as session:
        person = await session.get(Staff, "qianqi")
    assert person is not None and person.active is False
    [answer] = await crm.say("qianqi", "查 字节")
    assert "通讯录" in answer  # a leaver no longer reads the CRM


@pytest.mark.parametrize("cancel", ["算了，不丢了", "取消", "搞错了", "没丢"])
async def test_a_pending_loss_can_be_taken_back(crm: BotHarness, cancel: str) -> None:
    await crm.say("zhangsan", "商机 鹅厂 企业微信集成 三十万")
    [question] = await crm.say("zhangsan", "阶段 鹅厂 丢了")
    assert "输单原因" in question
    [answer] = await crm.say("zhangsan", cancel)
    assert "不记输单" in answer and "初步接洽" in answer
    async with crm.runtime.sessions() as session:
        deal = await session.scalar(select(Opportunity))
    assert deal is not None and deal.state == "open" and deal.lost_reason is None
    [after] = await crm.say("zhangsan", "价格太高")  # no longer taken as a reason
    assert "没看懂" in after


async def test_a_command_instead_of_the_lost_reason_says_what_became_of_it(
    crm: BotHarness,
) -> None:
    await crm.say("zhangsan", "商机 鹅厂 企业微信集成 三十万")
    await crm.say("zhangsan", "阶段 鹅厂 丢了")
    notice, card = await crm.say("zhangsan", "查 阿里")
    assert "没有记录" in notice and "企业微信集成" in notice
    assert "阿里巴巴网络技术有限公司" in card
    async with crm.runtime.sessions() as session:
        deal = await session.scalar(select(Opportunity))
    assert deal is not None and deal.state == "open"


async def test_a_won_deal_shows_on_the_card_and_can_be_reopened(crm: BotHarness) -> None:
    await crm.say("zhangsan", "商机 阿里 云服务器采购 50万")
    await crm.say("zhangsan", "阶段 阿里 签了")
    [card] = await crm.say("zhangsan", "查 阿里")
    assert "暂无商机" not in card and "赢单（云服务器采购）" in card
    assert "近 90 天结束的商机" in card and "50万" in card
    [moved] = await crm.say("zhangsan", "阶段 云服务器采购 谈判审核")
    assert "谈判审核" in moved
    async with crm.runtime.sessions() as session:
        deal = await session.scalar(select(Opportunity))
    assert deal is not None and deal.state == "open" and deal.stage == "谈判审核"


async def test_the_same_deal_twice_asks_first(crm: BotHarness) -> None:
    await crm.say("zhangsan", "商机 阿里 云服务器采购 50万")
    [question] = await crm.say("zhangsan", "商机 阿里 云服务器 采购 60万")
    assert "已有同名商机" in question and "仍然新建" in question
    assert await count(crm, Opportunity) == 1
    [created] = await crm.say("zhangsan", "确认")
    assert "已创建商机" in created and "60万" in created
    assert await count(crm, Opportunity) == 2
    [again] = await crm.say("zhangsan", "确认")
    assert "没有等待您确认" in again


async def test_claiming_ones_own_customer_says_so(crm: BotHarness) -> None:
    [answer] = await crm.say("zhangsan", "领取 阿里巴巴网络技术有限公司")
    assert "已经是您负责的客户" in answer


async def test_sharing_a_customer_in_chat_and_taking_it_back(crm: BotHarness) -> None:
    [before] = await crm.say("lisi", "查 阿里巴巴")
    assert "没有找到" in before
    answers = await crm.say("zhangsan", "共享 阿里 李四 可编辑 到 月底")
    assert any("已把「阿里巴巴网络技术有限公司」共享给李四（可编辑，到" in a for a in answers)
    assert any(
        "张三把客户「阿里巴巴网络技术有限公司」共享给了您" in s for s in crm.sim.screen("lisi")
    )
    [card] = await crm.say("lisi", "查 阿里巴巴")
    assert "阿里巴巴网络技术有限公司" in card
    [gone] = await crm.say("zhangsan", "取消共享 阿里 李四")
    assert "已收回李四" in gone
    [after] = await crm.say("lisi", "查 阿里巴巴")
    assert "没有找到" in after


async def test_sharing_stays_within_ones_rights(crm: BotHarness) -> None:
    [answer] = await crm.say("qianqi", "共享 阿里巴巴 李四")
    assert "没有找到" in answer  # not hers to see, so not hers to share
    [nobody] = await crm.say("zhangsan", "共享 阿里 不存在的人")
    assert "通讯录里没有找到" in nobody


async def test_correcting_a_customer_and_a_deal_in_chat(crm: BotHarness) -> None:
    from crm_store.models import AuditEntry

    [industry] = await crm.say("zhangsan", "改 阿里 行业 电子商务")
    assert "行业从“互联网”改为“电子商务”" in industry
    [phone] = await crm.say("zhangsan", "改 阿里 电话 +86 138-0013-8000")
    assert "13800138000" in phone
    [renamed] = await crm.say("zhangsan", "改 阿里 名称 阿里巴巴（中国）有限公司")
    assert "阿里巴巴(中国)有限公司" in renamed
    [card] = await crm.say("zhangsan", "查 阿里巴巴中国")
    # found by its new name at once (markdown shows brackets full-width, as inert text)
    assert "**阿里巴巴（中国）有限公司**" in card and "阶段：暂无商机\n下次跟进" in card
    await crm.say("zhangsan", "商机 鹅厂 企业微信集成 三十万")
    [amount] = await crm.say("zhangsan", "改 企业微信集成 金额 45万")
    assert "从“30万”改为“45万”" in amount
    [closing] = await crm.say("zhangsan", "改 企业微信集成 预计成交 12月31日")
    assert "2026年12月31日" in closing
    [contact] = await crm.say("zhangsan", "改 鹅厂 联系人 马总")
    assert "马总" in contact
    async with crm.runtime.sessions() as session:
        deal = await session.scalar(select(Opportunity))
        audited = (
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.action.like("%edit%"))
            )
        ).all()
    assert deal is not None and deal.amount == 450000
    assert {"customer.edit.industry", "customer.edit.phone", "customer.edit.name"} <= set(audited)
    assert {"opportunity.edit.amount", "opportunity.edit.expected_close_date"} <= set(audited)


async def test_bad_corrections_change_nothing(crm: BotHarness) -> None:
    [which] = await crm.say("zhangsan", "改 阿里 颜色 红")
    assert "要改哪一项" in which
    [bad] = await crm.say("zhangsan", "改 阿里 电话 12")
    assert "电话" in bad
    [other] = await crm.say("qianqi", "改 阿里巴巴 行业 金融")
    assert "没有找到" in other
    async with crm.runtime.sessions() as session:
        customer = await session.scalar(select(Customer).where(Customer.name.like("阿里%")))
    assert customer is not None and customer.industry == "互联网"
