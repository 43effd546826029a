"""Follow-up kinds found in a note, from the configured kinds only (config_data), so a kind an
admin adds is understood in chat the moment it is saved."""

import re
from collections.abc import Sequence
from functools import lru_cache

from crm_store.config_data import FollowupKind

__all__ = ["FALLBACK_KIND", "find_followup_kind", "kind_label"]

FALLBACK_KIND = "other"  # what a note naming no kind is filed as; never detected in a note


@lru_cache(maxsize=32)
def _pattern(kinds: tuple[FollowupKind, ...]) -> tuple[re.Pattern[str], dict[str, FollowupKind]]:
    """One alternation of every label and synonym, longest first; the first kind owns a word."""
    owner: dict[str, FollowupKind] = {}
    for kind in kinds:
        if kind.code == FALLBACK_KIND:
            continue
        for word in (kind.label, *kind.synonyms):
            word = word.strip().casefold()
            if word:
                owner.setdefault(word, kind)

    def alternative(word: str) -> str:
        # An ASCII word ("call") counts only as a whole word, never inside "recall".
        escaped = re.escape(word)
        return rf"(?<![a-z]){escaped}(?![a-z])" if word.isascii() else escaped

    words = sorted(owner, key=len, reverse=True)
    pattern = "|".join(alternative(w) for w in words) or r"(?!x)x"
    return re.compile(pattern, re.IGNORECASE), owner


def find_followup_kind(text: str, kinds: Sequence[FollowupKind]) -> FollowupKind | None:
    """The kind named first in the note (the longest word at that place); the caller defaults."""
    pattern, owner = _pattern(tuple(kinds))
    m = pattern.search(text)
    return owner[m.group().casefold()] if m else None


def kind_label(kinds: Sequence[FollowupKind], code: str) -> str:
    """The configured label of a kind code ("call" → 电话); the code itself if none is set."""
    return next((k.label for k in kinds if k.code == code), code)
