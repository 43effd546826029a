"""The admin commands end to end on a migrated SQLite file: import, export, roles, staff."""

from __future__ import annotations

import asyncio
import csv
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from bot.cli.main import app
from bot.simulator import WeComSimulator
from crm_store import staff
from crm_store.clock import FakeClock
from crm_store.config_data import get_role_scopes
from crm_store.migrate import upgrade
from crm_store.models import Customer, ScopeLevel, Staff
from crm_store.session import create_engine, session_factory
from tests.sim.conftest import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN, populate


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A migrated SQLite file with two sales reps (the CLI runs its own event loop)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    now = FakeClock().now()

    async def seed() -> None:
        engine = create_engine(url)
        async with session_factory(engine).begin() as session:
            await staff.upsert_department(
                session, department_id=1, name="销售部", parent_id=None, now=now
            )
            for userid, name in (("zhangsan", "张三"), ("lisi", "李四")):
                await staff.upsert_staff(
                    session, userid=userid, name=name, department_ids=[1], now=now
                )
        await engine.dispose()

    asyncio.run(seed())
    return url


def query(url: str, statement: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(url)
        async with session_factory(engine)() as session:
            result = await session.scalar(statement)
        await engine.dispose()
        return result

    return asyncio.run(run())


def wecrm(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"WECRM_DATABASE_URL": url})


def write_csv(path: Path, rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


CUSTOMERS = [
    ["客户名称", "负责人", "电话"],
    ["杭州星辰科技有限公司", "张三", "13800138000"],
    ["星辰科技（杭州）有限公司", "李四", ""],
    ["宁波海鸥电子有限公司", "zhangsan", "12345"],
    ["上海远航物流有限公司", "lisi", ""],
]


def customer_count(url: str) -> int:
    return int(query(url, select(func.count()).select_from(Customer)))


def test_import_dry_run_prints_a_summary_and_writes_nothing(db_url: str, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "customers.csv", CUSTOMERS)
    result = wecrm(db_url, "import", "customers", str(source), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "试运行" in result.output and "dry run" in result.output
    assert "would insert: 2" in result.output
    assert "duplicates (skipped): 1" in result.output
    assert "bad rows (skipped): 1" in result.output
    report = tmp_path / "customers-report.csv"
    assert f"report: {report}" in result.output
    lines = report.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 3 and "重复" in lines[1] and "电话格式不正确" in lines[2]
    assert customer_count(db_url) == 0


def test_import_then_export(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_csv(tmp_path / "customers.csv", CUSTOMERS)
    report = tmp_path / "out" / "problems.csv"
    report.parent.mkdir()
    result = wecrm(
        db_url, "import", "customers", str(source), "--report", str(report), "--as", "lisi"
    )
    assert result.exit_code == 0, result.output
    assert "inserted: 2" in result.output and report.exists()
    assert customer_count(db_url) == 2

    target = tmp_path / "all.xlsx"
    result = wecrm(db_url, "export", "customers", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert "exported 2 rows" in result.output and target.exists()

    # Without --out: <kind>-YYYYmmdd.csv in the current directory, headers import reads.
    monkeypatch.chdir(tmp_path)
    result = wecrm(db_url, "export", "customers")
    assert result.exit_code == 0, result.output
    [written] = tmp_path.glob("customers-2*.csv")
    header = written.read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.startswith("名称,负责人,行业,城市,电话,联系人")

    again = wecrm(db_url, "import", "customers", str(written))
    assert again.exit_code == 0 and "inserted: 0" in again.output


def test_import_refuses_bad_input(db_url: str, tmp_path: Path) -> None:
    missing = wecrm(db_url, "import", "customers", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "no such file" in missing.output
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0")
    assert wecrm(db_url, "import", "customers", str(xls)).exit_code == 2
    no_name = write_csv(tmp_path / "x.csv", [["负责人"], ["张三"]])
    result = wecrm(db_url, "import", "customers", str(no_name))
    assert result.exit_code == 2 and "no name column" in result.output
    who = write_csv(tmp_path / "y.csv", CUSTOMERS)
    result = wecrm(db_url, "import", "customers", str(who), "--as", "nobody")
    assert result.exit_code == 2 and "unknown userid" in result.output
    assert wecrm(db_url, "import", "contracts", str(who)).exit_code == 2
    assert customer_count(db_url) == 0


def test_staff_set_role_and_list(db_url: str) -> None:
    result = wecrm(db_url, "staff", "set-role", "zhangsan", "manager")
    assert result.exit_code == 0, result.output
    assert query(db_url, select(Staff.role).where(Staff.userid == "zhangsan")) == "manager"

    listing = wecrm(db_url, "staff", "list")
    assert listing.exit_code == 0
    assert "zhangsan\t张三\tmanager\t在职 active\t销售部" in listing.output
    assert "lisi\t李四\trep" in listing.output

    bad_role = wecrm(db_url, "staff", "set-role", "zhangsan", "boss")
    assert bad_role.exit_code == 2 and "unknown role" in bad_role.output
    nobody = wecrm(db_url, "staff", "set-role", "nobody", "admin")
    assert nobody.exit_code == 2 and "unknown userid" in nobody.output


def test_roles_show_and_set(db_url: str) -> None:
    shown = wecrm(db_url, "roles")
    assert shown.exit_code == 0, shown.output
    assert "rep（销售）\tSELF 本人" in shown.output
    assert "manager（主管/经理）\tDEPARTMENT_TREE" in shown.output
    assert "default role for new people: rep" in shown.output

    assert wecrm(db_url, "roles", "set", "rep", "本部门").exit_code == 0
    custom = wecrm(db_url, "roles", "set", "service", "CUSTOM", "--departments", "1,2")
    assert custom.exit_code == 0, custom.output

    async def scopes() -> dict[str, Any]:
        engine = create_engine(db_url)
        async with session_factory(engine)() as session:
            found = await get_role_scopes(session)
        await engine.dispose()
        return found

    stored = asyncio.run(scopes())
    assert stored["rep"].level is ScopeLevel.DEPARTMENT
    assert (stored["service"].level, stored["service"].department_ids) == (
        ScopeLevel.CUSTOM,
        (1, 2),
    )
    assert "CUSTOM 指定部门 [1, 2]" in wecrm(db_url, "roles").output

    no_departments = wecrm(db_url, "roles", "set", "rep", "CUSTOM")
    assert no_departments.exit_code == 2 and "custom scope needs" in no_departments.output
    assert wecrm(db_url, "roles", "set", "rep", "everything").exit_code == 2
    assert wecrm(db_url, "roles", "set", "rep", "ALL", "--departments", "a,b").exit_code == 2
    assert wecrm(db_url, "roles", "default", "service").exit_code == 0
    assert "default role for new people: service" in wecrm(db_url, "roles").output


def test_handover(db_url: str, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", CUSTOMERS)
    assert wecrm(db_url, "import", "customers", str(source)).exit_code == 0
    result = wecrm(db_url, "handover", "zhangsan", "lisi")
    assert result.exit_code == 0, result.output
    assert "handed over 1 customers" in result.output
    owners = query(db_url, select(func.count()).where(Customer.owner_id == "lisi"))
    assert owners == 2
    unknown = wecrm(db_url, "handover", "nobody", "lisi")
    assert unknown.exit_code == 2 and "unknown userid" in unknown.output
    inactive = wecrm(db_url, "handover", "lisi", "ghost")
    assert inactive.exit_code == 2 and "inactive" in inactive.output


def test_unmigrated_database_is_refused_with_the_hint(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    for args in (("staff", "list"), ("roles",), ("export", "customers")):
        result = wecrm(url, *args)
        assert result.exit_code == 2, args
        assert "wecrm db upgrade" in result.output


@pytest.fixture
def wecom_env() -> Iterator[dict[str, str]]:
    """The local WeCom on its own thread and loop, since the CLI runs its own asyncio.run."""
    state: dict[str, Any] = {}
    ready = threading.Event()

    async def serve() -> None:
        sim = WeComSimulator(CORP_ID, SECRET, AGENT_ID, TOKEN, AES_KEY, FakeClock())
        populate(sim)
        state["stop"] = asyncio.Event()
        state["loop"] = asyncio.get_running_loop()
        async with sim.serve() as url:
            state["url"] = url
            ready.set()
            await state["stop"].wait()
        await sim.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_AGENT_ID": str(AGENT_ID),
        "WECOM_SECRET": SECRET,
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_API_BASE": f"{state['url']}/cgi-bin/",
    }
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(10)


def test_sync_directory(db_url: str, wecom_env: dict[str, str]) -> None:
    env = {**wecom_env, "WECRM_DATABASE_URL": db_url}
    result = CliRunner().invoke(app, ["sync-directory"], env=env)
    assert result.exit_code == 0, result.output
    assert "Directory synced" in result.output
    assert "active people: 6" in result.output
    assert "deactivated: 0" in result.output
    assert SECRET not in result.output
    assert query(db_url, select(Staff.role).where(Staff.userid == "wangjl")) == "manager"
    # The seeded 张三 and 李四 are in WeCom too: kept active, moved to WeCom's departments.
    assert query(db_url, select(func.count()).where(Staff.active.is_(True))) == 6


def test_sync_directory_needs_the_wecom_settings(db_url: str) -> None:
    unset: dict[str, str | None] = {
        name: None for name in ("WECOM_CORP_ID", "WECOM_AGENT_ID", "WECOM_SECRET", "WECOM_TOKEN")
    }
    result = CliRunner().invoke(
        app, ["sync-directory"], env={**unset, "WECRM_DATABASE_URL": db_url}
    )
    assert result.exit_code == 2
    assert "WECOM_CORP_ID is missing" in result.output
