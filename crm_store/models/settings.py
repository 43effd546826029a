"""Configurable data (stages, categories, SLA hours, role scopes) as key → JSON rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from crm_store.base import Base, JsonType, UtcDatetime


class CrmSetting(Base):
    """One setting; a missing key means the built-in Chinese default (see config_data)."""

    __tablename__ = "crm_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonType)
    updated_at: Mapped[UtcDatetime]
    updated_by: Mapped[str] = mapped_column(String(64))
