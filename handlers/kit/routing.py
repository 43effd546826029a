"""Routers per audience, with roles, and the one Dispatcher over them (aiogram's shape).

A router declares its audience, the roles that may use it, its commands (Chinese words first,
English aliases), its typed card keys, its conversation slots and what answers them. The
dispatcher answers unknown people in one place, never offers a command to a role it excludes,
and explains politely who may use a command that the asker may not.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any, TypeVar

from pypinyin import Style, lazy_pinyin
from rapidfuzz import fuzz, process

from crm_store.models.org import Role
from handlers.kit.cards import CardKey, CardKeyError
from handlers.kit.context import HandlerContext, MessageContext
from handlers.kit.inbound import CardAction, Inbound, OtherMessage, TextMessage
from handlers.kit.jobs import DEFAULT_GRACE, Job, JobFn, Schedule, declare
from handlers.kit.replies import Reply
from handlers.kit.state import Slot, StaleState

K = TypeVar("K", bound=CardKey)
P = TypeVar("P")
E = TypeVar("E", bound=Inbound)

CommandHandler = Callable[[HandlerContext, str], Awaitable[list[Reply]]]
CardHandler = Callable[[HandlerContext, Any], Awaitable[list[Reply]]]
AnswerHandler = Callable[[HandlerContext, str, Any], Awaitable[list[Reply] | None]]
EventHandler = Callable[[HandlerContext, Any], Awaitable[list[Reply]]]
InterruptHandler = Callable[[HandlerContext, Any], Awaitable[list[Reply]]]
OtherwiseHandler = Callable[
    [HandlerContext, TextMessage | OtherMessage], Awaitable[list[Reply] | None]
]

EVERYONE: frozenset[str] = frozenset(r.value for r in Role)
ROLE_TITLES = {
    Role.REP.value: "销售",
    Role.SERVICE.value: "客服",
    Role.MANAGER.value: "主管",
    Role.ADMIN.value: "管理员",
}
USER_MESSAGE_TYPES = frozenset({"image", "voice", "video", "location", "link", "file"})
_LATIN_WORD = re.compile(r"[a-z]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
# 模糊音: the initials and finals that pinyin input methods (and people) mix up.
_FUZZY_SOUNDS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("ng", "n"), ("l", "n"))


def normalize_text(text: str) -> str:
    """Full-width letters, digits and punctuation to half-width; collapse runs of spaces."""
    text = unicodedata.normalize("NFKC", text).replace("\u3000", " ")
    return re.sub(r"\s+", " ", text).strip()


def original_argument(ctx: HandlerContext, argument: str) -> str:
    """The command's argument as the person typed it (their own commas and brackets), for
    storing; `argument` (normalised) is what matching and lookups use."""
    message = ctx.message
    if not isinstance(message, TextMessage):
        return argument
    text = message.text
    for start in range(min(len(text), 64) + 1):
        if normalize_text(text[start:]) == argument:
            return text[start:].strip()
    return argument


@lru_cache(maxsize=4096)
def _sound(text: str) -> str:
    syllables = lazy_pinyin(text, style=Style.NORMAL, errors="ignore")
    joined = " ".join(syllables)
    for long, short in _FUZZY_SOUNDS:
        joined = joined.replace(long, short)
    return joined


def sounds_alike(typed: str, word: str) -> bool:
    """Same pinyin up to 模糊音, and not the very same characters."""
    return typed != word and len(typed) == len(word) and _sound(typed) == _sound(word) != ""


@dataclass(frozen=True)
class Command:
    name: str
    words: tuple[str, ...]
    handler: CommandHandler
    summary: str
    usage: str
    example: str
    roles: frozenset[str]
    router: Router = field(compare=False, repr=False)

    def allows(self, role: str) -> bool:
        return role in self.roles

    @property
    def aliases(self) -> list[str]:
        return [w for w in self.words[1:] if w != self.name]


@dataclass(frozen=True)
class _CardRoute:
    key: type[CardKey]
    handler: CardHandler
    router: Router


@dataclass(frozen=True)
class _Answer:
    slot: Slot[Any]
    handler: AnswerHandler
    router: Router


class Router:
    """One audience's part of the bot: commands, buttons, slots, answers and events."""

    def __init__(
        self,
        name: str,
        *,
        audience: str,
        title: str,
        roles: Collection[Role | str] = EVERYONE,
    ) -> None:
        self.name = name  # also the namespace of its card keys
        self.audience = audience
        self.title = title  # the heading help shows its commands under
        self.roles = frozenset(str(r) for r in roles)
        self.commands: list[Command] = []
        self.cards: list[_CardRoute] = []
        self.slots: list[Slot[Any]] = []
        self.answers: list[_Answer] = []
        self.interrupts: list[tuple[Slot[Any], InterruptHandler]] = []
        self.confirmations: list[tuple[Slot[Any], InterruptHandler]] = []
        self.events: list[tuple[type[Inbound], EventHandler]] = []
        self.jobs: list[Job] = []
        self.otherwise_handlers: list[OtherwiseHandler] = []

    def command(
        self,
        *words: str,
        summary: str,
        usage: str,
        example: str,
        roles: Collection[Role | str] | None = None,
    ) -> Callable[[CommandHandler], CommandHandler]:
        """Register a command under its Chinese word(s) and English aliases."""
        allowed = self.roles if roles is None else frozenset(str(r) for r in roles)

        def register(handler: CommandHandler) -> CommandHandler:
            self.commands.append(
                Command(
                    words[0],
                    tuple(w.lower() for w in words),
                    handler,
                    summary,
                    usage,
                    example,
                    allowed,
                    self,
                )
            )
            return handler

        return register

    def card(
        self, key: type[K]
    ) -> Callable[[Callable[[HandlerContext, K], Awaitable[list[Reply]]]], Any]:
        """Handle taps on buttons whose key is `key` (decoded and typed before the call)."""
        if key.namespace is not None and key.namespace != self.name:
            raise ValueError(f"{key.__name__} already belongs to router {key.namespace}")
        key.namespace = self.name

        def register(
            handler: Callable[[HandlerContext, K], Awaitable[list[Reply]]],
        ) -> Callable[[HandlerContext, K], Awaitable[list[Reply]]]:
            self.cards.append(_CardRoute(key, handler, self))
            return handler

        return register

    def slot(
        self,
        name: str,
        payload: type[P],
        *,
        ttl: timedelta,
        upgrade: Callable[[Any], P | None] | None = None,
    ) -> Slot[P]:
        """Declare a conversation slot this router owns (its name is unique bot-wide)."""
        declared = Slot(name, payload, ttl, upgrade)
        self.slots.append(declared)
        return declared

    def answers_to(
        self, slot: Slot[P]
    ) -> Callable[
        [Callable[[HandlerContext, str, P], Awaitable[list[Reply] | None]]],
        Callable[[HandlerContext, str, P], Awaitable[list[Reply] | None]],
    ]:
        """Plain text that answers the question `slot` holds; None means "not an answer"."""

        def register(
            handler: Callable[[HandlerContext, str, P], Awaitable[list[Reply] | None]],
        ) -> Callable[[HandlerContext, str, P], Awaitable[list[Reply] | None]]:
            self.answers.append(_Answer(slot, handler, self))
            return handler

        return register

    def interrupted(
        self, slot: Slot[P]
    ) -> Callable[
        [Callable[[HandlerContext, P], Awaitable[list[Reply]]]],
        Callable[[HandlerContext, P], Awaitable[list[Reply]]],
    ]:
        """What to say (and undo) when a command arrives while `slot` still waits for an
        answer: the question is dropped, and the person learns what became of it."""

        def register(
            handler: Callable[[HandlerContext, P], Awaitable[list[Reply]]],
        ) -> Callable[[HandlerContext, P], Awaitable[list[Reply]]]:
            self.interrupts.append((slot, handler))
            return handler

        return register

    def confirms(
        self, slot: Slot[P]
    ) -> Callable[
        [Callable[[HandlerContext, P], Awaitable[list[Reply]]]],
        Callable[[HandlerContext, P], Awaitable[list[Reply]]],
    ]:
        """What "确认" (or the card's confirm button) does while `slot` holds a question."""

        def register(
            handler: Callable[[HandlerContext, P], Awaitable[list[Reply]]],
        ) -> Callable[[HandlerContext, P], Awaitable[list[Reply]]]:
            self.confirmations.append((slot, handler))
            return handler

        return register

    def event(
        self, kind: type[E]
    ) -> Callable[
        [Callable[[HandlerContext, E], Awaitable[list[Reply]]]],
        Callable[[HandlerContext, E], Awaitable[list[Reply]]],
    ]:
        def register(
            handler: Callable[[HandlerContext, E], Awaitable[list[Reply]]],
        ) -> Callable[[HandlerContext, E], Awaitable[list[Reply]]]:
            self.events.append((kind, handler))
            return handler

        return register

    def job(
        self,
        name: str,
        schedule: Schedule,
        *,
        workdays_only: bool = False,
        grace: timedelta = DEFAULT_GRACE,
    ) -> Callable[[JobFn], JobFn]:
        """Declare a scheduled job beside this audience's commands (see handlers.kit.jobs)."""
        return declare(
            self.jobs, name, schedule, workdays_only=workdays_only, grace=grace, audience=self.name
        )

    def otherwise(self, handler: OtherwiseHandler) -> OtherwiseHandler:
        """What a person says that no command or question took (text, a picture, a file).

        Asked before the "did not understand" answer and before the events; None passes on.
        """
        self.otherwise_handlers.append(handler)
        return handler


class Dispatcher:
    """Routes one message to one handler; the only place that knows every router."""

    def __init__(self, routers: Iterable[Router]) -> None:
        self.routers = list(routers)
        self._by_word: list[tuple[str, Command]] = sorted(
            ((word, cmd) for r in self.routers for cmd in r.commands for word in cmd.words),
            key=lambda item: -len(item[0]),
        )
        self._cards: dict[str, _CardRoute] = {}
        self._legacy_cards: dict[str, _CardRoute] = {}
        for r in self.routers:
            for route in r.cards:
                self._add_card(route)
        self._answers = {a.slot.name: a for r in self.routers for a in r.answers}
        self._interrupts = {s.name: (s, h) for r in self.routers for s, h in r.interrupts}
        self._confirmations = {s.name: (s, h, r) for r in self.routers for s, h in r.confirmations}
        self._check_unique()

    def _add_card(self, route: _CardRoute) -> None:
        head = route.key.head()
        if head in self._cards:
            raise ValueError(f"two card keys named {head}")
        self._cards[head] = route
        if route.key.legacy is not None:
            self._legacy_cards[route.key.legacy] = route

    def _check_unique(self) -> None:
        words = [w for w, _ in self._by_word]
        doubled = {w for w in words if words.count(w) > 1}
        if doubled:
            raise ValueError(f"command words registered twice: {sorted(doubled)}")
        names = [s.name for r in self.routers for s in r.slots]
        if len(names) != len(set(names)):
            raise ValueError(f"conversation slot names must be unique: {names}")

    # The catalogue help reads -------------------------------------------------------------

    @property
    def commands(self) -> list[Command]:
        return [cmd for r in self.routers for cmd in r.commands]

    def commands_for(self, role: str) -> list[Command]:
        return [cmd for cmd in self.commands if cmd.allows(role)]

    @property
    def jobs(self) -> list[Job]:
        """Every router's jobs, for the scheduler and `wecrm jobs`."""
        return [job for r in self.routers for job in r.jobs]

    def find_command(self, word: str) -> Command | None:
        word = normalize_text(word).lower()
        return next((cmd for w, cmd in self._by_word if w == word), None)

    def audience_title(self, command: Command) -> str:
        return command.router.title

    def match(self, text: str) -> tuple[Command, str] | None:
        """The command the text starts with (longest word wins) and the rest as its argument."""
        lowered = text.lower()
        for word, cmd in self._by_word:
            if not lowered.startswith(word):
                continue
            rest = text[len(word) :]
            # An English word needs a boundary: "helpful" is not "help".
            if _LATIN_WORD.fullmatch(word) and rest[:1].isascii() and rest[:1].isalnum():
                continue
            return cmd, rest.lstrip(" :,").strip()
        return None

    def suggest(self, text: str, role: str, limit: int = 2) -> list[str]:
        """Commands the asker may run that the text's start looks or sounds like (跟近 → 跟进,
        代办 → 待办, 帮组 → 帮助): input-method slips are homophones more often than typos."""
        allowed = [(w, cmd) for w, cmd in self._by_word if cmd.allows(role)]
        names: list[str] = []
        for word, cmd in allowed:
            if _CJK.search(word) and sounds_alike(text[: len(word)], word):
                names.append(cmd.name)
        head = text.split(" ", 1)[0][:8]
        found = process.extract(
            head, [w for w, _ in allowed], scorer=fuzz.ratio, limit=limit * 3, score_cutoff=60
        )
        for word, _score, _idx in found:
            close = self.find_command(word)
            if close is not None:
                names.append(close.name)
        return list(dict.fromkeys(names))[:limit]

    # Dispatch ------------------------------------------------------------------------------

    async def dispatch(self, message: Inbound, base: MessageContext) -> list[Reply]:
        """Handle one message; the caller owns the transaction and turns replies into rows."""
        if base.actor is None or base.search is None:
            return self._stranger(message, base)
        ctx = HandlerContext(
            session=base.session,
            message=message,
            clock=base.clock,
            tz=base.tz,
            actor=base.actor,
            search=base.search,
            catalogue=self,
        )
        try:
            if isinstance(message, TextMessage):
                return await self._text(normalize_text(message.text), ctx)
            if isinstance(message, CardAction):
                return await self._card(message, ctx)
            return await self._event(message, ctx)
        except StaleState as stale:
            await ctx.state.clear(
                next(s for r in self.routers for s in r.slots if s.name == stale.slot)
            )
            return [ctx.reply("errors/start_again")]

    def _stranger(self, message: Inbound, base: MessageContext) -> list[Reply]:
        """People the bot does not know get one polite answer; their system events none."""
        said_something = isinstance(message, TextMessage | CardAction) or (
            isinstance(message, OtherMessage) and message.msg_type in USER_MESSAGE_TYPES
        )
        return [base.reply("errors/not_registered")] if said_something else []

    def _refusal(self, ctx: HandlerContext, cmd_name: str, roles: frozenset[str]) -> Reply:
        titles = [ROLE_TITLES[r] for r in ROLE_TITLES if r in roles]
        return ctx.reply(
            "errors/not_for_role",
            command=cmd_name,
            allowed=titles,
            role=ROLE_TITLES.get(ctx.role, ctx.role),
        )

    async def _text(self, text: str, ctx: HandlerContext) -> list[Reply]:
        matched = self.match(text)
        if matched is not None:
            cmd, argument = matched
            if not cmd.allows(ctx.role):
                return [self._refusal(ctx, cmd.name, cmd.roles)]
            ctx.command = cmd
            notes = await self._interrupt(ctx)
            return notes + await cmd.handler(ctx, argument)
        for live in await ctx.state.live(self._answers):
            answer = self._answers[live.name]
            if ctx.role not in answer.router.roles:
                continue
            waiting = answer.slot.decode(live.value)
            replies = await answer.handler(ctx, text, waiting)
            if replies is not None:
                return replies
        taken = await self._otherwise(ctx)
        if taken is not None:
            return taken
        return [
            ctx.reply("help/unknown", text=text[:30], suggestions=self.suggest(text, ctx.role))
        ]

    async def confirm(self, ctx: HandlerContext) -> list[Reply] | None:
        """Run the newest pending confirmation the asker may answer; None when none waits."""
        for live in await ctx.state.live(self._confirmations):
            slot, handler, router = self._confirmations[live.name]
            if ctx.role in router.roles:
                return await handler(ctx, slot.decode(live.value))
        return None

    async def _interrupt(self, ctx: HandlerContext) -> list[Reply]:
        notes: list[Reply] = []
        for live in await ctx.state.live(self._interrupts):
            slot, handler = self._interrupts[live.name]
            await ctx.state.clear(slot)
            notes += await handler(ctx, slot.decode(live.value))
        return notes

    async def _otherwise(self, ctx: HandlerContext) -> list[Reply] | None:
        message = ctx.message
        if not isinstance(message, TextMessage | OtherMessage):
            return None
        for r in self.routers:
            if ctx.role not in r.roles:
                continue
            for handler in r.otherwise_handlers:
                replies = await handler(ctx, message)
                if replies is not None:
                    return replies
        return None

    async def _card(self, action: CardAction, ctx: HandlerContext) -> list[Reply]:
        head, _, fields = action.event_key.partition(":")
        route = self._cards.get(head)
        if route is None:
            route = self._legacy_cards.get(f"{head}:") or self._legacy_cards.get(head)
        if route is None:
            return [ctx.reply("errors/stale_card")]
        if ctx.role not in route.router.roles:
            return [self._refusal(ctx, "这个按钮", route.router.roles)]
        try:
            key = route.key.unpack(fields)
        except CardKeyError:
            return [ctx.reply("errors/stale_card")]
        return await route.handler(ctx, key)

    async def _event(self, message: Inbound, ctx: HandlerContext) -> list[Reply]:
        if isinstance(message, OtherMessage) and message.msg_type in USER_MESSAGE_TYPES:
            taken = await self._otherwise(ctx)
            if taken is not None:
                return taken
        for r in self.routers:
            if ctx.role not in r.roles:
                continue
            for kind, handler in r.events:
                if isinstance(message, kind):
                    return await handler(ctx, message)
        return []
