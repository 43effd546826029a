"""Typed settings from the environment and an optional .env file, validated at start.

The variable names are a contract with deployments and docs. Secrets are SecretStr, so they
never show up in a repr, a log line or a validation error.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REAL_WECOM_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"
DEFAULT_DATABASE_URL = "sqlite:///./wecrm.db"
_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")


class SettingsError(Exception):
    """Raised with one readable line per bad setting; never contains a secret's value."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    wecom_corp_id: str = Field(validation_alias="WECOM_CORP_ID", min_length=1)
    wecom_agent_id: int = Field(validation_alias="WECOM_AGENT_ID")
    wecom_secret: SecretStr = Field(validation_alias="WECOM_SECRET")
    wecom_token: SecretStr = Field(validation_alias="WECOM_TOKEN")
    wecom_aes_key: SecretStr = Field(validation_alias="WECOM_AES_KEY")
    wecom_api_base: str = Field(REAL_WECOM_API_BASE, validation_alias="WECOM_API_BASE")
    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias="WECRM_DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="WECRM_REDIS_URL")
    timezone: str = Field("Asia/Shanghai", validation_alias="WECRM_TIMEZONE")
    callback_max_skew: int = Field(300, ge=0, validation_alias="WECRM_CALLBACK_MAX_SKEW")
    log_level: str = Field("INFO", validation_alias="WECRM_LOG_LEVEL")
    # Seconds a stopping process (SIGTERM) gives running messages and sends to finish.
    shutdown_grace: float = Field(10.0, ge=0, validation_alias="WECRM_SHUTDOWN_GRACE")
    # A reply WeCom keeps refusing with transient errors is given up (dead letter) this late.
    outbox_max_age_hours: float = Field(48.0, gt=0, validation_alias="WECRM_OUTBOX_MAX_AGE_HOURS")

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

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL (or unset for no Redis)")
        return value

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


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings, turning pydantic's errors into one line per variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    aliases = {
        name: (field.validation_alias or name) for name, field in Settings.model_fields.items()
    }
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        name = str(error["loc"][0]) if error["loc"] else "?"
        variable = aliases.get(name, name)
        message = "is missing" if error["type"] == "missing" else error["msg"]
        message = message.removeprefix("Value error, ")
        lines.append(f"{variable} {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
