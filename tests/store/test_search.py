"""CustomerSearch against the database: scope before ranking, freshness across processes."""

from __future__ import annotations

from crm_store import customers
from crm_store.scope import load_actor
from crm_store.search import CustomerSearch
from tests.store.conftest import CUSTOMERS, Org


async def _names(search: CustomerSearch, org: Org, userid: str, query: str) -> list[str]:
    async with org.sessions() as session:
        scope = await org.scope(session, userid)
        return [f.customer.name for f in await search.search(session, scope=scope, query=query)]


async def test_a_rep_finds_only_what_they_may_see(org: Org) -> None:
    search = CustomerSearch(refresh_seconds=0, clock=org.clock)
    assert "上海张记贸易有限公司" in await _names(search, org, "zhangsan", "张记")
    assert await _names(search, org, "qianqi", "张记") == []
    assert "上海张记贸易有限公司" in await _names(search, org, "wangjl", "zhangji")
    # The public pool is visible to every rep.
    assert "公海无主有限公司" in await _names(search, org, "qianqi", "公海无主")


async def test_service_staff_find_every_customer_card(org: Org) -> None:
    search = CustomerSearch(refresh_seconds=0, clock=org.clock)
    for _owner, name in CUSTOMERS.values():
        assert name in await _names(search, org, "zhoujiu", name)


async def test_suggestions_respect_scope_too(org: Org) -> None:
    search = CustomerSearch(refresh_seconds=0, clock=org.clock)
    async with org.sessions() as session:
        scope = await org.scope(session, "qianqi")
        near = await search.search(session, scope=scope, query="张记毛易", suggest=True)
    assert all(f.customer.name != "上海张记贸易有限公司" for f in near)


async def test_a_customer_created_elsewhere_is_found_after_a_refresh(org: Org) -> None:
    """Two processes, two indexes: the second sees the first one's new customer."""
    mine, theirs = (
        CustomerSearch(refresh_seconds=0, clock=org.clock),
        CustomerSearch(refresh_seconds=0, clock=org.clock),
    )
    assert await _names(theirs, org, "wushi", "新来的") == []
    async with org.sessions.begin() as session:
        admin = await load_actor(session, "wushi")
        assert admin is not None
        created = await customers.create_customer(
            session, actor=admin, name="新来的科技有限公司", now=org.clock.now(), owner_id="wushi"
        )
    mine.note(created)
    assert "新来的科技有限公司" in await _names(theirs, org, "wushi", "新来的")


async def test_an_owner_change_moves_the_customer_out_of_the_old_owners_results(
    org: Org,
) -> None:
    search = CustomerSearch(refresh_seconds=0, clock=org.clock)
    assert "上海张记贸易有限公司" in await _names(search, org, "zhangsan", "张记")
    org.clock.advance(seconds=5)
    async with org.sessions.begin() as session:
        await customers.handover(
            session, from_userid="zhangsan", to_userid="qianqi", by="wushi", now=org.clock.now()
        )
    assert await _names(search, org, "zhangsan", "张记") == []
    assert "上海张记贸易有限公司" in await _names(search, org, "qianqi", "张记")


async def test_refresh_reads_through_a_burst_of_changes(org: Org, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An import touches many rows at once: the refresh pages to the end, not one page forever."""
    import crm_store.search.service as search_module

    monkeypatch.setattr(search_module, "_PAGE", 3)
    search = CustomerSearch(refresh_seconds=0, clock=org.clock)
    assert await _names(search, org, "wushi", "批量") == []
    async with org.sessions.begin() as session:
        admin = await load_actor(session, "wushi")
        assert admin is not None
        for i in range(10):
            await customers.create_customer(
                session,
                actor=admin,
                name=f"批量导入{i}号有限公司",
                now=org.clock.now(),
                owner_id="wushi",
            )
    org.clock.advance(seconds=1)
    async with org.sessions.begin() as session:
        await customers.create_customer(
            session,
            actor=admin,
            name="最后一家贸易有限公司",
            now=org.clock.now(),
            owner_id="wushi",
        )
    assert "最后一家贸易有限公司" in await _names(search, org, "wushi", "最后一家")
    assert len(await _names(search, org, "wushi", "批量导入")) == 5  # the search limit


async def test_a_long_transactions_rows_are_caught_by_reconciliation(
    org: Org, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """An import stamps its rows when it starts and commits much later, behind the look-back."""
    import crm_store.search.service as search_module

    search = CustomerSearch(refresh_seconds=0, clock=org.clock)
    assert await _names(search, org, "wushi", "迟到") == []
    stamped = org.clock.now()
    org.clock.advance(minutes=5)
    assert await _names(search, org, "wushi", "迟到") == []  # the index has read past `stamped`
    async with org.sessions.begin() as session:
        admin = await load_actor(session, "wushi")
        assert admin is not None
        await customers.create_customer(
            session, actor=admin, name="迟到的导入有限公司", now=stamped, owner_id="wushi"
        )
    assert await _names(search, org, "wushi", "迟到") == []  # invisible to the look-back
    monkeypatch.setattr(search_module, "RECONCILE_SECONDS", 0.0)
    assert "迟到的导入有限公司" in await _names(search, org, "wushi", "迟到")


async def test_phones_and_contacts_find_their_customer_under_scope(org: Org) -> None:
    """Contacts added later (another process) are indexed with their customer."""
    from crm_store import contacts

    search = CustomerSearch(refresh_seconds=0, clock=org.clock)
    assert await _names(search, org, "zhangsan", "王建国") == []
    org.clock.advance(seconds=2)
    async with org.sessions.begin() as session:
        await contacts.add_contact(
            session,
            actor_id="zhangsan",
            customer_id=org.ids["c_zhang"],
            name="王建国",
            phone="139-1234-5678",
            now=org.clock.now(),
        )
    async with org.sessions() as session:
        scope = await org.scope(session, "zhangsan")
        found = await search.search(session, scope=scope, query="王建国")
        assert [(f.customer.name, f.hit.kind) for f in found] == [
            ("上海张记贸易有限公司", "contact")
        ]
        by_phone = await search.search(session, scope=scope, query="+86 139 1234 5678")
        assert [(f.customer.id, f.hit.kind) for f in by_phone] == [(org.ids["c_zhang"], "phone")]
    assert await _names(search, org, "qianqi", "王建国") == []  # not in 钱七's scope
    assert await _names(search, org, "qianqi", "13912345678") == []
    assert await _names(search, org, "zhoujiu", "13912345678") == ["上海张记贸易有限公司"]


async def test_a_share_lets_the_colleague_find_the_customer(org: Org) -> None:
    search = CustomerSearch(refresh_seconds=0, clock=org.clock)
    assert await _names(search, org, "qianqi", "有效共享") == ["有效共享有限公司"]
    assert await _names(search, org, "qianqi", "过期共享") == []  # the share has ended
    assert await _names(search, org, "zhangsan", "过期共享") == ["过期共享有限公司"]  # own
    assert await _names(search, org, "zhangsan", "有效共享") == []
