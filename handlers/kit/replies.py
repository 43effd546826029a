"""Replies as values: handlers return them, the bot turns them into WeCom messages.

A reply is one of three frozen dataclasses (text, markdown, a button card). Every one carries its
recipients; `kind`, `content` and `card` read the same on all three so the outbox code needs no
isinstance ladder.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import templates

ReplyKind = Literal["text", "markdown", "card"]


@dataclass(frozen=True)
class CardButton:
    text: str
    key: str
    style: int = 1  # WeCom: 1 blue, 2 grey, 3 red, 4 green (PROTOCOL.md §4.2 template_card)


@dataclass(frozen=True)
class Card:
    """A button card: a title, a few lines, and buttons whose keys come back as CardAction."""

    title: str
    description: str
    task_id: str
    buttons: tuple[CardButton, ...] = ()
    lines: tuple[tuple[str, str], ...] = ()  # (label, value) rows under the description


@dataclass(frozen=True)
class TextReply:
    to_user: str
    content: str
    extra_to: tuple[str, ...] = field(default=())  # further recipients (e.g. a rep's leader)
    kind: ClassVar[ReplyKind] = "text"
    card: ClassVar[None] = None


@dataclass(frozen=True)
class MarkdownReply:
    to_user: str
    content: str
    extra_to: tuple[str, ...] = field(default=())
    kind: ClassVar[ReplyKind] = "markdown"
    card: ClassVar[None] = None


@dataclass(frozen=True)
class CardReply:
    to_user: str
    card: Card
    extra_to: tuple[str, ...] = field(default=())
    kind: ClassVar[ReplyKind] = "card"
    content: ClassVar[str] = ""


Reply = TextReply | MarkdownReply | CardReply


def text_reply(to_user: str, template: str, /, **variables: Any) -> TextReply | MarkdownReply:
    """A reply rendered from templates/<template>; markdown templates give markdown."""
    content = templates.render(template, **variables)
    if templates.kind_of(template) == "markdown":
        return MarkdownReply(to_user, content)
    return TextReply(to_user, content)


def card_from_template(
    template: str,
    /,
    *,
    task_id: str,
    keys: tuple[tuple[str, int], ...] = (),
    **variables: Any,
) -> Card:
    """A card whose words come from a template of `title:`, `description:`, `line: label | value`
    and `button:` lines; `keys` gives each button, in order, its key and style."""
    title = description = ""
    lines: list[tuple[str, str]] = []
    labels: list[str] = []
    for raw in templates.render(template, **variables).splitlines():
        field_name, _, value = raw.partition(":")
        value = value.strip()
        if field_name == "title":
            title = value
        elif field_name == "description":
            description = value
        elif field_name == "line":
            label, _, text = value.partition(" | ")
            lines.append((label.strip(), text.strip()))
        elif field_name == "button":
            labels.append(value)
        elif raw.strip():
            raise ValueError(f"{template}: unexpected card line {raw!r}")
    if len(labels) != len(keys):
        raise ValueError(f"{template}: {len(labels)} button labels for {len(keys)} keys")
    buttons = tuple(
        CardButton(text=label, key=key, style=style)
        for label, (key, style) in zip(labels, keys, strict=True)
    )
    return Card(title, description, task_id, buttons, tuple(lines))


def card_reply(to_user: str, card: Card) -> CardReply:
    return CardReply(to_user, card)


def addressed(reply: Reply, to_user: str, *extra_to: str) -> Reply:
    """The same reply for other recipients (a notice to an owner and their leader)."""
    return replace(reply, to_user=to_user, extra_to=tuple(extra_to))
