"""Configurable CRM data with Chinese defaults: stages, ticket categories, follow-up kinds,
role scopes, pool rules (the SLA policy lives in sla.py).

Each value lives under one key of `crm_settings`; a missing key reads as the default, so a fresh
install works before anyone configures anything. Setters validate and leave an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import audit
from crm_store.models.org import Role, ScopeLevel
from crm_store.models.sales import OpportunityState
from crm_store.models.settings import CrmSetting

KEY_STAGES = "stages"
KEY_TICKET_CATEGORIES = "ticket_categories"
KEY_FOLLOWUP_KINDS = "followup_kinds"
KEY_ROLE_SCOPES = "role_scopes"
KEY_DEFAULT_ROLE = "default_role"
KEY_POOL_RULES = "pool_rules"
MAX_CATEGORY = 32  # tickets.category is String(32)

# Not a role anyone holds: the scope a department leader gets over the departments they lead,
# on top of their role's own scope.
LEADER = "leader"


class ConfigError(ValueError):
    """A setting that would leave the CRM unusable; nothing is stored."""


@dataclass(frozen=True)
class Stage:
    name: str
    probability: int
    outcome: OpportunityState = OpportunityState.OPEN
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class FollowupKind:
    code: str
    label: str
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoleScope:
    level: ScopeLevel
    department_ids: tuple[int, ...] = ()  # only for CUSTOM: these departments and their subtrees


@dataclass(frozen=True)
class PoolRules:
    daily_claim_limit: int = 5
    reclaim_cooldown_days: int = 30


DEFAULT_STAGES: tuple[Stage, ...] = (
    Stage("初步接洽", 10, synonyms=("接洽", "初步沟通", "初次接触", "qualify")),
    Stage("需求确认", 30, synonyms=("需求", "确认需求", "需求分析", "needs")),
    Stage("方案报价", 50, synonyms=("报价", "方案", "出方案", "proposal", "quote")),
    Stage("谈判审核", 70, synonyms=("谈判", "审核", "商务谈判", "negotiation")),
    Stage(
        "赢单",
        100,
        OpportunityState.WON,
        synonyms=("成交", "签了", "签约", "签单", "赢了", "won", "win"),
    ),
    Stage(
        "输单",
        0,
        OpportunityState.LOST,
        synonyms=("丢了", "丢单", "失败", "输了", "黄了", "lost", "lose"),
    ),
)
DEFAULT_TICKET_CATEGORIES: tuple[str, ...] = ("咨询", "投诉", "故障", "退换货", "其他")
DEFAULT_FOLLOWUP_KINDS: tuple[FollowupKind, ...] = (
    FollowupKind(
        "call", "电话", ("打电话", "通话", "致电", "电联", "回电", "来电", "call", "phone")
    ),
    FollowupKind("visit", "拜访", ("上门", "面谈", "见面", "登门", "visit")),
    FollowupKind("wechat", "微信", ("企业微信", "企微", "聊天", "消息", "wechat", "chat")),
    FollowupKind("meeting", "会议", ("开会", "电话会议", "视频会议", "线上会议", "meeting")),
    FollowupKind("other", "其他", ("其它", "other")),
)
DEFAULT_ROLE_SCOPES: dict[str, RoleScope] = {
    Role.REP.value: RoleScope(ScopeLevel.SELF),
    # Service staff also read every card, contact, follow-up and ticket (see scope.py);
    # this level decides whose opportunity amounts, tasks and leads they see.
    Role.SERVICE.value: RoleScope(ScopeLevel.SELF),
    Role.MANAGER.value: RoleScope(ScopeLevel.DEPARTMENT_TREE),
    Role.ADMIN.value: RoleScope(ScopeLevel.ALL),
    LEADER: RoleScope(ScopeLevel.DEPARTMENT_TREE),
}
DEFAULT_ROLE = Role.REP.value
DEFAULT_POOL_RULES = PoolRules()


async def _get(session: AsyncSession, key: str) -> Any | None:
    row = await session.get(CrmSetting, key)
    return None if row is None else row.value


async def _put(
    session: AsyncSession,
    key: str,
    value: Any,
    *,
    by: str,
    now: datetime,
    source_key: str | None,
) -> None:
    row = await session.get(CrmSetting, key)
    before = None if row is None else {"value": row.value}
    if row is None:
        session.add(CrmSetting(key=key, value=value, updated_at=now, updated_by=by))
    else:
        row.value = value
        row.updated_at = now
        row.updated_by = by
    await audit.record(
        session,
        actor_id=by,
        action="settings.set",
        entity="crm_settings",
        entity_id=key,
        before=before,
        after={"value": value},
        source_key=source_key,
        now=now,
    )


# Stages -------------------------------------------------------------------------------------


def _stage_to_json(stage: Stage) -> dict[str, Any]:
    return {
        "name": stage.name,
        "probability": stage.probability,
        "outcome": stage.outcome.value,
        "synonyms": list(stage.synonyms),
    }


def _stage_from_json(data: dict[str, Any]) -> Stage:
    return Stage(
        name=str(data["name"]),
        probability=int(data["probability"]),
        outcome=OpportunityState(data.get("outcome", OpportunityState.OPEN.value)),
        synonyms=tuple(str(s) for s in data.get("synonyms", ())),
    )


def _validate_stages(stages: list[Stage]) -> None:
    words: dict[str, str] = {}
    for stage in stages:
        if not stage.name.strip():
            raise ConfigError("a stage needs a name")
        if not 0 <= stage.probability <= 100:
            raise ConfigError(f"stage {stage.name}: probability must be 0–100")
        for word in (stage.name, *stage.synonyms):
            key = _fold(word)
            if key in words and words[key] != stage.name:
                raise ConfigError(f"{word!r} names both {words[key]} and {stage.name}")
            words[key] = stage.name
    outcomes = [stage.outcome for stage in stages]
    for outcome in OpportunityState:
        if outcome not in outcomes:
            raise ConfigError(f"the stages need at least one {outcome.value!r} stage")


async def get_stages(session: AsyncSession) -> list[Stage]:
    """The pipeline in order, open stages first by convention; the defaults when unset."""
    stored = await _get(session, KEY_STAGES)
    if stored is None:
        return list(DEFAULT_STAGES)
    return [_stage_from_json(item) for item in stored]


async def set_stages(
    session: AsyncSession,
    *,
    stages: list[Stage],
    by: str,
    now: datetime,
    source_key: str | None = None,
) -> None:
    _validate_stages(stages)
    await _put(
        session,
        KEY_STAGES,
        [_stage_to_json(s) for s in stages],
        by=by,
        now=now,
        source_key=source_key,
    )


def _fold(word: str) -> str:
    return word.strip().casefold()


def resolve_stage(stages: list[Stage], text: str) -> Stage | None:
    """The stage a person means by a name or a synonym ("签了" → 赢单); None if unknown."""
    wanted = _fold(text)
    for stage in stages:
        if wanted == _fold(stage.name) or wanted in {_fold(s) for s in stage.synonyms}:
            return stage
    return None


# Ticket categories, follow-up kinds ----------------------------------------------------------


async def get_ticket_categories(session: AsyncSession) -> list[str]:
    stored = await _get(session, KEY_TICKET_CATEGORIES)
    return list(DEFAULT_TICKET_CATEGORIES) if stored is None else [str(c) for c in stored]


async def set_ticket_categories(
    session: AsyncSession,
    *,
    categories: list[str],
    by: str,
    now: datetime,
    source_key: str | None = None,
) -> None:
    cleaned = [c.strip() for c in categories]
    if not cleaned or any(not c for c in cleaned) or len(set(cleaned)) != len(cleaned):
        raise ConfigError("ticket categories must be non-empty and distinct")
    if any(len(c) > MAX_CATEGORY for c in cleaned):
        raise ConfigError(f"a ticket category has at most {MAX_CATEGORY} characters")
    await _put(session, KEY_TICKET_CATEGORIES, cleaned, by=by, now=now, source_key=source_key)


async def get_followup_kinds(session: AsyncSession) -> list[FollowupKind]:
    stored = await _get(session, KEY_FOLLOWUP_KINDS)
    if stored is None:
        return list(DEFAULT_FOLLOWUP_KINDS)
    return [
        FollowupKind(str(k["code"]), str(k["label"]), tuple(str(s) for s in k.get("synonyms", ())))
        for k in stored
    ]


async def set_followup_kinds(
    session: AsyncSession,
    *,
    kinds: list[FollowupKind],
    by: str,
    now: datetime,
    source_key: str | None = None,
) -> None:
    codes = [k.code for k in kinds]
    if not kinds or len(set(codes)) != len(codes) or any(not c.strip() for c in codes):
        raise ConfigError("follow-up kinds need distinct, non-empty codes")
    value = [{"code": k.code, "label": k.label, "synonyms": list(k.synonyms)} for k in kinds]
    await _put(session, KEY_FOLLOWUP_KINDS, value, by=by, now=now, source_key=source_key)


def resolve_followup_kind(kinds: list[FollowupKind], text: str) -> FollowupKind | None:
    """The kind a person means ("打电话" → call); None if unknown."""
    wanted = _fold(text)
    for kind in kinds:
        if wanted in {_fold(kind.code), _fold(kind.label), *(_fold(s) for s in kind.synonyms)}:
            return kind
    return None


# Role scopes and the default role -----------------------------------------------------------


def _scope_roles() -> set[str]:
    return {r.value for r in Role} | {LEADER}


async def get_role_scopes(session: AsyncSession) -> dict[str, RoleScope]:
    """The data scope of every role, plus LEADER for department leaders; defaults when unset."""
    scopes = dict(DEFAULT_ROLE_SCOPES)
    stored = await _get(session, KEY_ROLE_SCOPES)
    if stored is not None:
        for role, data in stored.items():
            scopes[str(role)] = RoleScope(
                ScopeLevel(data["level"]), tuple(int(d) for d in data.get("department_ids", ()))
            )
    return scopes


async def set_role_scope(
    session: AsyncSession,
    *,
    role: str,
    level: ScopeLevel,
    department_ids: tuple[int, ...] | list[int] = (),
    by: str,
    now: datetime,
    source_key: str | None = None,
) -> None:
    """Change one role's scope; it applies at the next load_actor, i.e. the next message."""
    if role not in _scope_roles():
        raise ConfigError(f"unknown role {role!r}")
    level = ScopeLevel(level)
    if level is ScopeLevel.CUSTOM and not department_ids:
        raise ConfigError("a custom scope needs at least one department")
    if level is not ScopeLevel.CUSTOM and department_ids:
        raise ConfigError("departments are given only with a custom scope")
    stored = dict(await _get(session, KEY_ROLE_SCOPES) or {})
    stored[role] = {
        "level": level.value,
        "department_ids": sorted({int(d) for d in department_ids}),
    }
    await _put(session, KEY_ROLE_SCOPES, stored, by=by, now=now, source_key=source_key)


async def get_default_role(session: AsyncSession) -> str:
    """The role a person gets when the directory sync first sees them."""
    stored = await _get(session, KEY_DEFAULT_ROLE)
    return DEFAULT_ROLE if stored is None else str(stored)


async def set_default_role(
    session: AsyncSession, *, role: str, by: str, now: datetime, source_key: str | None = None
) -> None:
    if role not in {r.value for r in Role}:
        raise ConfigError(f"unknown role {role!r}")
    await _put(session, KEY_DEFAULT_ROLE, role, by=by, now=now, source_key=source_key)


# Public pool --------------------------------------------------------------------------------


async def get_pool_rules(session: AsyncSession) -> PoolRules:
    stored = await _get(session, KEY_POOL_RULES)
    if stored is None:
        return DEFAULT_POOL_RULES
    return PoolRules(
        daily_claim_limit=int(stored["daily_claim_limit"]),
        reclaim_cooldown_days=int(stored["reclaim_cooldown_days"]),
    )


async def set_pool_rules(
    session: AsyncSession,
    *,
    rules: PoolRules,
    by: str,
    now: datetime,
    source_key: str | None = None,
) -> None:
    if rules.daily_claim_limit < 0 or rules.reclaim_cooldown_days < 0:
        raise ConfigError("pool limits cannot be negative")
    value = {
        "daily_claim_limit": rules.daily_claim_limit,
        "reclaim_cooldown_days": rules.reclaim_cooldown_days,
    }
    await _put(session, KEY_POOL_RULES, value, by=by, now=now, source_key=source_key)


# Collision (撞单) notices -------------------------------------------------------------------

KEY_COLLISION_NOTICE = "collision_notice"


@dataclass(frozen=True)
class CollisionNotice:
    """Who hears about it when a rep's new customer or follow-up touches another rep's customer."""

    owner: bool = True
    leader: bool = True


async def get_collision_notice(session: AsyncSession) -> CollisionNotice:
    stored = await _get(session, KEY_COLLISION_NOTICE)
    if stored is None:
        return CollisionNotice()
    return CollisionNotice(owner=bool(stored["owner"]), leader=bool(stored["leader"]))


async def set_collision_notice(
    session: AsyncSession,
    *,
    notice: CollisionNotice,
    by: str,
    now: datetime,
    source_key: str | None = None,
) -> None:
    value = {"owner": notice.owner, "leader": notice.leader}
    await _put(session, KEY_COLLISION_NOTICE, value, by=by, now=now, source_key=source_key)
