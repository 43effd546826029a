"""`wecrm config`: the CRM rules admins tune (pool limits, who hears about 撞单, service)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import service
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

config_app = typer.Typer(
    help="CRM rules: pool limits, 撞单 notices, stages, SLA, ticket categories, assignment.",
    no_args_is_help=True,
)


@config_app.command("show")
def show() -> None:
    """Print the rules in force (defaults where nothing was set)."""
    url = migrated_database()

    async def work(session: AsyncSession) -> list[str]:
        pool = await config_data.get_pool_rules(session)
        notice = await config_data.get_collision_notice(session)
        stages = await config_data.get_stages(session)
        policy = await sla.get_policy(session, tz=load_or_exit(CompanySettings).tz)
        categories = await config_data.get_ticket_categories(session)
        rules = await tickets.get_rules(session)
        return [
            f"公海 (pool): 每日领取上限 {pool.daily_claim_limit}，"
            f"原负责人 {pool.reclaim_cooldown_days} 天后可重新领取",
            f"撞单提醒 (collision notice): 负责人 {'是' if notice.owner else '否'}，"
            f"其上级 {'是' if notice.leader else '否'}",
            "阶段 (stages): " + " → ".join(s.name for s in stages),
            "工单分类 (ticket categories): " + " ".join(categories),
            *service.policy_lines(policy),
            *service.rules_lines(rules),
        ]

    for line in run_session(url, work, commit=False):
        typer.echo(line)


@config_app.command("pool")
def pool(
    daily_limit: Annotated[int, typer.Option(help="Customers a rep may claim per day.")],
    cooldown_days: Annotated[
        int, typer.Option(help="Days before a previous owner may claim a customer back.")
    ],
    actor: AsOption = CLI_ACTOR,
) -> None:
    """Set the public-pool rules."""
    url = migrated_database()

    async def work(session: AsyncSession) -> None:
        await check_actor(session, actor)
        try:
            await config_data.set_pool_rules(
                session,
                rules=config_data.PoolRules(
                    daily_claim_limit=daily_limit, reclaim_cooldown_days=cooldown_days
                ),
                by=actor,
                now=utc_now(),
            )
        except config_data.ConfigError as exc:
            raise fail(f"无法设置 (cannot set): {exc}") from None

    run_session(url, work)
    typer.echo(f"公海规则已更新：每日 {daily_limit} 个，冷却 {cooldown_days} 天 (pool rules set)")


@config_app.command("collision")
def collision(
    owner: Annotated[bool, typer.Option("--owner/--no-owner", help="Tell the owner.")] = True,
    leader: Annotated[
        bool, typer.Option("--leader/--no-leader", help="Tell the owner's direct leader.")
    ] = True,
    actor: AsOption = CLI_ACTOR,
) -> None:
    """Choose who is told when a colleague works on or re-adds someone's customer (撞单)."""
    url = migrated_database()

    async def work(session: AsyncSession) -> None:
        await check_actor(session, actor)
        await config_data.set_collision_notice(
            session,
            notice=config_data.CollisionNotice(owner=owner, leader=leader),
            by=actor,
            now=utc_now(),
        )

    run_session(url, work)
    typer.echo(
        f"撞单提醒：负责人 {'是' if owner else '否'}，上级 {'是' if leader else '否'} "
        "(collision notice set)"
    )


def register(app: typer.Typer) -> None:
    """Add `wecrm config …` (called by bot.cli.main)."""
    app.add_typer(config_app, name="config")
