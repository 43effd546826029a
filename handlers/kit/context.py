"""The one typed object a handler receives: who asks, about what, with which session and clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

import templates
from crm_store.clock import Clock
from crm_store.scope import Actor, Scope
from crm_store.search import CustomerSearch
from handlers.kit.inbound import Inbound
from handlers.kit.replies import Card, Reply


@dataclass
class HandlerContext:
    session: AsyncSession
    message: Inbound
    clock: Clock
    tz: ZoneInfo
    # Filled by the worker from the staff directory; None only when the person is unknown.
    actor: Actor | None = None
    search: CustomerSearch | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        return self.message.user_id

    def now(self) -> datetime:
        return self.clock.now()

    def local_now(self) -> datetime:
        return self.clock.now().astimezone(self.tz)

    def scope(self) -> Scope:
        """The actor's scope now; handlers check `actor` before asking for it."""
        if self.actor is None:
            raise LookupError("no actor for this message")
        return Scope(self.actor, now=self.clock.now())

    def reply(self, template: str, /, **variables: Any) -> Reply:
        """A reply to the sender, rendered from templates/<template>."""
        return Reply(
            to_user=self.user_id,
            kind="markdown" if templates.kind_of(template) == "markdown" else "text",
            content=templates.render(template, **variables),
        )

    def card(self, card: Card) -> Reply:
        return Reply(to_user=self.user_id, kind="card", card=card)
