"""Settings validation and the `wecrm serve` / `db` commands as an operator meets them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.main import app
from bot.settings import SettingsError, load_settings

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
        "WECRM_REDIS_URL",
        "WECRM_TIMEZONE",
        "WECRM_CALLBACK_MAX_SKEW",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_and_contract_names(env: pytest.MonkeyPatch) -> None:
    for name, value in GOOD.items():
        env.setenv(name, value)
    settings = load_settings()
    assert settings.wecom_agent_id == 1000002
    assert settings.wecom_api_base == "https://qyapi.weixin.qq.com/cgi-bin/"
    assert settings.database_url == "sqlite:///./wecrm.db"
    assert settings.redis_url is None
    assert settings.timezone == "Asia/Shanghai" and settings.callback_max_skew == 300


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
    database, latest = current.output.strip().split("; ")
    assert database.split(": ")[1] == latest.split(": ")[1]


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
