"""`wecrm config sla|categories|assignment` on a migrated SQLite file: show, set, refuse.

Every refusal is checked twice: a clear message, and no setting and no audit row written.
"""

from __future__ import annotations

import asyncio
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from crm_store import config_data, sla, staff, tickets
from crm_store.clock import FakeClock
from crm_store.models import AuditEntry, CrmSetting
from crm_store.session import create_engine, session_factory
from tests.unit.test_cli_admin import db_url, elsewhere, query, wecrm

__all__ = ["db_url", "elsewhere"]  # the shared fixtures, used by name below
TZ = ZoneInfo("Asia/Shanghai")


def read(url: str, fn: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(url)
        async with session_factory(engine)() as session:
            found = await fn(session)
        await engine.dispose()
        return found

    return asyncio.run(run())


def audits(url: str, key: str) -> list[tuple[str, Any]]:
    async def rows(session: Any) -> list[tuple[str, Any]]:
        found = await session.execute(
            select(AuditEntry.actor_id, AuditEntry.after)
            .where(AuditEntry.entity == "crm_settings", AuditEntry.entity_id == key)
            .order_by(AuditEntry.id)
        )
        return [tuple(r) for r in found.all()]

    return list(read(url, rows))


def settings_count(url: str) -> int:
    return int(query(url, select(func.count()).select_from(CrmSetting)))


def refused(url: str, args: list[str], words: str) -> None:
    """The command exits 2 naming the problem, and the settings table is as it was."""
    before = settings_count(url), int(query(url, select(func.count()).select_from(AuditEntry)))
    result = wecrm(url, *args)
    assert result.exit_code == 2, (args, result.output)
    assert words in result.output, (args, result.output)
    after = settings_count(url), int(query(url, select(func.count()).select_from(AuditEntry)))
    assert after == before, args


def policy(url: str) -> sla.SlaPolicy:
    return read(url, lambda s: sla.get_policy(s, tz=TZ))  # type: ignore[no-any-return]


def test_sla_show_and_set(db_url: str) -> None:
    shown = wecrm(db_url, "config", "sla")
    assert shown.exit_code == 0, shown.output
    assert "工作时间 (business hours): 09:00-18:00" in shown.output
    assert "P1: 首次响应 first_response 1h (全天 clock)" in shown.output
    assert "P2: 首次响应 first_response 4h (工作时间 business)" in shown.output

    result = wecrm(
        db_url,
        "config", "sla", "p1", "first_response", "30m", "--business",
        "--hours", "09:00-12:00,13:30-18:00", "--as", "zhangsan",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "P1: 首次响应 first_response 30m (工作时间 business)" in result.output
    stored = policy(db_url)
    assert stored.rule("P1", "first_response") == sla.TargetRule(30, "m", business=True)
    assert sla.format_hours(stored.intervals) == "09:00-12:00,13:30-18:00"
    assert stored.hours.day_seconds == 7 * 3600 + 1800
    # Without --business/--clock a target keeps its mode; Chinese target words work too.
    assert wecrm(db_url, "config", "sla", "P2", "解决", "2d").exit_code == 0
    assert policy(db_url).rule("P2", "resolution") == sla.TargetRule(2, "d", business=True)
    assert wecrm(db_url, "config", "sla", "P2", "resolution", "8h", "--clock").exit_code == 0
    assert policy(db_url).rule("P2", "resolution") == sla.TargetRule(8, "h", business=False)
    trail = audits(db_url, sla.KEY_SLA_POLICY)
    assert [who for who, _ in trail] == ["zhangsan", "zhangsan", "cli", "cli"]
    assert trail[-1][1]["value"]["rules"]["P2"]["resolution"] == {
        "amount": 8,
        "unit": "h",
        "business": False,
    }


def test_sla_refuses_bad_values_and_writes_nothing(db_url: str) -> None:
    refused(db_url, ["config", "sla", "P9", "first_response", "1h"], "unknown priority 'P9'")
    refused(db_url, ["config", "sla", "P1", "lunch", "1h"], "unknown target 'lunch'")
    refused(db_url, ["config", "sla", "P1", "resolution", "1x"], "looks like 30m, 4h or 2d")
    refused(db_url, ["config", "sla", "P1", "resolution", "0h"], "looks like 30m, 4h or 2d")
    refused(db_url, ["config", "sla", "P1", "resolution"], "give a priority, a target")
    refused(db_url, ["config", "sla", "--clock"], "goes with a target")
    refused(db_url, ["config", "sla", "--hours", "9-18"], "look like 09:00-18:00")
    refused(db_url, ["config", "sla", "--hours", "18:00-09:00"], "ends before it starts")
    refused(db_url, ["config", "sla", "--hours", "09:00-13:00,12:00-18:00"], "overlap")
    refused(db_url, ["config", "sla", "--hours", "09:00-25:00"], "no such time")
    # Good hours with a bad target in the same command: neither is stored.
    refused(
        db_url,
        ["config", "sla", "P1", "resolution", "soon", "--hours", "08:00-17:00"],
        "looks like",
    )
    refused(db_url, ["config", "sla", "P1", "resolution", "2h", "--as", "nobody"], "unknown")
    assert policy(db_url) == sla.SlaPolicy(TZ)


def test_categories_show_set_and_refuse(db_url: str) -> None:
    shown = wecrm(db_url, "config", "categories")
    assert shown.exit_code == 0 and "咨询 投诉 故障 退换货 其他" in shown.output
    result = wecrm(db_url, "config", "categories", "咨询", "投诉，故障", "安装", "--as", "lisi")
    assert result.exit_code == 0, result.output
    assert "ticket categories set" in result.output
    expected = ["咨询", "投诉", "故障", "安装"]
    assert read(db_url, config_data.get_ticket_categories) == expected
    assert "咨询 投诉 故障 安装" in wecrm(db_url, "config", "categories").output
    assert audits(db_url, config_data.KEY_TICKET_CATEGORIES) == [("lisi", {"value": expected})]

    refused(db_url, ["config", "categories", "咨询", "咨询"], "non-empty and distinct")
    refused(db_url, ["config", "categories", ",，"], "non-empty and distinct")
    refused(db_url, ["config", "categories", "咨询", "很长" * 17], "at most 32 characters")
    assert read(db_url, config_data.get_ticket_categories) == expected


def seed_service(url: str) -> None:
    async def seed() -> None:
        engine = create_engine(url)
        async with session_factory(engine).begin() as session:
            now = FakeClock().now()
            await staff.upsert_department(
                session, department_id=5, name="客服部", parent_id=None, now=now
            )
            await staff.upsert_staff(
                session, userid="kefu1", name="客服小王", department_ids=[5], now=now
            )
        await engine.dispose()

    asyncio.run(seed())


def rules(url: str) -> tickets.ServiceRules:
    return read(url, tickets.get_rules)  # type: ignore[no-any-return]


def test_assignment_show_set_and_refuse(db_url: str) -> None:
    seed_service(db_url)
    shown = wecrm(db_url, "config", "assignment")
    assert shown.exit_code == 0, shown.output
    assert "分配 (assignment): 轮流 round_robin" in shown.output
    assert "每人未结工单上限 (cap): 20" in shown.output

    result = wecrm(
        db_url, "config", "assignment", "--rule", "round_robin", "--department", "5",
        "--cap", "8", "--callback-to", "agent",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert rules(db_url) == tickets.ServiceRules("round_robin", 5, 8, None, "agent")
    # Options not given stay; 0 clears the cap and the department.
    queued = wecrm(db_url, "config", "assignment", "--rule", "queue", "--queue-owner", "kefu1")
    assert queued.exit_code == 0, queued.output
    assert "队列负责人 (queue owner): kefu1" in queued.output
    assert rules(db_url) == tickets.ServiceRules("queue", 5, 8, "kefu1", "agent")
    assert wecrm(db_url, "config", "assignment", "--cap", "0", "--department", "0").exit_code == 0
    assert rules(db_url) == tickets.ServiceRules("queue", None, None, "kefu1", "agent")
    assert len(audits(db_url, tickets.KEY_SERVICE_RULES)) == 3

    refused(db_url, ["config", "assignment", "--rule", "lottery"], "unknown assignment rule")
    refused(db_url, ["config", "assignment", "--queue-owner", "nobody"], "no such person")
    refused(db_url, ["config", "assignment", "--department", "99"], "no such department 99")
    refused(db_url, ["config", "assignment", "--cap", "-3"], "the cap must be positive")
    refused(db_url, ["config", "assignment", "--callback-to", "boss"], "owner or the agent")
    refused(
        db_url,
        ["config", "assignment", "--rule", "opener", "--as", "ghost"],
        "unknown userid",
    )
    assert rules(db_url) == tickets.ServiceRules("queue", None, None, "kefu1", "agent")


def test_config_show_includes_the_service_rules(db_url: str) -> None:
    assert wecrm(db_url, "config", "categories", "咨询", "投诉").exit_code == 0
    shown = wecrm(db_url, "config", "show")
    assert shown.exit_code == 0, shown.output
    assert "工单分类 (ticket categories): 咨询 投诉" in shown.output
    assert "P4: 首次响应 first_response 2d (工作时间 business)" in shown.output
    assert "分配 (assignment): 轮流 round_robin" in shown.output
