"""What managers and admins read about service: the tickets export and the digest figures."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_store import tickets
from crm_store.io import exporter
from tests.store.test_tickets import NOW, TZ, _open, _org, _scope


async def _kw(session: AsyncSession, key: str, at: Any = NOW) -> dict[str, Any]:
    return {"scope": await _scope(session, "kf1"), "source_key": key, "now": at, "tz": TZ}


async def test_tickets_export_speaks_every_status_and_the_service_fields(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    later = NOW + timedelta(days=10)
    async with sessions.begin() as session:
        await _org(session)
        waiting = await _open(session, "kf1", "rep1", "k-wait", "等开票信息")
        await tickets.wait(session, ticket_id=waiting.id, **await _kw(session, "w"))
        done = await _open(session, "kf1", "rep2", "k-done", "退款没到账")
        await tickets.resolve(session, ticket_id=done.id, text="已退款", **await _kw(session, "r"))
        await tickets.rate(
            session, ticket_id=done.id, score=4, remark="还行", **await _kw(session, "s")
        )
        dup = await _open(session, "kf1", "rep1", "k-dup", "同一个问题")
        await tickets.merge(
            session, ticket_id=dup.id, into_id=waiting.id, **await _kw(session, "m")
        )
        late = await _open(session, "kf1", "rep1", "k-late", "打印机卡纸")
    target = tmp_path / "tickets.csv"
    async with sessions() as session:
        assert await exporter.export(session, kind="tickets", path=target, tz=TZ, now=later) == 4
    with target.open(encoding="utf-8-sig") as handle:
        rows = {r["编号"]: r for r in csv.DictReader(handle)}
    assert list(rows[waiting.number]) == list(exporter.TICKET_HEADERS)
    assert rows[waiting.number]["状态"] == "等待客户"
    assert rows[waiting.number]["SLA超时"] == "否"  # paused clocks are not late
    assert rows[dup.number]["状态"] == "已合并" and rows[dup.number]["合并到"] == waiting.number
    resolved = rows[done.number]
    fields = ("状态", "处理结果", "满意度", "满意度备注")
    assert [resolved[f] for f in fields] == ["已解决", "已退款", "4", "还行"]
    assert resolved["处理人"] == done.assignee_id and resolved["优先级"] == "P3"
    assert resolved["分类"] == "故障" and resolved["SLA超时"] == "否"
    assert rows[late.number]["SLA超时"] == "是"  # still running ten days on
    assert rows[late.number]["状态"] == "待处理" and rows[late.number]["SLA到期"]


async def test_service_kpis_for_a_period_in_two_queries(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hour = timedelta(hours=1)
    async with sessions.begin() as session:
        await _org(session)
        first = await _open(session, "kf1", "rep1", "a", "登录不了")
        second = await _open(session, "kf1", "rep2", "b", "发票")
        third = await _open(session, "kf1", "rep1", "c", "打印机")
        await tickets.merge(
            session, ticket_id=third.id, into_id=second.id, **await _kw(session, "m")
        )
        await tickets.reply(session, ticket_id=first.id, text="在查", **await _kw(session, "r1"))
        await tickets.reply(
            session, ticket_id=second.id, text="好的", **await _kw(session, "r2", NOW + 3 * hour)
        )
        for t, key, score in ((first, "x1", 5), (second, "x2", 2)):
            await tickets.resolve(
                session, ticket_id=t.id, text="好了", **await _kw(session, key, NOW + 4 * hour)
            )
            await tickets.rate(
                session, ticket_id=t.id, score=score, remark="", **await _kw(session, key + "s")
            )
        late = await _open(session, "kf2", "rep1", "d", "还是登录不了")
    async with sessions() as session:
        until = NOW + timedelta(days=10)
        kpis = await tickets.service_kpis(
            session, await _scope(session, "boss"), since=NOW, until=until
        )
        assert kpis == tickets.ServiceKpis(
            opened=3, resolved=2, overdue=1, breached=1,
            median_first_response_seconds=1.5 * 3600, first_responses=2,
            mean_satisfaction=3.5, rated=2,
        )  # fmt: skip
        rep2 = await tickets.service_kpis(
            session, await _scope(session, "rep2"), since=NOW, until=until
        )
        assert (rep2.opened, rep2.resolved, rep2.overdue, rep2.mean_satisfaction) == (1, 1, 0, 2)
        empty = await tickets.service_kpis(
            session, await _scope(session, "boss"), since=until, until=until + hour
        )
        assert empty == tickets.ServiceKpis(0, 0, 1, 0, None, 0, None, 0)
    assert late.status == "open"
