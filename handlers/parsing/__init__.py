"""Plain Chinese → values: next-step times, deal amounts, follow-up kinds; pure, clock passed in.

`when` (times), `text` (what happened vs. the next step), `amount` (money), `kinds` (follow-up
kinds from configuration). Callers import from here.
"""

from handlers.parsing.amount import find_amount, parse_amount
from handlers.parsing.kinds import FALLBACK_KIND, find_followup_kind, kind_label
from handlers.parsing.text import NextStep, looks_like_note, split_next_step
from handlers.parsing.when import DAY_PARTS, When, WhenError, WhenProblem, find_when

__all__ = [
    "DAY_PARTS",
    "FALLBACK_KIND",
    "NextStep",
    "When",
    "WhenError",
    "WhenProblem",
    "find_amount",
    "find_followup_kind",
    "find_when",
    "kind_label",
    "looks_like_note",
    "parse_amount",
    "split_next_step",
]
