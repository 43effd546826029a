"""Typed, namespaced card button keys, in the manner of aiogram's CallbackData.

A key class names its fields and their types; a router that registers it gives it a namespace,
so two audiences can both have a `pick` button. On the wire a key is `<ns>.<prefix>:<f1>:<f2>`.
Buttons already sent by an older version carry `legacy` keys (`pick:12`); they still work.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self, get_type_hints

MAX_KEY_BYTES = 1024  # PROTOCOL.md §4.2: a template_card button key is at most 1024 bytes
_SEPARATOR = ":"


class CardKeyError(ValueError):
    """A key that does not decode: a forged, truncated or outdated button."""


class CardKey:
    """Base of every button key; subclasses are frozen dataclasses of int/str fields."""

    prefix: ClassVar[str]
    legacy: ClassVar[str | None]
    namespace: ClassVar[str | None] = None

    def __init_subclass__(cls, *, prefix: str, legacy: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not prefix or _SEPARATOR in prefix or "." in prefix:
            raise ValueError(f"card key prefix {prefix!r} must be a plain word")
        cls.prefix = prefix
        cls.legacy = legacy

    @classmethod
    def head(cls) -> str:
        if cls.namespace is None:
            raise RuntimeError(f"{cls.__name__} is not registered on a router")
        return f"{cls.namespace}.{cls.prefix}"

    def pack(self) -> str:
        """The button key WeCom will hand back when this button is tapped."""
        values = [str(getattr(self, f.name)) for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        for value in values:
            if _SEPARATOR in value:
                raise ValueError(f"card key field {value!r} must not contain {_SEPARATOR!r}")
        key = _SEPARATOR.join([self.head(), *values])
        if len(key.encode()) > MAX_KEY_BYTES:
            raise ValueError("card key longer than WeCom allows")
        return key

    @classmethod
    def unpack(cls, fields_text: str) -> Self:
        """Fields after the head, typed; CardKeyError for anything that does not fit."""
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        parts = fields_text.split(_SEPARATOR) if fields_text else []
        if len(parts) != len(fields):
            raise CardKeyError(f"{cls.__name__} expects {len(fields)} fields")
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for field, raw in zip(fields, parts, strict=True):
            kind = hints[field.name]
            if kind is int:
                if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
                    raise CardKeyError(f"{field.name} is not a number")
                values[field.name] = int(raw)
            elif kind is str:
                values[field.name] = raw
            else:  # pragma: no cover - a programming error caught by the key tests
                raise TypeError(f"card key fields are int or str, not {kind!r}")
        return cls(**values)
