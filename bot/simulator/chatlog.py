"""Each member's conversation as the chat page and `wecrm chat` show it: what they said or
tapped, what the app sent them, and later edits of its cards, in one numbered stream."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bot.simulator.messages import CardUpdate, SentMessage

__all__ = ["ChatEntry", "ChatLog"]

Direction = Literal["in", "out", "update"]
MAX_ENTRIES = 20_000  # a long demo session keeps the newest entries only


@dataclass(frozen=True)
class ChatEntry:
    id: int
    user: str
    direction: Direction
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "dir": self.direction, "at": self.at.isoformat(), **self.data}


class ChatLog:
    """Append-only per-member log with a wake-up for live readers (SSE, the terminal)."""

    def __init__(self) -> None:
        self._entries: list[ChatEntry] = []
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self.closed = False

    def _add(self, user: str, direction: Direction, at: datetime, data: dict[str, Any]) -> None:
        self._entries.append(ChatEntry(next(self._ids), user, direction, at, data))
        if len(self._entries) > MAX_ENTRIES:
            del self._entries[: len(self._entries) - MAX_ENTRIES]
        self._changed.set()
        self._changed = asyncio.Event()

    def said(self, user: str, text: str, at: datetime) -> None:
        self._add(user, "in", at, {"kind": "text", "text": text})

    def tapped(self, user: str, task_id: str, key: str, label: str, at: datetime) -> None:
        self._add(user, "in", at, {"kind": "tap", "task_id": task_id, "key": key, "text": label})

    def on_sent(self, message: SentMessage) -> None:
        """MessageCenter listener: one entry per member the message reached."""
        for user in message.delivered_to:
            self._add(user, "out", message.at, {"kind": message.msgtype, **message.as_json()})

    def on_card_update(self, update: CardUpdate) -> None:
        data = {
            "kind": "card_update",
            "task_id": update.task_id,
            "button": update.button,
            "template_card": update.template_card,
        }
        for user in update.userids:
            self._add(user, "update", update.at, data)

    def entries(self, user: str, after: int = 0) -> list[ChatEntry]:
        return [e for e in self._entries if e.user == user and e.id > after]

    @property
    def last_id(self) -> int:
        return self._entries[-1].id if self._entries else 0

    async def wait(self, patience: float) -> None:
        """Return when anything is added (or the log closes), else after `patience` seconds."""
        if self.closed:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), patience)

    def close(self) -> None:
        """Wake every live reader for good: the server is shutting down."""
        self.closed = True
        self._changed.set()
