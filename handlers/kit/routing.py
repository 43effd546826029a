"""Command routing: Chinese command words first, English aliases, no space needed after a word.

Routers are declared per audience module and composed by a Dispatcher, as aiogram does.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from rapidfuzz import fuzz, process

from handlers.kit.context import HandlerContext
from handlers.kit.inbound import CardAction, Inbound, TextMessage
from handlers.kit.jobs import DEFAULT_GRACE, Job, JobFn, Schedule, declare
from handlers.kit.replies import Reply

CommandHandler = Callable[[HandlerContext, str], Awaitable[list[Reply]]]
CardHandler = Callable[[HandlerContext, CardAction, str], Awaitable[list[Reply]]]
TextHandler = Callable[[HandlerContext, str], Awaitable[list[Reply] | None]]
EventHandler = Callable[[HandlerContext, Inbound], Awaitable[list[Reply]]]

_LATIN_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Command:
    name: str
    words: tuple[str, ...]
    handler: CommandHandler
    summary: str
    usage: str
    example: str
    audience: str


def normalize_text(text: str) -> str:
    """Full-width letters, digits and punctuation to half-width; collapse runs of spaces."""
    text = unicodedata.normalize("NFKC", text).replace("\u3000", " ")
    return re.sub(r"\s+", " ", text).strip()


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: list[Command] = []
        self.card_handlers: list[tuple[str, CardHandler]] = []
        self.text_handlers: list[TextHandler] = []
        self.event_handlers: list[tuple[type[Inbound], EventHandler]] = []
        self.jobs: list[Job] = []

    def command(
        self, *words: str, summary: str, usage: str, example: str, audience: str = "all"
    ) -> Callable[[CommandHandler], CommandHandler]:
        """Register a command under its Chinese word(s) and English aliases."""

        def register(handler: CommandHandler) -> CommandHandler:
            self.commands.append(
                Command(
                    words[0],
                    tuple(w.lower() for w in words),
                    handler,
                    summary,
                    usage,
                    example,
                    audience,
                )
            )
            return handler

        return register

    def card_action(self, key_prefix: str) -> Callable[[CardHandler], CardHandler]:
        """Handle card buttons whose key starts with `key_prefix` (the rest is passed in)."""

        def register(handler: CardHandler) -> CardHandler:
            self.card_handlers.append((key_prefix, handler))
            return handler

        return register

    def text(self, handler: TextHandler) -> TextHandler:
        """A fallback for text that is no command (e.g. a bare "2" answering a list)."""
        self.text_handlers.append(handler)
        return handler

    def event(self, kind: type[Inbound]) -> Callable[[EventHandler], EventHandler]:
        def register(handler: EventHandler) -> EventHandler:
            self.event_handlers.append((kind, handler))
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


class Dispatcher:
    def __init__(self, routers: Iterable[Router], *, unknown: TextHandler) -> None:
        self.routers = list(routers)
        self._unknown = unknown
        self._by_word: list[tuple[str, Command]] = sorted(
            ((word, cmd) for r in self.routers for cmd in r.commands for word in cmd.words),
            key=lambda item: -len(item[0]),
        )

    @property
    def commands(self) -> list[Command]:
        return [cmd for r in self.routers for cmd in r.commands]

    @property
    def jobs(self) -> list[Job]:
        """Every router's jobs, for the scheduler and `wecrm jobs`."""
        return [job for r in self.routers for job in r.jobs]

    def find_command(self, word: str) -> Command | None:
        word = normalize_text(word).lower()
        return next((cmd for w, cmd in self._by_word if w == word), None)

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

    def suggest(self, text: str, limit: int = 2) -> list[str]:
        """Command words close to what was typed, for a "did you mean" hint."""
        head = text.split(" ", 1)[0][:8]
        words = [w for w, _ in self._by_word]
        found = process.extract(head, words, scorer=fuzz.ratio, limit=limit, score_cutoff=60)
        names: list[str] = []
        for word, _score, _idx in found:
            cmd = self.find_command(word)
            if cmd and cmd.name not in names:
                names.append(cmd.name)
        return names

    async def dispatch(self, message: Inbound, ctx: HandlerContext) -> list[Reply]:
        if isinstance(message, TextMessage):
            return await self._dispatch_text(normalize_text(message.text), ctx)
        if isinstance(message, CardAction):
            for r in self.routers:
                for prefix, card_handler in r.card_handlers:
                    if message.event_key.startswith(prefix):
                        return await card_handler(ctx, message, message.event_key[len(prefix) :])
            return []
        for r in self.routers:
            for kind, event_handler in r.event_handlers:
                if isinstance(message, kind):
                    return await event_handler(ctx, message)
        return []

    async def _dispatch_text(self, text: str, ctx: HandlerContext) -> list[Reply]:
        matched = self.match(text)
        if matched is not None:
            cmd, argument = matched
            return await cmd.handler(ctx, argument)
        for r in self.routers:
            for text_handler in r.text_handlers:
                replies = await text_handler(ctx, text)
                if replies is not None:
                    return replies
        return await self._unknown(ctx, text) or []
