"""Admin commands: directory sync, import/export, handover, roles and staff.

Each command opens its own engine, does its work in one transaction and commits once at the
end, so a failed command leaves the database as it was. Only sync-directory needs the WeCom
credentials; the rest load just the database and company settings (bot.settings).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import select
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
from bot.settings import CompanySettings, DatabaseSettings, WeComSettings
from crm_store import config_data, customers, staff
from crm_store.io import exporter, importer
from crm_store.models.org import Department, Role, ScopeLevel, Staff, StaffDepartment
from crm_store.session import create_engine, session_factory

LEVEL_LABELS: dict[ScopeLevel, str] = {
    ScopeLevel.SELF: "本人",
    ScopeLevel.SELF_AND_SUBORDINATES: "本人及下属",
    ScopeLevel.DEPARTMENT: "本部门",
    ScopeLevel.DEPARTMENT_TREE: "本部门及下属部门",
    ScopeLevel.ALL: "全部",
    ScopeLevel.CUSTOM: "指定部门",
}
LEVEL_WORDS: dict[str, ScopeLevel] = {
    **{level.value.casefold(): level for level in ScopeLevel},
    **{label: level for level, label in LEVEL_LABELS.items()},
    "本部门及下属": ScopeLevel.DEPARTMENT_TREE,
    "自定义": ScopeLevel.CUSTOM,
    "own": ScopeLevel.SELF,
    "subordinates": ScopeLevel.SELF_AND_SUBORDINATES,
    "department": ScopeLevel.DEPARTMENT,
    "subtree": ScopeLevel.DEPARTMENT_TREE,
}
ROLE_LABELS = {
    Role.REP.value: "销售",
    Role.SERVICE.value: "客服",
    Role.MANAGER.value: "主管/经理",
    Role.ADMIN.value: "管理员",
    config_data.LEADER: "部门负责人，用于其负责的部门",
}


class ImportKind(StrEnum):
    CUSTOMERS = "customers"
    LEADS = "leads"
    FOLLOWUPS = "followups"


class ExportKind(StrEnum):
    CUSTOMERS = "customers"
    FOLLOWUPS = "followups"
    TICKETS = "tickets"
    OPPORTUNITIES = "opportunities"


KIND_LABELS = {"customers": "客户", "leads": "线索", "followups": "跟进记录"}
IMPORTERS: dict[ImportKind, Callable[..., Awaitable[importer.ImportReport]]] = {
    ImportKind.CUSTOMERS: importer.import_customers,
    ImportKind.LEADS: importer.import_leads,
    ImportKind.FOLLOWUPS: importer.import_followups,
}


def _company_tz() -> ZoneInfo:
    """The company's time zone, from WECRM_TIMEZONE like everywhere else."""
    return load_or_exit(CompanySettings).tz


# sync-directory -----------------------------------------------------------------------------


def sync_directory_command() -> None:
    """Pull departments and people from WeCom; people who left become inactive."""
    import aiohttp

    from bot.wecom.client import InProcessTokenCache, WeComClient
    from bot.wecom.directory import SyncError, sync_directory
    from crm_store.clock import SystemClock

    database = load_or_exit(DatabaseSettings)
    settings = load_or_exit(WeComSettings)
    url = migrated_database(database)

    async def main() -> None:
        engine = create_engine(url)
        clock = SystemClock()
        try:
            async with aiohttp.ClientSession() as http:
                client = WeComClient(
                    base_url=settings.wecom_api_base,
                    corp_id=settings.wecom_corp_id,
                    secret=settings.wecom_secret.get_secret_value(),
                    agent_id=settings.wecom_agent_id,
                    session=http,
                    token_cache=InProcessTokenCache(clock),
                    clock=clock,
                )
                report = await sync_directory(client, session_factory(engine), now=clock.now())
        except SyncError as exc:
            raise fail(str(exc), code=1) from None
        finally:
            await engine.dispose()
        typer.echo("通讯录同步完成 Directory synced")
        typer.echo(f"  部门 departments: {report.departments}")
        typer.echo(f"  在职成员 active people: {report.people}")
        typer.echo(f"  新增 new: {len(report.new)}  变更 changed: {len(report.changed)}")
        typer.echo(f"  停用 deactivated: {len(report.deactivated)} {_names(report.deactivated)}")
        if report.promoted or report.demoted:
            typer.echo(
                f"  设为主管 made manager: {_names(report.promoted)}  "
                f"取消主管 no longer manager: {_names(report.demoted)}"
            )
        if report.unreadable:
            typer.echo(
                f"  无法读取、保持不变 unreadable, kept as they were: "
                f"{len(report.unreadable)} {_names(report.unreadable)}"
            )
        if report.fallbacks:
            typer.echo(f"  使用备用接口 fallback APIs used: {', '.join(report.fallbacks)}")

    asyncio.run(main())


def _names(userids: list[str], limit: int = 10) -> str:
    if not userids:
        return ""
    shown = ", ".join(userids[:limit])
    return f"({shown}{' …' if len(userids) > limit else ''})"


# import -------------------------------------------------------------------------------------


def import_command(
    kind: Annotated[ImportKind, typer.Argument(help="customers | leads | followups")],
    file: Annotated[Path, typer.Argument(help=".xlsx or .csv (UTF-8 or GBK)")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check everything, write nothing.")
    ] = False,
    report_path: Annotated[
        Path | None,
        typer.Option("--report", help="Where to write duplicates and bad rows (CSV)."),
    ] = None,
    actor: AsOption = CLI_ACTOR,
) -> None:
    """Import customers, leads or follow-ups; duplicates and bad rows go to a report file."""
    if not file.is_file():
        raise fail(f"文件不存在 (no such file): {file}")
    if file.suffix.lower() not in (".xlsx", ".xlsm", ".csv", ".txt"):
        raise fail(f"只支持 .xlsx 和 .csv 文件 (only .xlsx and .csv): {file.name}")
    tz = _company_tz()
    url = migrated_database()
    total = importer.count_rows(file) if sys.stderr.isatty() else None

    async def work(session: AsyncSession) -> importer.ImportReport:
        await check_actor(session, actor)
        from tqdm import tqdm

        import_rows: Callable[..., Awaitable[importer.ImportReport]] = IMPORTERS[kind]
        if kind is ImportKind.FOLLOWUPS:
            import_rows = partial(importer.import_followups, tz=tz)
        with tqdm(
            total=total, unit="行", desc="导入 importing", disable=not sys.stderr.isatty()
        ) as bar:

            def advance(rows: int) -> None:
                bar.update(rows)

            return await import_rows(
                session,
                path=file,
                actor_id=actor,
                now=utc_now(),
                dry_run=dry_run,
                progress=advance,
            )

    try:
        report = run_session(url, work, commit=not dry_run)
    except importer.ImportFileError as exc:
        raise fail(str(exc)) from None
    written: Path | None = None
    if report.duplicates or report.bad_rows:
        written = report_path or file.with_name(f"{file.stem}-report.csv")
        importer.write_report(report, written)
    _print_import_summary(report, file, written)


def _print_import_summary(report: importer.ImportReport, file: Path, written: Path | None) -> None:
    label = KIND_LABELS[report.kind]
    if report.dry_run:
        typer.echo(f"试运行，未写入数据库 (dry run, nothing written): {file.name}")
        typer.echo(f"  将新增{label} would insert: {report.inserted}")
    else:
        typer.echo(f"导入完成 (import finished): {file.name}")
        typer.echo(f"  新增{label} inserted: {report.inserted}")
    typer.echo(f"  共读取 rows read: {report.total_rows}")
    typer.echo(f"  重复未导入 duplicates (skipped): {len(report.duplicates)}")
    typer.echo(f"  错误未导入 bad rows (skipped): {len(report.bad_rows)}")
    if report.unknown_columns:
        typer.echo(f"  未识别的列（已忽略）unknown columns: {', '.join(report.unknown_columns)}")
    if written is not None:
        typer.echo(f"  明细报告 report: {written}")


# export -------------------------------------------------------------------------------------


def export_command(
    kind: Annotated[ExportKind, typer.Argument(help="customers|followups|tickets|opportunities")],
    out: Annotated[Path | None, typer.Option("--out", help="Target .csv or .xlsx file.")] = None,
) -> None:
    """Export records to CSV (UTF-8 with BOM) or Excel, with the headers import reads."""
    tz = _company_tz()
    target = out or Path(f"{kind.value}-{datetime.now(tz):%Y%m%d}.csv")
    if target.suffix.lower() not in (".csv", ".xlsx"):
        raise fail(f"--out 只支持 .csv 或 .xlsx (only .csv or .xlsx): {target.name}")
    if not target.parent.is_dir():
        raise fail(f"目录不存在 (no such directory): {target.parent}")
    url = migrated_database()

    async def work(session: AsyncSession) -> int:
        return await exporter.export(session, kind=kind.value, path=target, tz=tz, now=utc_now())

    count = run_session(url, work, commit=False)
    typer.echo(f"已导出 {count} 行 (exported {count} rows) → {target}")


# handover -----------------------------------------------------------------------------------


def handover_command(
    from_userid: Annotated[str, typer.Argument(metavar="FROM", help="Userid handing over.")],
    to_userid: Annotated[str, typer.Argument(metavar="TO", help="Userid taking over.")],
    actor: AsOption = CLI_ACTOR,
) -> None:
    """Give everything FROM owns and has open (customers, deals, tasks, leads) to TO."""
    url = migrated_database()

    async def work(session: AsyncSession) -> int:
        await check_actor(session, actor)
        if await session.get(Staff, from_userid) is None:
            raise fail(f"没有这个 userid (unknown userid): {from_userid}")
        try:
            return await customers.handover(
                session, from_userid=from_userid, to_userid=to_userid, by=actor, now=utc_now()
            )
        except ValueError:
            raise fail(
                f"无法交接给 {to_userid}：不存在或已停用 (unknown or inactive userid)"
            ) from None

    moved = run_session(url, work)
    typer.echo(f"已将 {from_userid} 的 {moved} 个客户及未结商机、待办、线索交接给 {to_userid}")
    typer.echo(f"(handed over {moved} customers plus open deals, tasks and leads)")


# staff --------------------------------------------------------------------------------------

staff_app = typer.Typer(help="People from the WeCom directory and their CRM roles.")


@staff_app.command("set-role")
def staff_set_role(
    userid: Annotated[str, typer.Argument(help="WeCom userid.")],
    role: Annotated[str, typer.Argument(help="rep | service | manager | admin")],
    actor: AsOption = CLI_ACTOR,
) -> None:
    """Give a person a role; a directory sync will not override it."""
    if role not in {r.value for r in Role}:
        raise fail(f"未知角色 (unknown role) {role!r}: 可选 {', '.join(r.value for r in Role)}")
    url = migrated_database()

    async def work(session: AsyncSession) -> None:
        await check_actor(session, actor)
        changed = await staff.set_role(session, userid=userid, role=role, by=actor, now=utc_now())
        if changed is None:
            raise fail(f"没有这个 userid (unknown userid): {userid}；先运行 wecrm sync-directory")

    run_session(url, work)
    typer.echo(f"{userid} 的角色已设为 {role}（{ROLE_LABELS[role]}）(role set)")


@staff_app.command("list")
def staff_list() -> None:
    """Everyone in the directory with role, departments and whether they are active."""
    url = migrated_database()

    async def work(session: AsyncSession) -> list[tuple[str, ...]]:
        names: dict[int, str] = {
            i: n for i, n in await session.execute(select(Department.id, Department.name))
        }
        memberships: dict[str, list[str]] = {}
        for userid, department_id, is_leader in await session.execute(
            select(
                StaffDepartment.userid, StaffDepartment.department_id, StaffDepartment.is_leader
            ).order_by(StaffDepartment.department_id)
        ):
            label = names.get(department_id, str(department_id)) + ("★" if is_leader else "")
            memberships.setdefault(userid, []).append(label)
        people = await session.execute(
            select(Staff.userid, Staff.name, Staff.role, Staff.active).order_by(Staff.userid)
        )
        return [
            (
                userid,
                name,
                role,
                "在职 active" if active else "停用 inactive",
                "、".join(memberships.get(userid, [])),
            )
            for userid, name, role, active in people
        ]

    rows = run_session(url, work, commit=False)
    if not rows:
        typer.echo("还没有员工，请先运行 wecrm sync-directory (no staff yet)")
        return
    typer.echo("userid\t姓名 name\t角色 role\t状态 status\t部门 departments (★ = 负责人 leader)")
    for row in rows:
        typer.echo("\t".join(row))


# roles --------------------------------------------------------------------------------------

roles_app = typer.Typer(help="Data scope of each role (本人 / 本部门 / 全部 ...).")


@roles_app.callback(invoke_without_command=True)
def roles_show(ctx: typer.Context) -> None:
    """List each role's data scope and the default role for new people."""
    if ctx.invoked_subcommand is not None:
        return
    url = migrated_database()

    async def work(session: AsyncSession) -> tuple[dict[str, config_data.RoleScope], str]:
        scopes = await config_data.get_role_scopes(session)
        return scopes, await config_data.get_default_role(session)

    scopes, default_role = run_session(url, work, commit=False)
    typer.echo("角色 role\t数据范围 scope")
    for role, scope in scopes.items():
        departments = f" {list(scope.department_ids)}" if scope.department_ids else ""
        typer.echo(
            f"{role}（{ROLE_LABELS.get(role, role)}）\t"
            f"{scope.level.value} {LEVEL_LABELS[scope.level]}{departments}"
        )
    typer.echo(f"新成员默认角色 default role for new people: {default_role}")


@roles_app.command("set")
def roles_set(
    role: Annotated[str, typer.Argument(help="rep | service | manager | admin | leader")],
    level: Annotated[
        str,
        typer.Argument(
            help="SELF | SELF_AND_SUBORDINATES | DEPARTMENT | DEPARTMENT_TREE | "
            "ALL | CUSTOM, or 本人 / 本人及下属 / 本部门 / 本部门及下属部门 / 全部 / 指定部门"
        ),
    ],
    departments: Annotated[
        str | None,
        typer.Option(help="For CUSTOM: department ids, comma separated, e.g. 1,2"),
    ] = None,
    actor: AsOption = CLI_ACTOR,
) -> None:
    """Change one role's data scope; it applies from each person's next message."""
    scope_level = LEVEL_WORDS.get(level.strip().casefold()) or LEVEL_WORDS.get(level.strip())
    if scope_level is None:
        raise fail(
            f"未知范围 (unknown level) {level!r}: 可选 {', '.join(s.value for s in ScopeLevel)}"
        )
    try:
        ids = [int(d) for d in (departments or "").replace("，", ",").split(",") if d.strip()]
    except ValueError:
        raise fail(
            f"--departments 应为逗号分隔的部门 id (comma-separated ids): {departments}"
        ) from None
    url = migrated_database()

    async def work(session: AsyncSession) -> None:
        await check_actor(session, actor)
        try:
            await config_data.set_role_scope(
                session, role=role, level=scope_level, department_ids=ids, by=actor, now=utc_now()
            )
        except config_data.ConfigError as exc:
            raise fail(f"无法设置 (cannot set): {exc}") from None

    run_session(url, work)
    shown = f" {ids}" if ids else ""
    typer.echo(f"{role} 的数据范围已设为 {LEVEL_LABELS[scope_level]}{shown} (scope set)")


@roles_app.command("default")
def roles_default(
    role: Annotated[str, typer.Argument(help="rep | service | manager | admin")],
    actor: AsOption = CLI_ACTOR,
) -> None:
    """Set the role new people get when the directory sync first sees them."""
    url = migrated_database()

    async def work(session: AsyncSession) -> None:
        await check_actor(session, actor)
        try:
            await config_data.set_default_role(session, role=role, by=actor, now=utc_now())
        except config_data.ConfigError as exc:
            raise fail(f"无法设置 (cannot set): {exc}") from None

    run_session(url, work)
    typer.echo(f"新成员默认角色已设为 {role} (default role set)")


def register(app: typer.Typer) -> None:
    """Add the admin commands to the `wecrm` app (called by bot.cli.main)."""
    app.command("sync-directory")(sync_directory_command)
    app.command("import")(import_command)
    app.command("export")(export_command)
    app.command("handover")(handover_command)
    app.add_typer(staff_app, name="staff", no_args_is_help=True)
    app.add_typer(roles_app, name="roles")
