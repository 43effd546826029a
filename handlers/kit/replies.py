"""Replies as values: handlers return them, the bot turns them into WeCom messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ReplyKind = Literal["text", "markdown", "card"]


@dataclass(frozen=True)
class CardButton:
    text: str
    key: str
    style: int = 1  # WeCom: 1 blue, 2 grey, 3 red, 4 green... (PROTOCOL.md §4.2 template_card)


@dataclass(frozen=True)
class Card:
    """A button card: a title, a few lines, and buttons whose keys come back as CardAction."""

    title: str
    description: str
    task_id: str
    buttons: tuple[CardButton, ...] = ()
    lines: tuple[tuple[str, str], ...] = ()  # (label, value) rows under the description


@dataclass(frozen=True)
class Reply:
    to_user: str
    kind: ReplyKind
    content: str = ""
    card: Card | None = None
    extra_to: tuple[str, ...] = field(default=())  # further recipients (e.g. a rep's leader)
