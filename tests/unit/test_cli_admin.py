"""The admin commands end to end on a migrated SQLite file: import, export, roles, staff.

They run with no WECOM_* variable set, from a working folder that is not the database's.
"""

from __future__ import annotations

import asyncio
import csv
import sqlite3
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
from crm_store.models import Customer, Followup, ScopeLevel, Staff
from crm_store.session import create_engine, session_factory
from tests.sim.conftest import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN, populate

WECOM_VARIABLES = (
    "WECOM_CORP_ID",
    "WECOM_AGENT_ID",
    "WECOM_SECRET",
    "WECOM_TOKEN",
    "WECOM_AES_KEY",
    "WECOM_API_BASE",
)
NO_WECOM: dict[str, str | None] = dict.fromkeys(WECOM_VARIABLES)


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work from a folder of our own (no stray .env) with the data folder inside tmp_path."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in (*WECOM_VARIABLES, "WECRM_DATABASE_URL", "WECRM_HOME", "WECRM_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return work


def seed_staff(url: str) -> None:
    """Two sales reps in one department (the CLI runs its own event loop, so do we)."""
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


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A migrated SQLite file with two sales reps."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    seed_staff(url)
    return url


def query(url: str, statement: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(url)
        async with session_factory(engine)() as session:
            result = await session.scalar(statement)
        await engine.dispose()
        return result

    return asyncio.run(run())


def wecrm(url: str | None, *args: str, **env: str | None) -> Result:
    """Run `wecrm ARGS` with no WeCom settings at all; `url` None leaves the default database."""
    return CliRunner().invoke(app, list(args), env={**NO_WECOM, "WECRM_DATABASE_URL": url, **env})


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
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()  # a file that exists, with no schema in it
    url = f"sqlite:///{path}"
    for args in (("staff", "list"), ("roles",), ("export", "customers")):
        result = wecrm(url, *args)
        assert result.exit_code == 2, args
        assert "schema is empty" in result.output and "wecrm db upgrade" in result.output


def admin_commands(folder: Path) -> list[list[str]]:
    """Every admin command that opens the database, with arguments that make it succeed."""
    source = write_csv(folder / "customers.csv", CUSTOMERS)
    return [
        ["import", "customers", str(source), "--dry-run"],
        ["import", "customers", str(source)],
        ["export", "customers", "--out", str(folder / "out.csv")],
        ["handover", "zhangsan", "lisi"],
        ["staff", "list"],
        ["staff", "set-role", "zhangsan", "manager"],
        ["roles"],
        ["roles", "set", "rep", "本部门"],
        ["roles", "default", "rep"],
        ["config", "show"],
        ["config", "pool", "--daily-limit", "3", "--cooldown-days", "7"],
        ["config", "collision", "--no-leader"],
        ["db", "current"],
    ]


def test_every_admin_command_finds_the_default_database_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "crm-home"
    database = home / "wecrm.db"
    upgraded = wecrm(None, "db", "upgrade", WECRM_HOME=str(home))
    assert upgraded.exit_code == 0, upgraded.output
    assert f"数据库 (database): {database} (from WECRM_HOME)" in upgraded.stderr
    seed_staff(f"sqlite:///{database}")
    commands = admin_commands(tmp_path)
    for number, args in enumerate(commands):
        folder = tmp_path / f"somewhere-{number}"
        folder.mkdir()
        monkeypatch.chdir(folder)
        result = wecrm(None, *args, WECRM_HOME=str(home))
        assert result.exit_code == 0, (args, result.output)
        assert f"数据库 (database): {database} (from WECRM_HOME)\n" in result.stderr, args
        assert "(database):" not in result.stdout, args  # stdout stays the command's own
        assert list(folder.iterdir()) == [], args  # no stray database where we stood
    assert customer_count(f"sqlite:///{database}") == 2


def test_without_any_setting_the_database_is_the_platform_data_folder(tmp_path: Path) -> None:
    database = tmp_path / "xdg" / "wecrm" / "wecrm.db"  # $XDG_DATA_HOME/wecrm on Linux
    missing = wecrm(None, "staff", "list")
    assert missing.exit_code == 2
    assert f"数据库 (database): {database} (default)" in missing.stderr
    assert f"no database): {database} (the default location;" in missing.stderr
    assert not database.parent.exists()
    assert wecrm(None, "db", "upgrade").exit_code == 0
    assert database.is_file()
    listed = wecrm(None, "staff", "list")
    assert listed.exit_code == 0 and "no staff yet" in listed.stdout


def test_a_relative_database_url_is_shown_resolved(elsewhere: Path) -> None:
    result = wecrm("sqlite:///data/crm.db", "db", "upgrade")
    assert result.exit_code == 0, result.output
    database = elsewhere / "data" / "crm.db"
    assert f"数据库 (database): {database} (from WECRM_DATABASE_URL)" in result.stderr
    assert database.is_file()


def test_a_missing_database_is_named_and_not_created(tmp_path: Path) -> None:
    database = tmp_path / "nowhere" / "crm.db"
    url = f"sqlite:///{database}"
    wecom = {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_AGENT_ID": str(AGENT_ID),
        "WECOM_SECRET": SECRET,
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_API_BASE": "http://127.0.0.1:9/cgi-bin/",
    }
    runs: list[tuple[list[str], dict[str, str]]] = [(a, {}) for a in admin_commands(tmp_path)]
    runs += [(["sync-directory"], wecom), (["serve", "--port", "0"], wecom)]
    for args, env in runs:
        result = wecrm(url, *args, **env)
        assert result.exit_code == 2, (args, result.output)
        assert f"数据库不存在 (no database): {database}" in result.stderr, args
        assert "chosen by WECRM_DATABASE_URL" in result.stderr, args
        assert "wecrm db upgrade" in result.stderr, args
        assert SECRET not in result.output, args
        assert not database.parent.exists(), args
    created = wecrm(url, "db", "upgrade")
    assert created.exit_code == 0, created.output
    assert database.is_file()


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
    assert f"数据库 (database): {db_url.removeprefix('sqlite:///')}" in result.stderr
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


def test_the_company_time_zone_comes_from_the_settings(db_url: str, tmp_path: Path) -> None:
    customers = write_csv(tmp_path / "c.csv", CUSTOMERS)
    assert wecrm(db_url, "import", "customers", str(customers)).exit_code == 0
    rows = [["客户", "负责人", "内容", "跟进时间"]]
    for customer, zone in (("杭州星辰科技有限公司", "UTC"), ("上海远航物流有限公司", None)):
        rows = [rows[0], [customer, "zhangsan", "电话沟通", "2024-05-01 09:00"]]
        source = write_csv(tmp_path / f"f-{zone}.csv", rows)
        result = wecrm(db_url, "import", "followups", str(source), WECRM_TIMEZONE=zone)
        assert result.exit_code == 0 and "inserted: 1" in result.output, result.output
    earliest = query(db_url, select(func.min(Followup.created_at)))
    latest = query(db_url, select(func.max(Followup.created_at)))
    # 09:00 in the default Asia/Shanghai is 01:00 UTC; 09:00 in UTC is 09:00.
    assert (str(earliest)[:16], str(latest)[:16]) == ("2024-05-01 01:00", "2024-05-01 09:00")
    bad = wecrm(db_url, "export", "customers", WECRM_TIMEZONE="Mars/Base")
    assert bad.exit_code == 2 and "WECRM_TIMEZONE is not a known IANA time zone" in bad.output
