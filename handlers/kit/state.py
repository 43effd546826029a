"""Typed conversation slots: what a router remembers between one person's messages.

A slot is declared by the router that uses it, with a frozen dataclass as its payload and a
lifetime. Values are stored as JSON in the database (any worker sees them). A value written by
an older version either still decodes (same field names, or the slot's `upgrade`) or raises
StaleState, which the dispatcher answers with a polite "please start again" — never a crash.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, get_type_hints

from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import conversation

P = TypeVar("P")


class StaleState(Exception):
    """A stored slot value that this version cannot read."""

    def __init__(self, slot: str) -> None:
        super().__init__(slot)
        self.slot = slot


@dataclass(frozen=True)
class Slot(Generic[P]):
    name: str
    payload: type[P]
    ttl: timedelta
    upgrade: Callable[[Mapping[str, Any]], P | None] | None = None

    def encode(self, value: P) -> dict[str, Any]:
        encoded = to_json(value)
        if not isinstance(encoded, dict):
            raise TypeError(f"slot {self.name} holds a dataclass, not {type(value).__name__}")
        return encoded

    def decode(self, stored: Mapping[str, Any]) -> P:
        try:
            decoded: P = from_json(self.payload, stored)
            return decoded
        except (TypeError, ValueError, KeyError):
            upgraded = self.upgrade(stored) if self.upgrade is not None else None
            if upgraded is None:
                raise StaleState(self.name) from None
            return upgraded


@dataclass(frozen=True)
class LiveSlot:
    """A slot that holds a value now, with when it was written (the newest question wins)."""

    name: str
    value: dict[str, Any]
    updated_at: datetime


class Conversation:
    """One person's slots, read and written in the message's own transaction."""

    def __init__(self, session: AsyncSession, user_id: str, now: Callable[[], datetime]) -> None:
        self._session = session
        self._user_id = user_id
        self._now = now

    async def get(self, slot: Slot[P]) -> P | None:
        stored = await conversation.get(
            self._session, user_id=self._user_id, slot=slot.name, now=self._now()
        )
        return None if stored is None else slot.decode(stored)

    async def put(self, slot: Slot[P], value: P) -> None:
        now = self._now()
        await conversation.put(
            self._session,
            user_id=self._user_id,
            slot=slot.name,
            value=slot.encode(value),
            expires_at=now + slot.ttl,
            now=now,
        )

    async def clear(self, slot: Slot[Any]) -> None:
        await conversation.clear(self._session, user_id=self._user_id, slot=slot.name)

    async def live(self, names: typing.Collection[str]) -> list[LiveSlot]:
        """The named slots that hold a value, newest first."""
        rows = await conversation.live_slots(
            self._session, user_id=self._user_id, slots=names, now=self._now()
        )
        return [LiveSlot(name, value, updated) for name, value, updated in rows]


def to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    return value


def from_json(kind: Any, data: Any) -> Any:
    """Rebuild `kind` from JSON, checking shapes; TypeError/ValueError when they differ."""
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        if not isinstance(data, Mapping):
            raise TypeError(f"{kind.__name__} needs an object")
        hints = get_type_hints(kind)
        known = {f.name for f in dataclasses.fields(kind)}
        if set(data) - known:
            raise TypeError(f"unknown fields for {kind.__name__}: {sorted(set(data) - known)}")
        values = {name: from_json(hints[name], data[name]) for name in known if name in data}
        return kind(**values)
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(data, list):
            raise TypeError("a list was expected")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json(args[0], v) for v in data)
        if len(args) != len(data):
            raise TypeError("a list of another length was expected")
        return tuple(from_json(a, v) for a, v in zip(args, data, strict=True))
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(kind)
        if data is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return from_json(arg, data)
            except (TypeError, ValueError):
                continue
        raise TypeError(f"{data!r} fits none of {kind!r}")
    if origin is typing.Literal:
        if data not in typing.get_args(kind):
            raise ValueError(f"{data!r} is not one of {typing.get_args(kind)}")
        return data
    if origin in (dict, Mapping) or kind is dict:
        if not isinstance(data, Mapping):
            raise TypeError("an object was expected")
        return dict(data)
    if kind is Any:
        return data
    if isinstance(kind, type):
        if kind is float and isinstance(data, int) and not isinstance(data, bool):
            return float(data)
        if kind is bool and not isinstance(data, bool):
            raise TypeError("a boolean was expected")
        if kind is int and isinstance(data, bool):
            raise TypeError("a number was expected")
        if issubclass(kind, str) and kind is not str:  # a StrEnum
            return kind(data)
        if not isinstance(data, kind):
            raise TypeError(f"{kind.__name__} was expected, not {type(data).__name__}")
        return data
    raise TypeError(f"unsupported slot field type {kind!r}")
