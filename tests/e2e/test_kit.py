"""The handler kit end to end: role gating, help per role, persisted state across versions."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_store import conversation, customers, deals, staff
from crm_store.models import Customer, Followup, Opportunity
from crm_store.scope import Scope, load_actor
from handlers.dispatch import dispatcher
from tests.e2e.conftest import BotHarness

ROLES = {"rep": "xiaoli", "service": "kefu", "manager": "jingli", "admin": "guanli"}
REFUSAL = "是给"


@pytest.fixture
async def org(bot: BotHarness) -> BotHarness:
    """One person per role and one customer owned by the rep."""
    now = bot.clock.now()
    async with bot.runtime.sessions.begin() as session:
        await staff.upsert_department(
            session, department_id=1, name="总部", parent_id=None, now=now
        )
        for role, userid in ROLES.items():
            await staff.upsert_staff(
                session,
                userid=userid,
                name=f"{role}人",
                department_ids=[1],
                main_department_id=1,
                leader_in=[],
                direct_leaders=[],
                now=now,
            )
            await staff.set_role(session, userid=userid, role=role, by="test", now=now)
        admin = await load_actor(session, "guanli")
        assert admin is not None
        await customers.create_customer(
            session, actor=admin, name="杭州云栖科技有限公司", now=now, owner_id="xiaoli"
        )
    for userid in ROLES.values():
        bot.sim.add_user(userid, userid, [1])
    return bot


def _help_names(text: str) -> set[str]:
    return set(re.findall(r"`([^`\s]+)`", text))


@pytest.mark.parametrize("role", list(ROLES))
async def test_help_lists_exactly_what_the_role_may_run(org: BotHarness, role: str) -> None:
    overview = "\n".join(await org.say(ROLES[role], "帮助"))  # long lists come in parts
    expected = {cmd.name for cmd in dispatcher().commands_for(role)}
    assert _help_names(overview) == expected


@pytest.mark.parametrize("role", list(ROLES))
async def test_every_command_is_offered_or_politely_refused(org: BotHarness, role: str) -> None:
    for cmd in dispatcher().commands:
        org.clock.advance(5)  # stay within WeCom's 30 a minute per member
        answers = await org.say(ROLES[role], cmd.name)
        assert answers, f"{cmd.name} as {role} got no answer"
        refused = any(REFUSAL in a and "暂时不能使用" in a for a in answers)
        assert refused is not cmd.allows(role), (cmd.name, role, answers)
        if refused:
            assert cmd.name in answers[0] and "没看懂" not in answers[0]


async def test_a_service_agent_sees_the_card_without_the_follow_up_hint(org: BotHarness) -> None:
    [card] = await org.say("kefu", "查 云栖")
    assert "杭州云栖科技有限公司" in card and "记跟进" not in card
    [card] = await org.say("xiaoli", "查 云栖")
    assert "记跟进" in card


async def test_unknown_people_are_answered_in_one_place(org: BotHarness) -> None:
    org.sim.add_user("stranger", "陌生人", [1])
    for text in ("帮助", "查 云栖", "2", "随便说点什么"):
        [answer] = await org.say("stranger", text)
        assert "还没有在通讯录里找到您" in answer


async def test_slip_suggestions_come_from_what_the_asker_may_run(org: BotHarness) -> None:
    [answer] = await org.say("kefu", "跟紧 云栖")
    assert "跟进" not in answer.split("没看懂")[-1].split("”", 1)[-1]


async def _customer_id(bot: BotHarness) -> int:
    async with bot.runtime.sessions() as session:
        found = await session.scalar(select(Customer.id))
    assert found is not None
    return found


async def test_a_pending_choice_in_the_old_format_is_still_understood(org: BotHarness) -> None:
    customer_id = await _customer_id(org)
    now = org.clock.now()
    async with org.runtime.sessions.begin() as session:
        await conversation.put(
            session,
            user_id="xiaoli",
            slot="pending",
            value={
                "purpose": "log",
                "payload": {"text": "电话聊了续约"},
                "query": "云栖",
                "options": [customer_id],
            },
            expires_at=now + timedelta(minutes=5),
            now=now,
        )
    [confirmation] = await org.say("xiaoli", "1")
    assert "已记录跟进" in confirmation
    async with org.runtime.sessions() as session:
        followup = await session.scalar(select(Followup))
    assert followup is not None and followup.content == "电话聊了续约"


async def test_a_lost_reason_in_the_old_format_is_still_understood(org: BotHarness) -> None:
    customer_id = await _customer_id(org)
    now = org.clock.now()
    async with org.runtime.sessions.begin() as session:
        actor = await load_actor(session, "xiaoli")
        assert actor is not None
        deal, _ = await deals.create_opportunity(
            session,
            scope=Scope(actor, now=now),
            customer_id=customer_id,
            title="二期扩容",
            amount=Decimal(500000),
            source_key="seed",
            now=now,
        )
        await conversation.put(
            session,
            user_id="xiaoli",
            slot="lost_reason",
            value={"opportunity_id": deal.id, "stage": "输单"},
            expires_at=now + timedelta(minutes=5),
            now=now,
        )
    await org.say("xiaoli", "价格太高")
    async with org.runtime.sessions() as session:
        stored = await session.get(Opportunity, deal.id)
    assert stored is not None and stored.lost_reason == "价格太高"


async def test_an_unreadable_pending_state_gets_a_polite_restart(org: BotHarness) -> None:
    now = org.clock.now()
    async with org.runtime.sessions.begin() as session:
        await conversation.put(
            session,
            user_id="xiaoli",
            slot="pending",
            value={"flavour": "from a future version", "options": "?"},
            expires_at=now + timedelta(minutes=5),
            now=now,
        )
    [answer] = await org.say("xiaoli", "1")
    assert "请重新发起" in answer
    [again] = await org.say("xiaoli", "1")  # the bad row is gone: no loop of apologies
    assert "请重新发起" not in again


async def _tap_raw(bot: BotHarness, key: str) -> tuple[int, str]:
    """A button event whose key we choose (an old card, or a forged one)."""
    return await bot.sim.send_event(
        "xiaoli",
        "template_card_event",
        EventKey=key,
        TaskId="old-card",
        CardType="button_interaction",
        ResponseCode="code-from-an-old-card",
    )


async def test_buttons_sent_by_the_previous_version_still_work(org: BotHarness) -> None:
    customer_id = await _customer_id(org)
    status, _ = await _tap_raw(org, f"pick:{customer_id}")
    assert status == 200
    await org.drain()
    assert "杭州云栖科技有限公司" in org.sim.screen("xiaoli")[-1]


@pytest.mark.parametrize("key", ["sales.todo.done:abc", "sales.todo.done:1:2", "nosuch.key:1"])
async def test_forged_or_broken_button_keys_get_a_polite_answer(org: BotHarness, key: str) -> None:
    status, _ = await _tap_raw(org, key)
    assert status == 200
    await org.drain()
    assert "按钮已失效" in org.sim.screen("xiaoli")[-1]
