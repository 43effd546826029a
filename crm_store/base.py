"""Declarative base and column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, String, TypeDecorator
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, mapped_column

# Stable constraint names, so migrations generated on SQLite and PostgreSQL agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class DateTimeUTC(TypeDecorator[datetime]):
    """Stores aware datetimes in UTC and hands them back aware, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


E = TypeVar("E", bound=StrEnum)


class StrEnumType(TypeDecorator[E], Generic[E]):
    """A StrEnum stored as its plain string (VARCHAR, no database enum to migrate), read back
    as the enum; an unknown stored value fails loudly instead of slipping through as a str."""

    impl = String()
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


# SQLite only auto-increments INTEGER PRIMARY KEY, so big ids are BIGINT on PostgreSQL only.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class JsonDoc(TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL; one named type so migrations render it plainly."""

    impl = JSON()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB())
        return dialect.type_descriptor(JSON())


JsonType = JsonDoc()

IntPk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]
UtcDatetime = Annotated[datetime, mapped_column(DateTimeUTC())]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: DateTimeUTC()}
