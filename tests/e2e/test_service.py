"""Customer service in chat, end to end: encrypted callbacks in, what people see out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from crm_store import customers, staff
from crm_store.models import AuditEntry, MediaFile, Task, Ticket
from crm_store.scope import load_actor
from handlers.service.jobs import sla_notices
from tests.e2e.conftest import BotHarness

TZ = ZoneInfo("Asia/Shanghai")
ORG = [(1, "总部", None), (2, "销售部", 1), (5, "客服部", 1)]
PEOPLE = [  # userid, name, departments, led departments, role
    ("zhangsan", "张三", [2], [], "rep"),
    ("qianqi", "钱七", [2], [], "rep"),
    ("kefu1", "客服小王", [5], [], "service"),
    ("kefu2", "客服小李", [5], [], "service"),
    ("kfzg", "客服主管", [5], [5], "service"),
    ("admin", "吴管理员", [1], [], "admin"),
]
CUSTOMERS = [
    ("阿里巴巴网络技术有限公司", "zhangsan", ["阿里"]),
    ("北京字节跳动科技有限公司", "qianqi", ["字节"]),
]


@pytest.fixture
async def desk(bot: BotHarness) -> BotHarness:
    """The bot with a sales team, a service desk and two customers."""
    return await seed_desk(bot)


async def seed_desk(bot: BotHarness) -> BotHarness:
    bot.clock.set(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # Tuesday 10:00 in Shanghai
    now = bot.clock.now()
    async with bot.runtime.sessions.begin() as session:
        for dept_id, name, parent in ORG:
            await staff.upsert_department(
                session, department_id=dept_id, name=name, parent_id=parent, now=now
            )
        for userid, name, depts, led, role in PEOPLE:
            await staff.upsert_staff(
                session,
                userid=userid,
                name=name,
                department_ids=depts,
                main_department_id=depts[0],
                leader_in=led,
                direct_leaders=[],
                now=now,
            )
            if role != "rep":
                await staff.set_role(session, userid=userid, role=role, by="test", now=now)
        admin = await load_actor(session, "admin")
        assert admin is not None
        for name, owner, aliases in CUSTOMERS:
            await customers.create_customer(
                session, actor=admin, name=name, now=now, owner_id=owner, aliases=aliases
            )
    for userid, *_ in PEOPLE:
        bot.sim.add_user(userid, userid, [1])
    return bot


async def count(bot: BotHarness, model: type, *where: Any) -> int:
    async with bot.runtime.sessions() as session:
        return int(
            await session.scalar(select(func.count()).select_from(model).where(*where)) or 0
        )


async def only_ticket(bot: BotHarness) -> Ticket:
    async with bot.runtime.sessions() as session:
        [ticket] = (await session.scalars(select(Ticket))).all()
        return ticket


async def test_forwarded_words_become_one_ticket_and_the_owner_is_told(desk: BotHarness) -> None:
    first = await desk.say("kefu1", "你们的系统从早上开始就登不上去")
    assert "暂存" in first[0] or "开工单" in first[0]
    await desk.say("kefu1", "我们全公司都用不了，产线停了")
    await desk.say("kefu1", "再不解决我们就要求赔偿")
    status, _ = await desk.sim.sender.send_message(
        desk.callback_url, "kefu1", "image", PicUrl="x", MediaId="m1"
    )
    assert status == 200
    await desk.drain()
    owner_before = len(desk.sim.screen("zhangsan"))
    [card, *_] = await desk.say("kefu1", "工单 阿里")
    assert "已开工单 #" in card and "P1" in card
    ticket = await only_ticket(desk)
    assert ticket.content.splitlines() == [
        "你们的系统从早上开始就登不上去",
        "我们全公司都用不了，产线停了",
        "再不解决我们就要求赔偿",
    ]
    assert [a["kind"] for a in ticket.attachments] == ["image"]
    told = desk.sim.screen("zhangsan")[owner_before:]
    assert len(told) == 1 and "阿里巴巴" in told[0] and f"#{ticket.number}" in told[0]
    # the hold is used up: the next 工单 阿里 lists instead of opening again
    [listing] = await desk.say("kefu1", "工单 阿里")
    assert f"#{ticket.number}" in listing and await count(desk, Ticket) == 1


async def test_a_retried_callback_opens_no_second_ticket(desk: BotHarness) -> None:
    for _ in range(3):
        await desk.sim.send_text("kefu1", "工单 字节 打印机卡纸，打不出来", msg_id=777)
    await desk.drain()
    assert await count(desk, Ticket) == 1
    assert sum("已开工单" in s for s in desk.sim.screen("kefu1")) == 1


async def test_open_take_reply_wait_resolve_close_with_history(desk: BotHarness) -> None:
    [card, *_] = await desk.say("kefu1", "工单 字节 P3 发票抬头写错了")
    assert "P3" in card and "自动判断" not in card
    ticket = await only_ticket(desk)
    n = ticket.number
    assert (await desk.tap("kefu1", "service.work.take"))[0].startswith(f"已接单 #{n}")
    await desk.say("kefu1", f"回复 #{n} 已重新开票，今天寄出")
    [paused] = await desk.say("kefu1", f"等待 #{n}")
    assert "暂停" in paused
    [wrong] = await desk.say("kefu1", f"关闭 #{n}")
    assert "不能关闭" in wrong and "先“解决”" in wrong
    await desk.say("kefu1", f"继续 #{n}")
    await desk.say("kefu1", f"解决 #{n} 已寄出新发票")
    [closed] = await desk.say("kefu1", f"关闭 #{n}")
    assert "已关闭" in closed
    [shown] = await desk.say("kefu1", f"工单 #{n}")
    for word in ("开单", "接单", "回复客户", "等待客户", "客户已回复", "解决", "关闭"):
        assert word in shown
    assert await count(desk, AuditEntry, AuditEntry.entity == "ticket") == 7
    [again] = await desk.say("kefu1", f"解决 #{n} 再解决一次")
    assert "已关闭" in again and "不能解决" in again


async def test_transfer_tells_the_new_assignee(desk: BotHarness) -> None:
    await desk.say("kefu1", "工单 字节 打印机卡纸")
    n = (await only_ticket(desk)).number
    before = len(desk.sim.screen("kefu2"))
    [done] = await desk.say("kefu1", f"转 #{n} 客服小李")
    assert "转给 客服小李" in done
    told = desk.sim.screen("kefu2")[before:]
    assert any(f"#{n}" in t and "转给了您" in t for t in told)
    [nobody] = await desk.say("kefu1", f"转 #{n} 不存在的人")
    assert "没有找到在职的同事" in nobody


async def test_priority_button_and_note_slot(desk: BotHarness) -> None:
    await desk.say("kefu1", "工单 字节 请问怎么开发票")
    ticket = await only_ticket(desk)
    assert ticket.priority == "P4" and ticket.category == "咨询"
    await desk.tap("kefu1", "service.tickets.prio")
    [changed] = await desk.tap("kefu1", "service.work.setprio")
    assert "P1" in changed
    [ask] = await desk.tap("kefu1", "service.tickets.note")
    assert "备注内容" in ask
    [noted] = await desk.say("kefu1", "客户是大客户，优先处理")
    assert "已给工单" in noted
    assert (await only_ticket(desk)).priority == "P1"


async def test_resolving_a_complaint_tells_the_owner_and_creates_a_callback(
    desk: BotHarness,
) -> None:
    await desk.say("kefu1", "工单 阿里 客服态度太差，我要投诉")
    ticket = await only_ticket(desk)
    assert ticket.category == "投诉"
    before = len(desk.sim.screen("zhangsan"))
    [done] = await desk.say("kefu1", f"解决 #{ticket.number} 已道歉并补偿优惠券")
    assert "回访" in done
    told = desk.sim.screen("zhangsan")[before:]
    assert len(told) == 1 and "已解决" in told[0] and "回访" in told[0]
    async with desk.runtime.sessions() as session:
        [task] = (await session.scalars(select(Task))).all()
    assert task.owner_id == "zhangsan" and "回访" in task.title
    [rated] = await desk.say("kefu1", f"满意度 #{ticket.number} 4 比较满意")
    assert "4 分" in rated
    assert (await only_ticket(desk)).satisfaction == 4


async def test_a_rep_sees_only_tickets_of_their_customers(desk: BotHarness) -> None:
    await desk.say("kefu1", "工单 字节 打印机卡纸")
    n = (await only_ticket(desk)).number
    [hidden] = await desk.say("zhangsan", f"工单 #{n}")
    assert "没有找到工单" in hidden
    [shown] = await desk.say("qianqi", f"工单 #{n}")
    assert f"工单 #{n}" in shown
    [refused] = await desk.say("qianqi", f"解决 #{n} 我来")
    assert "客服" in refused and await count(desk, Ticket, Ticket.status == "resolved") == 0
    [mine] = await desk.say("kefu2", f"工单 #{n}")
    assert f"工单 #{n}" in mine  # service sees every ticket


async def test_service_sees_the_customer_with_tickets_first(desk: BotHarness) -> None:
    await desk.say("kefu1", "工单 阿里 打印机卡纸")
    [card] = await desk.say("kefu2", "工单 阿里")
    assert card.index("工单") < card.index("负责人") or "**工单**" in card
    assert "张三" in card and "打印机卡纸" in card


async def test_sla_warning_and_breach_reach_assignee_and_leader_once(desk: BotHarness) -> None:
    await desk.say("kefu1", "工单 字节 系统宕机了，全部无法使用")  # P1: 1 h around the clock
    ticket = await only_ticket(desk)
    assignee = ticket.assignee_id
    assert assignee is not None
    desk.clock.advance(minutes=50)
    async with desk.runtime.sessions() as session:
        warned = await sla_notices(session, now=desk.clock.now(), tz=TZ)
    kinds = {(s.key.split(":")[2], s.key.split(":")[3]) for s in warned}
    assert ("first_response", "warn") in kinds
    desk.clock.advance(minutes=15)
    async with desk.runtime.sessions() as session:
        breached = await sla_notices(session, now=desk.clock.now(), tz=TZ)
    keys = [s.key for s in breached]
    assert any(":first_response:breach:" in k for k in keys)
    breach = next(s for s in breached if ":first_response:breach:" in s.key)
    assert breach.reply.to_user == assignee and "kfzg" in (
        breach.reply.to_user,
        *breach.reply.extra_to,
    )
    [mine] = await desk.say(assignee, "我的工单")
    assert "已超时" in mine


async def test_each_command_from_a_wrong_status_is_explained_and_changes_nothing(
    desk: BotHarness,
) -> None:
    await desk.say("kefu1", "工单 字节 打印机卡纸")
    n = (await only_ticket(desk)).number
    await desk.say("kefu1", f"解决 #{n} 换了硒鼓")
    before = await count(desk, AuditEntry)
    for command in (
        f"接单 #{n}",
        f"等待 #{n}",
        f"继续 #{n}",
        f"回复 #{n} 好的",
        f"优先级 #{n} P1",
    ):
        [answer] = await desk.say("kefu1", command)
        assert "已解决" in answer and "不能" in answer, command
    assert await count(desk, AuditEntry) == before


async def test_a_rating_keeps_its_note(desk: BotHarness) -> None:
    await desk.say("kefu1", "工单 字节 发票抬头写错了")
    n = (await only_ticket(desk)).number
    [early] = await desk.say("kefu1", f"满意度 #{n} 5 很满意")
    assert (await only_ticket(desk)).satisfaction is None and f"#{n}" in early
    await desk.say("kefu1", f"解决 #{n} 已重开发票")
    [rated] = await desk.say("kefu1", f"满意度 #{n} 5 回访时客户说处理很快 非常满意")
    assert "5 分" in rated
    ticket = await only_ticket(desk)
    assert (ticket.satisfaction, ticket.satisfaction_note) == (5, "回访时客户说处理很快 非常满意")
    [shown] = await desk.say("kefu1", f"工单 #{n}")
    assert "5分：回访时客户说处理很快" in shown
    [bad] = await desk.say("kefu1", f"满意度 #{n} 9 太好了")
    assert (await only_ticket(desk)).satisfaction == 5 and "1" in bad and "5" in bad


# Forwarded files are kept: media ids on the ticket, the bytes on disk ------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
LOG = "2026-11-24 09:58:01 ERROR 登录失败: token expired\n".encode() * 20


@pytest.fixture
async def media_desk(make_bot: Any, tmp_path: Path) -> BotHarness:
    """The service desk with its media folder in tmp_path (WECRM_MEDIA_DIR)."""
    return await seed_desk(await make_bot(WECRM_MEDIA_DIR=str(tmp_path / "files")))


async def media_rows(bot: BotHarness) -> list[MediaFile]:
    async with bot.runtime.sessions() as session:
        return list(await session.scalars(select(MediaFile).order_by(MediaFile.id)))


async def forward_and_open(bot: BotHarness) -> Ticket:
    await bot.say("kefu1", "客户说登录一直报错，附截图和日志")
    for kind, name, content in (("image", "报错截图.png", PNG), ("file", "错误日志.txt", LOG)):
        status, _ = await bot.sim.send_media("kefu1", kind, name, content)
        assert status == 200
    await bot.drain()
    await bot.say("kefu1", "工单 阿里")
    return await only_ticket(bot)


async def test_forwarded_image_and_file_land_on_disk(
    media_desk: BotHarness, tmp_path: Path
) -> None:
    ticket = await forward_and_open(media_desk)
    image, file = ticket.attachments
    assert (image["kind"], file["kind"]) == ("image", "file")
    assert image["media_id"] in media_desk.sim.media and image["pic_url"].startswith("https://")
    assert file["file_name"] == "错误日志.txt" and "path" not in file
    assert media_desk.runtime.settings.media_folder == tmp_path / "files"

    assert await media_desk.runtime.media.run_until_idle() == 2
    assert media_desk.sim.calls["media/get"] == 2
    stored = (await only_ticket(media_desk)).attachments
    folder = tmp_path / "files"
    assert (folder / stored[0]["path"]).read_bytes() == PNG
    assert (folder / stored[1]["path"]).read_bytes() == LOG
    assert stored[1]["path"].startswith(f"{ticket.id}/") and stored[1]["path"].endswith(
        "-错误日志.txt"
    )
    assert stored[0]["size"] == len(PNG)
    rows = await media_rows(media_desk)
    assert [(r.state, r.attempts) for r in rows] == [("stored", 1), ("stored", 1)]
    # Nothing is fetched twice, and only the .part- files of a crash could be left behind.
    assert await media_desk.runtime.media.run_until_idle() == 0
    assert sorted(p.name.split("-", 1)[1] for p in (folder / str(ticket.id)).iterdir()) == [
        "报错截图.png",
        "错误日志.txt",
    ]


async def test_a_failed_fetch_is_retried_and_an_expired_one_marked(
    media_desk: BotHarness, tmp_path: Path
) -> None:
    ticket = await forward_and_open(media_desk)
    image_id = ticket.attachments[0]["media_id"]
    media_desk.sim.fail_next("media/get", errcode=-1)  # system busy: try again later
    media_desk.sim.media.pop(ticket.attachments[1]["media_id"])  # WeCom forgot it: 40007
    assert await media_desk.runtime.media.run_until_idle() == 2
    image, file = await media_rows(media_desk)
    assert (image.state, image.attempts, file.state) == ("pending", 1, "expired")
    assert file.error is not None and "40007" in file.error
    assert image.next_attempt_at is not None and image.next_attempt_at > media_desk.clock.now()
    assert (await only_ticket(media_desk)).attachments[1]["expired"] is True

    assert await media_desk.runtime.media.run_until_idle() == 0  # not due yet
    media_desk.clock.advance(minutes=1)
    assert await media_desk.runtime.media.run_until_idle() == 1
    image, _ = await media_rows(media_desk)
    assert (image.state, image.attempts) == ("stored", 2)
    assert image.path is not None and (tmp_path / "files" / image.path).read_bytes() == PNG
    assert media_desk.sim.media[image_id].content == PNG


async def test_media_older_than_three_days_is_not_asked_for(media_desk: BotHarness) -> None:
    await forward_and_open(media_desk)
    media_desk.clock.advance(days=3)
    assert await media_desk.runtime.media.run_until_idle() == 2
    assert [r.state for r in await media_rows(media_desk)] == ["expired", "expired"]
    assert media_desk.sim.calls["media/get"] == 0
