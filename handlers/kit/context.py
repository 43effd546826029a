"""The contexts handlers receive: who asks, about what, with which session, clock and zone.

The worker builds a MessageContext (the actor may be unknown). The dispatcher answers unknown
people itself, so a command gets a HandlerContext whose actor and search are never None
(python-telegram-bot's ContextTypes idea).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

import templates
from crm_store.clock import Clock
from crm_store.scope import Actor, Scope
from crm_store.search import CustomerSearch
from handlers.kit.inbound import Inbound
from handlers.kit.replies import Card, Reply, card_from_template, card_reply, text_reply
from handlers.kit.state import Conversation

if TYPE_CHECKING:
    from handlers.kit.routing import Command


class Catalogue(Protocol):
    """What help needs from the dispatcher, handed in rather than imported (errbot's way)."""

    def commands_for(self, role: str) -> Sequence[Command]: ...

    def find_command(self, word: str) -> Command | None: ...

    def suggest(self, text: str, role: str, limit: int = 2) -> list[str]: ...

    def audience_title(self, command: Command) -> str: ...

    async def confirm(self, ctx: HandlerContext) -> list[Reply] | None: ...


@dataclass
class MessageContext:
    """Everything the worker knows about one message before the dispatcher looks at it."""

    session: AsyncSession
    message: Inbound
    clock: Clock
    tz: ZoneInfo
    actor: Actor | None = None
    search: CustomerSearch | None = None

    @property
    def user_id(self) -> str:
        return self.message.user_id

    def now(self) -> datetime:
        return self.clock.now()

    def reply(self, template: str, /, **variables: Any) -> Reply:
        """A reply to the sender, rendered from templates/<template>."""
        return text_reply(self.user_id, template, **variables)


@dataclass
class HandlerContext(MessageContext):
    """A known person's message: actor and search are set, the command's registration too."""

    actor: Actor = field(kw_only=True)
    search: CustomerSearch = field(kw_only=True)
    catalogue: Catalogue = field(kw_only=True)
    command: Command | None = field(default=None, kw_only=True)
    state: Conversation = field(init=False)

    def __post_init__(self) -> None:
        self.state = Conversation(self.session, self.user_id, self.clock.now)

    @property
    def role(self) -> str:
        return self.actor.role

    def local_now(self) -> datetime:
        return self.clock.now().astimezone(self.tz)

    def scope(self) -> Scope:
        """The actor's scope at this moment (shares and their expiry depend on the clock)."""
        return Scope(self.actor, now=self.clock.now())

    def card(self, card: Card) -> Reply:
        return card_reply(self.user_id, card)

    def card_from(
        self,
        template: str,
        /,
        *,
        task_id: str,
        keys: tuple[tuple[str, int], ...] = (),
        **variables: Any,
    ) -> Reply:
        """A button card whose every word comes from templates/<template>."""
        return self.card(card_from_template(template, task_id=task_id, keys=keys, **variables))

    def usage(self) -> Reply:
        """The running command's usage and example, from its own registration."""
        if self.command is None:
            return self.reply("help/unknown", text="", suggestions=[])
        return self.reply("help/usage", usage=self.command.usage, example=self.command.example)

    def render(self, template: str, /, **variables: Any) -> str:
        return templates.render(template, **variables)
