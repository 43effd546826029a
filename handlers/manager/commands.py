"""日报 / 周报 / 团队 / 业绩: a team's numbers pulled on demand.

Managers, admins and department leaders read their subtree; a rep asking gets their own
numbers only. Everything goes through crm_store.kpi under the asker's scope, so a person
outside the subtree is simply not found.
"""

from __future__ import annotations

from datetime import date

from crm_store import kpi
from handlers.kit.context import HandlerContext
from handlers.kit.replies import MarkdownReply, Reply
from handlers.kit.routing import Router
from handlers.manager import digest as digests
from handlers.manager.digest import Period
from handlers.manager.periods import parse_day, parse_week

router = Router(
    "manager.digest", audience="manager", title="团队与报表", roles=("rep", "manager", "admin")
)


async def _reply(ctx: HandlerContext, period: Period, day: date) -> list[Reply]:
    found = await digests.build(ctx.session, ctx.scope(), period=period, day=day, tz=ctx.tz)
    parts = digests.sections(found, period=period, tz=ctx.tz)
    if not parts:
        return [ctx.reply("manager/digest_empty", title=digests.title_of(found, period))]
    return [MarkdownReply(ctx.user_id, digests.markdown(parts))]


@router.command(
    "日报",
    "daily",
    "digest",
    summary="团队当天的跟进、商机、工单和风险（可加日期）",
    usage="日报 [今天/昨天/日期]",
    example="日报 昨天",
)
async def show_daily(ctx: HandlerContext, argument: str) -> list[Reply]:
    day = parse_day(argument, ctx.local_now().date())
    if day is None:
        return [ctx.reply("manager/bad_day", text=argument.strip())]
    return await _reply(ctx, Period.DAY, day)


@router.command(
    "周报",
    "weekly",
    summary="团队一周的跟进、商机、工单和风险（可加 上周）",
    usage="周报 [本周/上周/日期]",
    example="周报 上周",
)
async def show_weekly(ctx: HandlerContext, argument: str) -> list[Reply]:
    day = parse_week(argument, ctx.local_now().date())
    if day is None:
        return [ctx.reply("manager/bad_week", text=argument.strip())]
    return await _reply(ctx, Period.WEEK, day)


@router.command(
    "团队",
    "team",
    summary="团队成员和今天的数字",
    usage="团队",
    example="团队",
)
async def show_team(ctx: HandlerContext, _argument: str) -> list[Reply]:
    today = ctx.local_now().date()
    found = await digests.build(ctx.session, ctx.scope(), period=Period.DAY, day=today, tz=ctx.tz)
    return [
        ctx.reply(
            "manager/team",
            title=digests.title_of(found, Period.DAY).removeprefix("日报 "),
            reps=[digests.rep_line(r) for r in found.team],
        )
    ]


def _match(name: str, team: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Exact name or userid first; else a unique name containing the words."""
    exact = [(u, n) for u, n in team if name in (n, u.lower())]
    if exact:
        return exact[:1]
    partial = [(u, n) for u, n in team if name in n]
    return partial if len(partial) == 1 else []


@router.command(
    "业绩",
    "performance",
    summary="某位成员本周的数字",
    usage="业绩 <姓名>",
    example="业绩 张三",
)
async def show_person(ctx: HandlerContext, argument: str) -> list[Reply]:
    name = " ".join(argument.split()).lower()
    if not name:
        return [ctx.usage()]
    scope = ctx.scope()
    team = await kpi.team_of(ctx.session, scope, own_only=not digests.sees_team(ctx.actor))
    person = _match(name, team)
    if not person:
        return [ctx.reply("manager/person_not_found", name=argument.strip())]
    today = ctx.local_now().date()
    found = await digests.build(
        ctx.session, scope, period=Period.WEEK, day=today, tz=ctx.tz, people=person
    )
    parts = digests.sections(found, period=Period.WEEK, tz=ctx.tz, who=person[0][1])
    if not parts:
        title = f"{digests.title_of(found, Period.WEEK)}｜{person[0][1]}"
        return [ctx.reply("manager/digest_empty", title=title)]
    return [MarkdownReply(ctx.user_id, digests.markdown(parts))]
