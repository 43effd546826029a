"""What a person did in WeCom, as plain values: the handlers' view, free of wire formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Inbound:
    user_id: str
    key: str  # the dedup key: every write this message causes carries it
    created_at: datetime


@dataclass(frozen=True)
class TextMessage(Inbound):
    text: str


@dataclass(frozen=True)
class CardAction(Inbound):
    """A tap on a template-card button (or a vote/selection submitted from a card)."""

    event_key: str
    task_id: str
    card_type: str
    response_code: str | None = None
    selected: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class MenuClick(Inbound):
    event_key: str


@dataclass(frozen=True)
class EnterAgent(Inbound):
    """The person opened the app's chat."""


@dataclass(frozen=True)
class ContactChange(Inbound):
    """A directory change pushed by WeCom (change_contact)."""

    change_type: str
    changed_user_id: str | None = None
    department_id: int | None = None


@dataclass(frozen=True)
class OtherMessage(Inbound):
    """Anything without a typed class (image, voice, file, location, unknown events).

    Media messages carry WeCom's media id (valid 3 days, fetched with media/get) and what the
    wire says about the file; the rest leave these None.
    """

    msg_type: str
    event: str | None = None
    media_id: str | None = None
    file_name: str | None = None
    pic_url: str | None = None
    format: str | None = None
