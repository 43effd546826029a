"""Typed settings from the environment and an optional .env file, validated at start.

Split into parts that load alone, so a command asks only for what it uses: the admin CLI needs
the database and the company's time zone, never a WeCom secret. `Settings` is all of them, for
`serve` and `demo`. The variable names are a contract with deployments and docs. Secrets are
SecretStr, so they never show up in a repr, a log line or a validation error.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

REAL_WECOM_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"
DATABASE_FILE = "wecrm.db"
_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")

DatabaseSource = Literal["WECRM_DATABASE_URL", "WECRM_HOME", "default"]


class SettingsError(Exception):
    """Raised with one readable line per bad setting; never contains a secret's value."""


class _FromEnvironment(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")


def default_home() -> Path:
    """The platform's per-user data folder, e.g. ~/.local/share/wecrm (XDG_DATA_HOME) on Linux."""
    return Path(platformdirs.user_data_dir("wecrm", appauthor=False))


class DatabaseSettings(_FromEnvironment):
    """Where the CRM lives: by default one absolute SQLite file, whatever the current folder."""

    database_url: str = Field("", validation_alias="WECRM_DATABASE_URL")
    wecrm_home: Path | None = Field(None, validation_alias="WECRM_HOME")
    database_pool_size: int | None = Field(None, ge=1, validation_alias="WECRM_DATABASE_POOL_SIZE")
    database_max_overflow: int | None = Field(
        None, ge=0, validation_alias="WECRM_DATABASE_MAX_OVERFLOW"
    )
    _database_source: DatabaseSource = PrivateAttr("default")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.strip():
            return ""
        try:
            url = make_url(value.strip())
        except ArgumentError:
            raise ValueError("must be a URL such as sqlite:///path.db or postgresql://…") from None
        if url.get_backend_name() not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return _absolute_sqlite(url)

    @field_validator("wecrm_home", mode="before")
    @classmethod
    def _blank_home(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("wecrm_home")
    @classmethod
    def _home(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().absolute()

    @model_validator(mode="after")
    def _resolve_default(self) -> DatabaseSettings:
        # The source is decided before database_url is filled in, which marks it as set.
        if self.database_url:
            self._database_source = "WECRM_DATABASE_URL"
            return self
        self._database_source = "default" if self.wecrm_home is None else "WECRM_HOME"
        self.database_url = f"sqlite:///{self.data_home / DATABASE_FILE}"
        return self

    @property
    def data_home(self) -> Path:
        """WECRM_HOME, else the platform data folder: home of the default and the demo database."""
        return self.wecrm_home or default_home()

    @property
    def database_source(self) -> DatabaseSource:
        """Which setting chose the database: shown with it, so nobody guesses which one is open."""
        return self._database_source

    @property
    def sqlite_path(self) -> Path | None:
        """The database file for SQLite (None for PostgreSQL and for in-memory SQLite)."""
        return sqlite_path(self.database_url)

    @property
    def database_display(self) -> str:
        """The file path, or the server URL without password or query: safe to print and log."""
        return self.sqlite_path.as_posix() if self.sqlite_path else display_url(self.database_url)

    @property
    def database_password(self) -> str | None:
        """The password in the URL, so that an error message can be scrubbed of it."""
        password = make_url(self.database_url).password
        return str(password) if password else None

    def engine_options(self) -> dict[str, int]:
        """Pool options for crm_store.session.create_engine; SQLite keeps its one connection."""
        if make_url(self.database_url).get_backend_name() == "sqlite":
            return {}
        options = {
            "pool_size": self.database_pool_size,
            "max_overflow": self.database_max_overflow,
        }
        return {name: value for name, value in options.items() if value is not None}


def _absolute_sqlite(url: URL) -> str:
    # A relative SQLite path means "relative to the current folder": pin that folder now, so
    # the file that is shown is the file that is opened.
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return url.render_as_string(hide_password=False)
    if url.database.startswith("file:"):
        return url.render_as_string(hide_password=False)
    path = Path(url.database).expanduser().absolute()
    return url.set(database=str(path)).render_as_string(hide_password=False)


def sqlite_path(database_url: str) -> Path | None:
    """The file behind a sqlite URL, or None when it is not a file on disk."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database)


def display_url(database_url: str) -> str:
    """backend://user@host:port/db: never the password, nor a query that may carry one."""
    url = make_url(database_url)
    bare = URL.create(url.drivername, url.username, None, url.host, url.port, url.database)
    return bare.render_as_string(hide_password=True)


class CompanySettings(_FromEnvironment):
    """What the company decides: its time zone for showing times and reading dates."""

    timezone: str = Field("Asia/Shanghai", validation_alias="WECRM_TIMEZONE")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("is not a known IANA time zone, e.g. Asia/Shanghai") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class WeComSettings(_FromEnvironment):
    """The WeCom app: what talking to WeCom and checking its callbacks needs."""

    wecom_corp_id: str = Field(validation_alias="WECOM_CORP_ID", min_length=1)
    wecom_agent_id: int = Field(validation_alias="WECOM_AGENT_ID")
    wecom_secret: SecretStr = Field(validation_alias="WECOM_SECRET")
    wecom_token: SecretStr = Field(validation_alias="WECOM_TOKEN")
    wecom_aes_key: SecretStr = Field(validation_alias="WECOM_AES_KEY")
    wecom_api_base: str = Field(REAL_WECOM_API_BASE, validation_alias="WECOM_API_BASE")
    callback_max_skew: int = Field(300, ge=0, validation_alias="WECRM_CALLBACK_MAX_SKEW")

    @field_validator("wecom_secret", "wecom_token")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("wecom_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: SecretStr) -> SecretStr:
        if not _AES_KEY.fullmatch(value.get_secret_value()):
            raise ValueError("must be the 43-character EncodingAESKey (letters and digits)")
        return value

    @field_validator("wecom_api_base")
    @classmethod
    def _api_base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    def secret_values(self) -> list[str]:
        """The values a log filter must mask."""
        return [
            self.wecom_secret.get_secret_value(),
            self.wecom_token.get_secret_value(),
            self.wecom_aes_key.get_secret_value(),
        ]


class RuntimeSettings(_FromEnvironment):
    """How the process runs: Redis (optional) and logging."""

    redis_url: str | None = Field(None, validation_alias="WECRM_REDIS_URL")
    log_level: str = Field("INFO", validation_alias="WECRM_LOG_LEVEL")
    # Seconds a stopping process (SIGTERM) gives running messages and sends to finish.
    shutdown_grace: float = Field(10.0, ge=0, validation_alias="WECRM_SHUTDOWN_GRACE")
    # A reply WeCom keeps refusing with transient errors is given up (dead letter) this late.
    outbox_max_age_hours: float = Field(48.0, gt=0, validation_alias="WECRM_OUTBOX_MAX_AGE_HOURS")
    media_dir: Path | None = Field(None, validation_alias="WECRM_MEDIA_DIR")

    @field_validator("media_dir", mode="before")
    @classmethod
    def _blank_media_dir(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL (or unset for no Redis)")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level


class Settings(DatabaseSettings, CompanySettings, WeComSettings, RuntimeSettings):
    """Everything `serve` and `demo` need; each part stays usable where only it is wanted."""

    @property
    def media_folder(self) -> Path:
        """Where forwarded files go: WECRM_MEDIA_DIR, else `media/` beside the SQLite file,
        else `media/` in the data folder (WECRM_HOME)."""
        if self.media_dir is not None:
            return self.media_dir.expanduser().resolve()
        database = self.sqlite_path
        return (database.parent if database is not None else self.data_home) / "media"


S = TypeVar("S", bound=BaseSettings)


def load(kind: type[S], **overrides: object) -> S:
    """Read and validate one part (or all), turning pydantic's errors into one line each."""
    try:
        return kind(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc, kind)) from None


def load_settings(**overrides: object) -> Settings:
    """All settings, for running the bot."""
    return load(Settings, **overrides)


def describe_errors(exc: ValidationError, kind: type[BaseSettings] = Settings) -> str:
    aliases = {name: (field.validation_alias or name) for name, field in kind.model_fields.items()}
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        name = str(error["loc"][0]) if error["loc"] else "?"
        variable = aliases.get(name, name)
        message = "is missing" if error["type"] == "missing" else error["msg"]
        message = message.removeprefix("Value error, ")
        lines.append(f"{variable} {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
