"""Settings validation and the `wecrm serve` / `db` commands as an operator meets them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

import bot.cli
from bot.cli.main import app
from bot.cli.run import demo_database
from bot.settings import (
    CompanySettings,
    DatabaseSettings,
    RuntimeSettings,
    SettingsError,
    WeComSettings,
    load,
    load_settings,
)
from crm_store.session import create_engine

GOOD = {
    "WECOM_CORP_ID": "ww0123456789abcdef",
    "WECOM_AGENT_ID": "1000002",
    "WECOM_SECRET": "super-secret-value-1234567890",
    "WECOM_TOKEN": "tokenValue42",
    "WECOM_AES_KEY": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in (
        *GOOD,
        "WECOM_API_BASE",
        "WECRM_DATABASE_URL",
        "WECRM_DATABASE_POOL_SIZE",
        "WECRM_DATABASE_MAX_OVERFLOW",
        "WECRM_HOME",
        "WECRM_REDIS_URL",
        "WECRM_TIMEZONE",
        "WECRM_CALLBACK_MAX_SKEW",
        "WECRM_LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return monkeypatch


def test_defaults_and_contract_names(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in GOOD.items():
        env.setenv(name, value)
    settings = load_settings()
    assert settings.wecom_agent_id == 1000002
    assert settings.wecom_api_base == "https://qyapi.weixin.qq.com/cgi-bin/"
    # The default database is one absolute file in the per-user data folder (XDG on Linux).
    assert settings.database_url == f"sqlite:///{tmp_path / 'xdg' / 'wecrm' / 'wecrm.db'}"
    assert settings.database_source == "default"
    assert settings.redis_url is None and settings.log_level == "INFO"
    assert settings.timezone == "Asia/Shanghai" and settings.callback_max_skew == 300
    assert str(settings.tz) == "Asia/Shanghai"


def test_settings_is_made_of_parts_that_load_alone(env: pytest.MonkeyPatch) -> None:
    # No WECOM_* at all: what the admin commands load still loads.
    assert load(DatabaseSettings).database_source == "default"
    assert load(CompanySettings).timezone == "Asia/Shanghai"
    assert load(RuntimeSettings).redis_url is None
    with pytest.raises(SettingsError) as caught:
        load(WeComSettings)
    assert "WECOM_CORP_ID is missing" in str(caught.value)
    assert "WECRM_" not in str(caught.value)
    for name, value in GOOD.items():
        env.setenv(name, value)
    settings = load_settings()
    for part in (DatabaseSettings, CompanySettings, WeComSettings, RuntimeSettings):
        assert isinstance(settings, part)
    assert settings.secret_values() == [
        GOOD["WECOM_SECRET"],
        GOOD["WECOM_TOKEN"],
        GOOD["WECOM_AES_KEY"],
    ]


def test_each_part_names_its_own_bad_variables(env: pytest.MonkeyPatch) -> None:
    env.setenv("WECRM_DATABASE_URL", "mysql://db/crm")
    env.setenv("WECRM_DATABASE_POOL_SIZE", "0")
    env.setenv("WECRM_TIMEZONE", "Mars/Base")
    env.setenv("WECRM_LOG_LEVEL", "LOUD")
    env.setenv("WECOM_AES_KEY", "short")
    expected: dict[type[BaseSettings], list[str]] = {
        DatabaseSettings: ["WECRM_DATABASE_URL must be a sqlite", "WECRM_DATABASE_POOL_SIZE"],
        CompanySettings: ["WECRM_TIMEZONE is not a known IANA time zone"],
        RuntimeSettings: ["WECRM_LOG_LEVEL must be DEBUG"],
    }
    for part, lines in expected.items():
        with pytest.raises(SettingsError) as caught:
            load(part)
        message = str(caught.value)
        assert message.count("\n") == len(lines), message  # one line per variable
        for line in lines:
            assert line in message
    env.setenv("WECRM_DATABASE_URL", "not a url at all")
    with pytest.raises(SettingsError, match="WECRM_DATABASE_URL must be a URL"):
        load(DatabaseSettings)


def test_the_database_location_and_who_chose_it(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("WECRM_HOME", "crm")  # relative: pinned to the folder it was read in
    database = load(DatabaseSettings)
    assert (database.database_source, database.sqlite_path) == (
        "WECRM_HOME",
        tmp_path / "crm" / "wecrm.db",
    )
    env.setenv("WECRM_DATABASE_URL", "sqlite:///./here.db")
    database = load(DatabaseSettings)
    assert database.database_url == f"sqlite:///{tmp_path / 'here.db'}"
    assert database.database_source == "WECRM_DATABASE_URL"
    assert database.database_display == str(tmp_path / "here.db")
    env.setenv("WECRM_DATABASE_URL", "postgresql://crm:pa%40ss@db.internal:5433/crm?ssl=on")
    database = load(DatabaseSettings)
    assert database.database_display == "postgresql://crm@db.internal:5433/crm"
    assert database.database_password == "pa@ss" and database.sqlite_path is None


def test_pool_options_reach_the_engine(env: pytest.MonkeyPatch) -> None:
    env.setenv("WECRM_DATABASE_URL", "postgresql://crm@127.0.0.1/crm")
    env.setenv("WECRM_DATABASE_POOL_SIZE", "3")
    env.setenv("WECRM_DATABASE_MAX_OVERFLOW", "0")
    database = load(DatabaseSettings)
    assert database.engine_options() == {"pool_size": 3, "max_overflow": 0}
    engine = create_engine(database.database_url, **database.engine_options())
    assert engine.pool.size() == 3  # type: ignore[attr-defined]
    env.setenv("WECRM_DATABASE_URL", "sqlite:///x.db")
    assert load(DatabaseSettings).engine_options() == {}  # SQLite keeps its one connection


def test_every_problem_is_named_and_no_secret_is_shown(env: pytest.MonkeyPatch) -> None:
    env.setenv("WECOM_SECRET", GOOD["WECOM_SECRET"])
    env.setenv("WECOM_AES_KEY", "too-short-" + GOOD["WECOM_SECRET"])
    env.setenv("WECOM_AGENT_ID", "abc")
    env.setenv("WECRM_TIMEZONE", "Mars/Base")
    env.setenv("WECRM_REDIS_URL", "http://nope")
    env.setenv("WECRM_CALLBACK_MAX_SKEW", "-1")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    for name in (
        "WECOM_CORP_ID",
        "WECOM_TOKEN",
        "WECOM_AES_KEY",
        "WECOM_AGENT_ID",
        "WECRM_TIMEZONE",
        "WECRM_REDIS_URL",
        "WECRM_CALLBACK_MAX_SKEW",
    ):
        assert name in message
    assert GOOD["WECOM_SECRET"] not in message


def test_dotenv_file_is_read(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("\n".join(f"{k}={v}" for k, v in GOOD.items()))
    assert load_settings().wecom_corp_id == GOOD["WECOM_CORP_ID"]


def test_serve_refuses_an_unmigrated_database(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in GOOD.items():
        env.setenv(name, value)
    env.setenv("WECRM_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "wecrm db upgrade" in result.output


def test_serve_without_settings_names_them(env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2 and "WECOM_CORP_ID is missing" in result.output


def test_db_upgrade_then_current(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("WECRM_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    runner = CliRunner()
    first = runner.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0  # safe to run again
    current = runner.invoke(app, ["db", "current"])
    database, latest = current.stdout.strip().split("; ")
    assert database.split(": ")[1] == latest.split(": ")[1]
    assert f"数据库 (database): {tmp_path / 'new.db'} (from WECRM_DATABASE_URL)" in current.stderr


def test_serve_rejects_an_unknown_role(env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["serve", "--role", "everything"])
    assert result.exit_code == 2 and "--role" in result.output


def test_config_pool_and_collision_rules(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("WECRM_DATABASE_URL", f"sqlite:///{tmp_path / 'cfg.db'}")
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert (
        runner.invoke(
            app, ["config", "pool", "--daily-limit", "3", "--cooldown-days", "7"]
        ).exit_code
        == 0
    )
    assert runner.invoke(app, ["config", "collision", "--no-leader"]).exit_code == 0
    shown = runner.invoke(app, ["config", "show"]).output
    assert "每日领取上限 3" in shown and "7 天" in shown and "其上级 否" in shown
    bad = runner.invoke(app, ["config", "pool", "--daily-limit", "-1", "--cooldown-days", "1"])
    assert bad.exit_code == 2 and "cannot set" in bad.output


def test_admin_commands_ignore_a_broken_wecom_setting(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        f"WECRM_DATABASE_URL=sqlite:///{tmp_path / 'crm.db'}\nWECOM_AES_KEY=broken\n"
    )
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    for args in (["roles"], ["staff", "list"], ["config", "show"], ["db", "current"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    served = runner.invoke(app, ["serve"])
    assert served.exit_code == 2 and "WECOM_AES_KEY must be the 43-character" in served.output


def test_a_database_password_is_never_printed(pg_test_url: str) -> None:
    # Local PostgreSQL trusts the connection, so any password opens it: the URL carries one.
    password = "Pw-never-shown-9431"
    url = make_url(pg_test_url).set(password=password).render_as_string(hide_password=False)
    runner = CliRunner()
    for args in (["db", "current"], ["db", "upgrade"], ["roles"]):
        result = runner.invoke(app, args, env={"WECRM_DATABASE_URL": url})
        assert result.exit_code == 0, (args, result.output)
        assert password not in result.output
        shown = make_url(pg_test_url).render_as_string()
        assert f"数据库 (database): {shown} (from WECRM_DATABASE_URL)" in result.stderr
    unreachable = make_url(url).set(port=1).render_as_string(hide_password=False)
    result = runner.invoke(app, ["db", "upgrade"], env={"WECRM_DATABASE_URL": unreachable})
    assert result.exit_code == 2 and "migration failed" in result.output
    assert password not in result.output


def test_the_demo_keeps_its_own_database(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("WECRM_DATABASE_URL", f"sqlite:///{tmp_path / 'real-crm.db'}")
    env.setenv("WECRM_HOME", str(tmp_path / "home"))
    assert demo_database(None).sqlite_path == tmp_path / "home" / "demo.db"
    chosen = demo_database("sqlite:///try.db")
    assert chosen.sqlite_path == tmp_path / "try.db"


CLI_MODULES = sorted(f"bot.cli.{path.stem}" for path in Path(bot.cli.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("module", CLI_MODULES)
def test_every_cli_module_imports_first(module: str) -> None:
    """A fresh interpreter importing this module before any other: no import loop."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_cli_modules_borrow_no_private_names_and_never_import_main() -> None:
    folder = Path(bot.cli.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bot."):
                names = [alias.name for alias in node.names]
                assert not [n for n in names if n.startswith("_")], (path.name, names)
                assert node.module != "bot.cli.main", path.name
            if isinstance(node, ast.Import):
                assert "bot.cli.main" not in [alias.name for alias in node.names], path.name
