"""The buttons of a ticket card: take it, change its priority, add a note."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.kit.cards import CardKey


@dataclass(frozen=True)
class TakeKey(CardKey, prefix="take"):
    ticket_id: int


@dataclass(frozen=True)
class PriorityKey(CardKey, prefix="prio"):
    ticket_id: int


@dataclass(frozen=True)
class SetPriorityKey(CardKey, prefix="setprio"):
    ticket_id: int
    priority: str


@dataclass(frozen=True)
class NoteKey(CardKey, prefix="note"):
    ticket_id: int
