"""The kit's typed pieces: card keys that round-trip and reject forgeries, slots that read
what an older version stored or say they cannot, and a dispatcher that refuses ambiguity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from handlers.dispatch import dispatcher
from handlers.kit.cards import CardKey, CardKeyError
from handlers.kit.routing import Dispatcher, Router
from handlers.kit.state import Slot, StaleState


@dataclass(frozen=True)
class Move(CardKey, prefix="move"):
    deal_id: int
    stage: str


_router = Router("test.kit", audience="test", title="测试")
_router.card(Move)


def test_a_card_key_round_trips_with_its_router_namespace() -> None:
    key = Move(42, "won").pack()
    assert key == "test.kit.move:42:won"
    head, _, fields = key.partition(":")
    assert head == Move.head()
    assert Move.unpack(fields) == Move(42, "won")


@pytest.mark.parametrize("fields", ["", "42", "x:won", "42:won:extra", "9" * 30 + ":won"])
def test_a_broken_card_key_is_refused(fields: str) -> None:
    with pytest.raises(CardKeyError):
        Move.unpack(fields)


def test_a_card_key_belongs_to_one_router() -> None:
    with pytest.raises(ValueError, match="already belongs"):
        Router("other", audience="test", title="测试").card(Move)


def test_a_field_that_would_break_the_key_is_refused() -> None:
    with pytest.raises(ValueError):
        Move(1, "a:b").pack()


@dataclass(frozen=True)
class Waiting:
    opportunity_id: int
    stage: str
    reasons: tuple[str, ...] = ()
    note: str | None = None


SLOT = Slot("waiting", Waiting, timedelta(minutes=5))


@pytest.mark.parametrize(
    "stored",
    [
        {"opportunity_id": 3, "stage": "输单"},
        {"opportunity_id": 3, "stage": "输单", "reasons": ["价格"], "note": None},
    ],
)
def test_a_slot_reads_what_was_stored_with_the_same_fields(stored: dict[str, Any]) -> None:
    value = SLOT.decode(stored)
    assert value.opportunity_id == 3 and value.stage == "输单"
    assert SLOT.decode(SLOT.encode(value)) == value


@pytest.mark.parametrize(
    "stored",
    [
        {"opportunity_id": "3", "stage": "输单"},
        {"deal": 3},
        {"opportunity_id": 3, "stage": "输单", "future_field": 1},
        {"opportunity_id": True, "stage": "输单"},
    ],
)
def test_a_slot_value_it_cannot_read_is_stale_not_a_crash(stored: dict[str, Any]) -> None:
    with pytest.raises(StaleState):
        SLOT.decode(stored)


def test_an_upgrade_reads_an_older_shape() -> None:
    upgraded = Slot(
        "waiting",
        Waiting,
        timedelta(minutes=5),
        upgrade=lambda old: Waiting(int(old["deal"]), "输单") if "deal" in old else None,
    )
    assert upgraded.decode({"deal": 7}) == Waiting(7, "输单")


def test_two_routers_cannot_claim_one_command_word() -> None:
    first = Router("a", audience="x", title="甲")
    second = Router("b", audience="x", title="乙")

    async def handler(ctx: Any, argument: str) -> list[Any]:
        return []

    first.command("同词", summary="", usage="", example="")(handler)
    second.command("同词", summary="", usage="", example="")(handler)
    with pytest.raises(ValueError, match="twice"):
        Dispatcher([first, second])


def test_the_bot_builds_and_every_command_names_who_may_use_it() -> None:
    bot = dispatcher()
    assert bot.commands and all(cmd.roles for cmd in bot.commands)
    assert {c.name for c in bot.commands_for("service")} < {c.name for c in bot.commands}


@pytest.mark.parametrize(
    ("typed", "role", "expected"),
    [
        ("跟近 云栖 电话沟通", "rep", "跟进"),
        ("代办", "rep", "待办"),
        ("帮组", "service", "帮助"),
        ("阶断 阿里 赢单", "rep", "阶段"),
        ("新客护 某某公司", "manager", "新客户"),
    ],
)
def test_input_method_slips_get_the_command_they_sound_like(
    typed: str, role: str, expected: str
) -> None:
    assert expected in dispatcher().suggest(typed, role)


def test_slips_only_suggest_what_the_asker_may_run() -> None:
    assert "跟进" not in dispatcher().suggest("跟近 云栖", "service")
