"""`wecrm config sla|categories|assignment`: the customer-service rules admins tune.

Each command with no value shows what is in force; with values it validates everything first
and writes nothing when any part is wrong. Every write leaves an audit row naming `--as`.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli.common import (
    CLI_ACTOR,
    AsOption,
    check_actor,
    fail,
    load_or_exit,
    migrated_database,
    run_session,
    utc_now,
)
from bot.settings import CompanySettings
from crm_store import config_data, sla, tickets
from crm_store.models.service import Priority, SlaTarget

TARGET_WORDS: dict[str, str] = {
    "first_response": SlaTarget.FIRST_RESPONSE.value,
    "首次响应": SlaTarget.FIRST_RESPONSE.value,
    "next_response": SlaTarget.NEXT_RESPONSE.value,
    "再次响应": SlaTarget.NEXT_RESPONSE.value,
    "resolution": SlaTarget.RESOLUTION.value,
    "解决": SlaTarget.RESOLUTION.value,
}
TARGET_LABELS = {
    SlaTarget.FIRST_RESPONSE.value: "首次响应 first_response",
    SlaTarget.NEXT_RESPONSE.value: "再次响应 next_response",
    SlaTarget.RESOLUTION.value: "解决 resolution",
}
RULE_LABELS = {"opener": "开单人 opener", "round_robin": "轮流 round_robin", "queue": "队列 queue"}
CALLBACK_LABELS = {"owner": "客户负责人 owner", "agent": "处理人 agent"}


def _tz() -> ZoneInfo:
    return load_or_exit(CompanySettings).tz


def policy_lines(policy: sla.SlaPolicy) -> list[str]:
    """The SLA policy as an admin reads it: hours, then one line per priority."""
    lines = [f"工作时间 (business hours): {sla.format_hours(policy.intervals)}"]
    for priority in Priority:
        parts = []
        for target in SlaTarget:
            rule = policy.rule(priority.value, target.value)
            mode = "工作时间 business" if rule.business else "全天 clock"
            parts.append(f"{TARGET_LABELS[target.value]} {rule.text} ({mode})")
        lines.append(f"{priority.value}: " + "；".join(parts))
    return lines


def rules_lines(rules: tickets.ServiceRules) -> list[str]:
    """The assignment rule and where call-backs go, one line each."""
    cap = "不限 none" if rules.cap is None else str(rules.cap)
    department = (
        "全部客服 every service agent" if rules.department_id is None else str(rules.department_id)
    )
    return [
        f"分配 (assignment): {RULE_LABELS[rules.assignment]}",
        f"客服部门 (department): {department}",
        f"每人未结工单上限 (cap): {cap}",
        f"队列负责人 (queue owner): {rules.queue_owner or '—'}",
        f"回访任务给 (callback to): {CALLBACK_LABELS[rules.callback_to]}",
    ]


def _target(text: str) -> str:
    target = TARGET_WORDS.get(text.strip().lower()) or TARGET_WORDS.get(text.strip())
    if target is None:
        raise fail(
            f"无法设置 (cannot set): unknown target {text!r}; "
            "use first_response|next_response|resolution (首次响应|再次响应|解决)"
        )
    return target


def sla_command(
    priority: Annotated[str | None, typer.Argument(help="P1 | P2 | P3 | P4")] = None,
    target: Annotated[
        str | None, typer.Argument(help="first_response | next_response | resolution")
    ] = None,
    duration: Annotated[str | None, typer.Argument(help="30m, 4h, 2d")] = None,
    business: Annotated[
        bool | None,
        typer.Option(
            "--business/--clock",
            help="Count in business hours or around the clock (default: as it is now).",
        ),
    ] = None,
    hours: Annotated[
        str | None,
        typer.Option("--hours", help="Business hours, e.g. 09:00-12:00,13:30-18:00."),
    ] = None,
    actor: AsOption = CLI_ACTOR,
) -> None:
    """Show the SLA policy, or set one target of one priority and/or the business hours."""
    given = [v for v in (priority, target, duration) if v is not None]
    if given and len(given) != 3:
        raise fail(
            "无法设置 (cannot set): give a priority, a target and a duration, "
            "e.g. `wecrm config sla P1 first_response 1h --clock`"
        )
    if business is not None and not given:
        raise fail("无法设置 (cannot set): --business/--clock goes with a target to set")
    tz = _tz()
    wanted = _target(target) if target is not None else None
    url = migrated_database()

    async def work(session: AsyncSession) -> list[str]:
        now = utc_now()
        if not given and hours is None:
            return policy_lines(await sla.get_policy(session, tz=tz))
        await check_actor(session, actor)
        try:
            policy = await sla.get_policy(session, tz=tz)
            if hours is not None:
                policy = await sla.set_business_hours(
                    session, hours=hours, by=actor, now=now, tz=tz
                )
            if priority is not None and wanted is not None and duration is not None:
                level = priority.strip().upper()
                mode = business
                if mode is None and level in policy.rules:
                    mode = policy.rule(level, wanted).business
                policy = await sla.set_target(
                    session,
                    priority=level,
                    target=wanted,
                    duration=duration,
                    business=bool(mode),
                    by=actor,
                    now=now,
                    tz=tz,
                )
        except sla.SlaConfigError as exc:
            raise fail(f"无法设置 (cannot set): {exc}") from None
        return ["SLA 已更新 (SLA policy set)", *policy_lines(policy)]

    for line in run_session(url, work, commit=bool(given) or hours is not None):
        typer.echo(line)


def categories_command(
    categories: Annotated[
        list[str] | None,
        typer.Argument(help="The new list, e.g. 咨询 投诉 故障 (commas work too)."),
    ] = None,
    actor: AsOption = CLI_ACTOR,
) -> None:
    """Show the ticket categories, or replace them with the ones given, in order."""
    wanted = [
        part.strip()
        for word in categories or []
        for part in word.replace("，", ",").split(",")
        if part.strip()
    ]
    if categories and not wanted:
        raise fail("无法设置 (cannot set): ticket categories must be non-empty and distinct")
    url = migrated_database()

    async def work(session: AsyncSession) -> list[str]:
        if not wanted:
            return [" ".join(await config_data.get_ticket_categories(session))]
        await check_actor(session, actor)
        try:
            await config_data.set_ticket_categories(
                session, categories=wanted, by=actor, now=utc_now()
            )
        except config_data.ConfigError as exc:
            raise fail(f"无法设置 (cannot set): {exc}") from None
        return [f"工单分类已更新 (ticket categories set): {' '.join(wanted)}"]

    for line in run_session(url, work, commit=bool(wanted)):
        typer.echo(line)


def assignment_command(
    rule: Annotated[
        str | None, typer.Option("--rule", help="opener | round_robin | queue")
    ] = None,
    department: Annotated[
        int | None,
        typer.Option("--department", help="The service department (0: every service agent)."),
    ] = None,
    cap: Annotated[
        int | None, typer.Option("--cap", help="Open tickets per agent before skipping (0: none).")
    ] = None,
    queue_owner: Annotated[
        str | None, typer.Option("--queue-owner", help="Userid who gets every ticket (queue).")
    ] = None,
    callback_to: Annotated[
        str | None, typer.Option("--callback-to", help="owner | agent: who gets the 回访 task.")
    ] = None,
    actor: AsOption = CLI_ACTOR,
) -> None:
    """Show how new tickets are assigned, or change the options given (the rest stay)."""
    changes = (rule, department, cap, queue_owner, callback_to)
    setting = any(v is not None for v in changes)
    if cap is not None and cap < 0:
        raise fail("无法设置 (cannot set): the cap must be positive (0 for no cap)")
    url = migrated_database()

    async def work(session: AsyncSession) -> list[str]:
        current = await tickets.get_rules(session)
        if not setting:
            return rules_lines(current)
        await check_actor(session, actor)
        updated = tickets.ServiceRules(
            assignment=rule or current.assignment,  # type: ignore[arg-type]
            department_id=current.department_id if department is None else department or None,
            cap=current.cap if cap is None else cap or None,
            queue_owner=current.queue_owner if queue_owner is None else queue_owner or None,
            callback_to=callback_to or current.callback_to,  # type: ignore[arg-type]
        )
        try:
            await tickets.set_rules(session, rules=updated, by=actor, now=utc_now())
        except ValueError as exc:
            raise fail(f"无法设置 (cannot set): {exc}") from None
        return ["分配规则已更新 (assignment rules set)", *rules_lines(updated)]

    for line in run_session(url, work, commit=setting):
        typer.echo(line)


def register(config_app: typer.Typer) -> None:
    """Add the service rules under `wecrm config` (called by bot.cli.main)."""
    config_app.command("sla")(sla_command)
    config_app.command("categories")(categories_command)
    config_app.command("assignment")(assignment_command)
