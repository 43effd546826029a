"""In-memory customer lookup: fragments, pinyin, initials and typos, only within the actor's scope.

Three inverted indexes give candidates: character pairs of the name, pinyin-syllable pairs
(every reading of polyphonic characters, so homophone typos and typed pinyin meet the same
keys) and initials/latin-word prefixes. Only the few best-counted candidates are scored with
rapidfuzz and exact string checks. Per-customer data lives in flat arrays and chunked string
blobs, so a million customers take a few hundred megabytes. One lock serialises searches
(which may run in a worker thread) with upserts and removes.
"""

from __future__ import annotations

import heapq
import itertools
import re
import threading
import unicodedata
from array import array
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeAlias

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from crm_store.names import (
    ENGLISH_LEGAL_WORDS,
    LEGAL_SUFFIXES,
    SYLLABLES,
    char_readings,
    clean_text,
    normalize_company_name,
    pinyin_keys,
    split_company_name,
)

Allowed = Callable[[int], bool] | frozenset[int] | set[int] | None
_Postings: TypeAlias = "array[int] | tuple[array[int], ...]"  # a key's slots, or a group's

MIN_SCORE = 60.0  # search lists hits from here; suggest from SUGGEST_MIN_SCORE
SUGGEST_MIN_SCORE = 35.0
RETRY_BELOW = 75.0  # no better hit: search again with typo and fuzzy-sound keys
OWN_BONUS = 4.0  # "similar score": an own customer wins within 4 points,
RECENCY_BONUS = 2.0  # a recent one within 2 (halving every 30 days of age)
RECENCY_HALF_LIFE = 30 * 86400.0
CANDIDATES = 60  # slots scored per pass
POSTINGS_BUDGET = 40_000  # postings counted per pass, rarest keys first
LOOSE_BUDGET = 20_000
GROUP_BUDGET = 5_000
TIE_SCAN = 1_000
TYPED_SCAN = 2_000
TYPED_PICKS = 16
SUB_INDEX_MAX = 5_000  # frozenset scopes up to this size get an index of their own,
SMALL_SCOPE = 50_000  # up to this size they cut postings before counting
SUB_INDEXES = 16
COMPACT_AFTER = 10_000
_CHUNK_BITS = 16
_CHUNK = 1 << _CHUNK_BITS
_HEAD = 1 << 18
_SEP = "\x1f"
_WORD = re.compile(r"[a-z0-9]+")
_WORD_HINT = re.compile(r"[A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")

_SYL_NAMES: tuple[str, ...] = tuple(sorted(SYLLABLES))
_SYL_ID: dict[str, int] = {s: i for i, s in enumerate(_SYL_NAMES)}
_SYL_EXTENSIONS: dict[str, tuple[int, ...]] = {}
for _syl in _SYL_NAMES:
    for _end in range(1, len(_syl) + 1):
        _SYL_EXTENSIONS.setdefault(_syl[:_end], ())
        _SYL_EXTENSIONS[_syl[:_end]] += (_SYL_ID[_syl],)


def _canonical(syllable: str) -> str:
    """Fold the sounds IMEs call fuzzy (z/zh, c/ch, s/sh, n/l, -n/-ng) onto one spelling."""
    for retro, flat in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if syllable.startswith(retro):
            syllable = flat + syllable[2:]
    if syllable.startswith("l"):
        syllable = "n" + syllable[1:]
    if syllable.endswith("ng"):
        syllable = syllable[:-1]
    return syllable


_LEGAL_SPELLINGS: tuple[str, ...] = tuple(
    sorted({pinyin_keys(s)[0][0] for s in LEGAL_SUFFIXES}, key=len, reverse=True)
)
_FUZZY_GROUPS: dict[str, tuple[int, ...]] = {}
for _syl in _SYL_NAMES:
    _FUZZY_GROUPS.setdefault(_canonical(_syl), ())
    _FUZZY_GROUPS[_canonical(_syl)] += (_SYL_ID[_syl],)
del _syl, _end


@dataclass(frozen=True, slots=True)
class IndexedCustomer:
    """What the index keeps of a customer: enough to match, scope and rank, nothing more."""

    id: int
    name: str
    aliases: tuple[str, ...] = ()
    owner_id: str | None = None
    last_activity: float = 0.0  # epoch seconds


@dataclass(frozen=True, slots=True)
class Hit:
    """One match: `score` is match quality (0-100); the order also weighs learned/own/recent."""

    id: int
    score: float
    matched: str
    kind: str  # exact|alias|learned|prefix|substring|pinyin|initials|fuzzy


class _Char:
    """What the scorer needs to know about one character, computed once per distinct char."""

    __slots__ = ("canon", "initials", "readings", "sounds")

    def __init__(self, char: str) -> None:
        readings = tuple(r for r in char_readings(char) if r)
        self.readings: tuple[str, ...] = readings or (char,)
        self.sounds: frozenset[object] = (
            frozenset(_SYL_ID[r] for r in readings) if readings else frozenset((char,))
        )
        self.canon: frozenset[object] = (
            frozenset(_canonical(r) for r in readings) if readings else frozenset((char,))
        )
        self.initials: tuple[str, ...] = tuple(dict.fromkeys(r[0] for r in self.readings))


_CHARS: dict[str, _Char] = {}


def _char(char: str) -> _Char:
    info = _CHARS.get(char)
    if info is None:
        info = _CHARS[char] = _Char(char)
    return info


_SYLLABLE_IDS: dict[str, tuple[int, ...]] = {}


def _syllable_ids(char: str) -> tuple[int, ...]:
    ids = _SYLLABLE_IDS.get(char)
    if ids is None:
        ids = _SYLLABLE_IDS[char] = tuple(_SYL_ID[r] for r in char_readings(char) if r)
    return ids


class _Column:
    """Append-only strings by slot: full chunks are a blob plus offsets, not a million objects."""

    __slots__ = ("_chunks", "_pending")

    def __init__(self) -> None:
        self._chunks: list[tuple[str, array[int]]] = []
        self._pending: list[str] = []

    def append(self, value: str) -> None:
        self._pending.append(value)
        if len(self._pending) == _CHUNK:
            offsets = array("I", [0])
            offsets.extend(itertools.accumulate(map(len, self._pending)))
            self._chunks.append(("".join(self._pending), offsets))
            self._pending = []

    def __getitem__(self, slot: int) -> str:
        chunk = slot >> _CHUNK_BITS
        if chunk < len(self._chunks):
            blob, offsets = self._chunks[chunk]
            at = slot & (_CHUNK - 1)
            return blob[offsets[at] : offsets[at + 1]]
        return self._pending[slot & (_CHUNK - 1)]


@dataclass(slots=True)
class _Query:
    """A query in every form the scorer compares: cleaned, core, sounds, spelling."""

    text: str
    core: str
    latin: bool
    sounds: tuple[frozenset[object], ...]
    canon: tuple[frozenset[object], ...]
    spelling: str
    units: int
    need: int


class CustomerIndex:
    """Customers by what reps remember of them; every search is confined to `allowed`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = array("q")
        self._alive = bytearray()
        self._owner = array("i")
        self._activity = array("d")
        self._core_len = bytearray()
        self._names = _Column()
        self._cores = _Column()
        self._aliases = _Column()
        self._alias_cores = _Column()
        self._owners: list[str | None] = []
        self._owner_no: dict[str | None, int] = {}
        self._sorted_upto = 0
        self._late: dict[int, int] = {}
        self._chars: defaultdict[str, array[int]] = defaultdict(_postings)
        self._sounds: defaultdict[int, array[int]] = defaultdict(_postings)
        self._prefixes: defaultdict[str, array[int]] = defaultdict(_postings)
        self._live = 0
        self._version = 0
        self._scopes: dict[frozenset[int], tuple[int, frozenset[int]]] = {}
        self._subs: dict[frozenset[int], CustomerIndex] = {}

    # ---- building and maintenance -------------------------------------------------------

    @classmethod
    def build(cls, customers: Iterable[IndexedCustomer]) -> CustomerIndex:
        """Index many customers at once; slots follow id order so ids resolve by bisection."""
        latest = {c.id: c for c in customers}
        index = cls()
        pairs: dict[str, tuple[str, tuple[int, ...]]] = {}
        for customer_id in sorted(latest):
            index._append(latest[customer_id], pairs)
        index._sorted_upto = len(index._ids)
        return index

    def __len__(self) -> int:
        """Live customers (removed and replaced ones not counted)."""
        return self._live

    def __iter__(self) -> Iterator[IndexedCustomer]:
        """The live customers as indexed, for rebuilds and exports (a snapshot)."""
        with self._lock:
            return iter([self._customer(s) for s in range(len(self._ids)) if self._alive[s]])

    def upsert(self, c: IndexedCustomer) -> None:
        """Add or replace one customer; owner or activity changes are applied in place."""
        with self._lock:
            for scope, sub in self._subs.items():
                if c.id in scope:
                    sub.upsert(c)
            slot = self._slot(c.id)
            if slot is not None:
                if self._names[slot] == c.name and self._aliases[slot] == _SEP.join(c.aliases):
                    self._owner[slot] = self._owner_index(c.owner_id)
                    self._activity[slot] = c.last_activity
                    return
                self._kill(slot, c.id)
            self._late[c.id] = len(self._ids)
            self._append(c, {})
            self._version += 1
            self._maybe_compact()

    def remove(self, customer_id: int) -> None:
        """Forget a customer; its stale postings are skipped, and dropped at compaction."""
        with self._lock:
            for scope, sub in self._subs.items():
                if customer_id in scope:
                    sub.remove(customer_id)
            slot = self._slot(customer_id)
            if slot is not None:
                self._kill(slot, customer_id)
                self._maybe_compact()

    def _kill(self, slot: int, customer_id: int) -> None:
        self._alive[slot] = 0
        self._late.pop(customer_id, None)
        self._live -= 1
        self._version += 1

    def _maybe_compact(self) -> None:
        """Rebuild once dead slots outnumber live ones, so churn cannot grow memory forever."""
        dead = len(self._ids) - self._live
        if dead > COMPACT_AFTER and dead > self._live:
            live = [self._customer(s) for s in range(len(self._ids)) if self._alive[s]]
            fresh, lock = CustomerIndex.build(live), self._lock
            self.__dict__.update(fresh.__dict__)
            self._lock = lock

    def _slot(self, customer_id: int) -> int | None:
        slot = self._late.get(customer_id)
        if slot is not None:
            return slot
        at = bisect_left(self._ids, customer_id, 0, self._sorted_upto)
        if at < self._sorted_upto and self._ids[at] == customer_id and self._alive[at]:
            return at
        return None

    def _owner_index(self, owner_id: str | None) -> int:
        number = self._owner_no.get(owner_id)
        if number is None:
            number = self._owner_no[owner_id] = len(self._owners)
            self._owners.append(owner_id)
        return number

    def _customer(self, slot: int) -> IndexedCustomer:
        aliases = self._aliases[slot]
        return IndexedCustomer(
            id=self._ids[slot],
            name=self._names[slot],
            aliases=tuple(aliases.split(_SEP)) if aliases else (),
            owner_id=self._owners[self._owner[slot]],
            last_activity=self._activity[slot],
        )

    def _append(self, c: IndexedCustomer, pairs: dict[str, tuple[str, tuple[int, ...]]]) -> None:
        slot = len(self._ids)
        prefix, core = split_company_name(c.name)
        if c.aliases:
            alias_cores = [normalize_company_name(a) for a in c.aliases]
            aliases, joined_cores = _SEP.join(c.aliases), _SEP.join(alias_cores)
        else:
            alias_cores, aliases, joined_cores = [], "", ""
        self._ids.append(c.id)
        self._alive.append(1)
        self._owner.append(self._owner_index(c.owner_id))
        self._activity.append(c.last_activity)
        self._core_len.append(min(len(core), 255))
        self._names.append(c.name)
        self._cores.append(core)
        self._aliases.append(aliases)
        self._alias_cores.append(joined_cores)
        self._live += 1

        chars: set[str] = set()
        sounds: set[int] = set()
        prefixes: set[str] = set()
        texts = [(prefix + core, len(prefix))] if prefix else [(core, 0)]
        texts.extend((a, 0) for a in alias_cores if a)
        for text, start in texts:
            for at in range(len(text) - 1):
                pair = text[at : at + 2]
                known = pairs.get(pair) or _pair_keys(pair, pairs)
                chars.add(known[0])
                if at >= start:
                    sounds.update(known[1])
            head = text[start:] if start else text
            if head:
                sounds.update(_HEADS.get(head[0]) or _head_keys(head[0]))
                if len(head) > 1:
                    _initials_keys(head, prefixes)
        chars.discard("")
        if aliases or c.name.isascii() or _WORD_HINT.search(c.name):
            for text in (c.name, *c.aliases):
                for word in _words(text):
                    prefixes.add(word[:2])
                    prefixes.add(word[:3])
        table = self._chars
        for key in chars:
            table[key].append(slot)
        numbers = self._sounds
        for number in sounds:
            numbers[number].append(slot)
        table = self._prefixes
        for key in prefixes:
            table[key].append(slot)

    # ---- searching ----------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        allowed: Allowed = None,
        owner_id: str | None = None,
        learned: Mapping[int, float] | None = None,
        limit: int = 5,
    ) -> list[Hit]:
        """Best matches the actor may see: exact and alias first, then learned, own, recent.

        `allowed` filters before ranking, so customers out of scope neither show nor crowd
        out the ones in scope. `learned` maps ids the rep picked before for these words to a
        boost; they are listed even when the words do not match their name.
        """
        return self._run(query, allowed, owner_id, learned, limit, MIN_SCORE, loose=False)

    def suggest(
        self,
        query: str,
        *,
        allowed: Allowed = None,
        owner_id: str | None = None,
        limit: int = 3,
    ) -> list[Hit]:
        """Did-you-mean hits: weaker and sound-alike matches, for when search found nothing."""
        return self._run(query, allowed, owner_id, None, limit, SUGGEST_MIN_SCORE, loose=True)

    def _run(
        self,
        query: str,
        allowed: Allowed,
        owner_id: str | None,
        learned: Mapping[int, float] | None,
        limit: int,
        min_score: float,
        *,
        loose: bool,
    ) -> list[Hit]:
        if limit <= 0:
            return []
        if isinstance(allowed, frozenset) and len(allowed) <= min(SUB_INDEX_MAX, self._live // 8):
            with self._lock:
                sub = self._sub_index(allowed)
            return sub._run(query, None, owner_id, learned, limit, min_score, loose=loose)
        q = _parse(query)
        permitted = _permission(allowed)
        with self._lock:
            own = self._owner_no.get(owner_id, -1) if owner_id is not None else -1
            boosts: dict[int, float] = {}
            for customer_id, boost in (learned or {}).items():
                slot = self._slot(customer_id)
                if slot is not None and (permitted is None or permitted(customer_id)):
                    boosts[slot] = boost
            scored: dict[int, tuple[float, str, str]] = {}
            if q is not None:
                scope = self._scope_slots(allowed)
                scored = self._gather(q, scope, permitted, own, limit, loose=loose)
            for slot in boosts:
                if slot not in scored:
                    scored[slot] = self._score(slot, q) if q else (0.0, self._names[slot], "")
            return self._rank(scored, boosts, own, limit, min_score)

    def _gather(
        self,
        q: _Query,
        scope: frozenset[int] | None,
        permitted: Callable[[int], bool] | None,
        own: int,
        limit: int,
        *,
        loose: bool,
    ) -> dict[int, tuple[float, str, str]]:
        """Score the likeliest slots; if none scores well, add typo and fuzzy-sound keys."""
        width = max(CANDIDATES, limit * 8)
        post_filter = permitted if scope is None else None
        strict = self._postings(q, loose=False)
        counts = self._count(list(strict.values()), scope, budget=POSTINGS_BUDGET)
        scored = {s: self._score(s, q) for s in self._choose(counts, post_filter, own, width, q)}
        typed = [p for k, p in strict.items() if isinstance(k, str) and k.isascii()]
        for slot in self._typed(typed, scope, permitted, own, q):
            if slot not in scored:
                scored[slot] = self._score(slot, q)
        if loose or max((v[0] for v in scored.values()), default=0.0) < RETRY_BELOW:
            relaxed = self._postings(q, loose=True)
            extra = [p for k, p in relaxed.items() if k not in strict]
            self._count(extra, scope, budget=LOOSE_BUDGET, into=counts)
            for slot in self._choose(counts, post_filter, own, width, q, loose=True):
                if slot not in scored:
                    scored[slot] = self._score(slot, q)
        return scored

    def _sub_index(self, scope: frozenset[int]) -> CustomerIndex:
        """An index of just a small scope (a rep's customers), kept in step by upsert/remove.

        Searching it costs what the scope costs, however large the whole index grows.
        """
        sub = self._subs.pop(scope, None)
        if sub is None:
            slots = sorted(s for s in map(self._slot, scope) if s is not None)
            sub = CustomerIndex.build(self._customer(s) for s in slots)
            if len(self._subs) >= SUB_INDEXES:
                del self._subs[next(iter(self._subs))]
        self._subs[scope] = sub
        return sub

    def _scope_slots(self, allowed: Allowed) -> frozenset[int] | None:
        """Slots of a mid-sized frozenset scope (cached), so postings are cut to it early."""
        if not isinstance(allowed, frozenset) or len(allowed) > SMALL_SCOPE:
            return None
        cached = self._scopes.get(allowed)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        slots = frozenset(s for s in map(self._slot, allowed) if s is not None)
        if len(self._scopes) >= 16:
            del self._scopes[next(iter(self._scopes))]
        self._scopes[allowed] = (self._version, slots)
        return slots

    def _postings(self, q: _Query, *, loose: bool) -> dict[str | frozenset[int], _Postings]:
        """Postings per query key: character pairs, syllable-pair groups, initials/words.

        A group of alternative syllable pairs stays a tuple of lists; `_count` merges it
        only if the budget reaches it.
        """
        found: dict[str | frozenset[int], _Postings] = {}
        for key in _query_char_keys(q):
            if postings := self._chars.get(key):
                found[key] = postings
        for group in _query_sound_groups(q, loose=loose):
            lists = sorted((p for p in map(self._sounds.get, group) if p), key=len)
            while len(lists) > 1 and sum(map(len, lists)) > GROUP_BUDGET:
                lists.pop()
            if len(lists) == 1:
                found[group] = lists[0]
            elif lists:
                found[group] = tuple(lists)
        for key in _query_prefix_keys(q):
            if postings := self._prefixes.get(key):
                found[key] = postings
        return found

    def _count(
        self,
        lists: list[_Postings],
        scope: frozenset[int] | None,
        *,
        budget: int,
        into: Counter[int] | None = None,
    ) -> Counter[int]:
        """How many query keys each slot shares, rarest keys first.

        Keys past `budget` postings are skipped: a common word says little that the rarer
        keys have not said, and counting it would cost more than all the rest.
        """
        lists.sort(key=_size)
        counts: Counter[int] = Counter() if into is None else into
        total = 0
        for postings in lists:
            size = _size(postings)
            total += size
            if total > budget and total > size:
                break
            slots = postings if isinstance(postings, array) else set().union(*postings)
            counts.update(slots if scope is None else scope.intersection(slots))
        return counts

    def _typed(
        self,
        lists: list[_Postings],
        scope: frozenset[int] | None,
        permitted: Callable[[int], bool] | None,
        own: int,
        q: _Query,
    ) -> list[int]:
        """A few names whose initials or latin words start like the query, whatever the counts.

        One initials key is a single count against several syllable pairs, yet "albb" or
        "tencent" mean exactly those names.
        """
        alive, ids, core_len, owner = self._alive, self._ids, self._core_len, self._owner
        found: list[int] = []
        for postings in lists:
            if not isinstance(postings, array) or len(postings) > TYPED_SCAN:
                continue
            found += (
                s
                for s in postings
                if alive[s]
                and (scope is None or s in scope)
                and (permitted is None or permitted(ids[s]))
            )
        units = q.units
        return heapq.nlargest(
            TYPED_PICKS, found, key=lambda s: (-abs(core_len[s] - units), owner[s] == own)
        )

    def _choose(
        self,
        counts: Counter[int],
        permitted: Callable[[int], bool] | None,
        own: int,
        width: int,
        q: _Query,
        *,
        loose: bool = False,
    ) -> list[int]:
        """The `width` most promising slots: most shared keys, then nearest length, own, recent.

        Strictly, a slot also needs half the best count; loosely (typos) any count will do.
        """
        alive, ids = self._alive, self._ids
        pool = (
            counts if permitted is None else {s: n for s, n in counts.items() if permitted(ids[s])}
        )
        if not pool:
            return []
        histogram = Counter(pool.values())
        best, floor = _count_floor(histogram, width)
        floor = max(floor, q.need) if loose else max(floor, q.need, (best + 1) // 2)
        if sum(n for count, n in histogram.items() if count >= floor) <= TIE_SCAN:
            chosen = [s for s, n in pool.items() if n >= floor and alive[s]]
        else:  # a common word alone: the names above it, and any thousand of its ties
            chosen = [s for s, n in pool.items() if n > floor and alive[s]]
            ties = (s for s, n in pool.items() if n == floor and alive[s])
            chosen += itertools.islice(ties, TIE_SCAN)
        if len(chosen) <= width:
            return chosen
        core_len, owner, activity = self._core_len, self._owner, self._activity
        units = q.units

        def promise(slot: int) -> tuple[int, int, bool, float]:
            return pool[slot], -abs(core_len[slot] - units), owner[slot] == own, activity[slot]

        return heapq.nlargest(width, chosen, key=promise)

    def _rank(
        self,
        scored: dict[int, tuple[float, str, str]],
        boosts: dict[int, float],
        own: int,
        limit: int,
        min_score: float,
    ) -> list[Hit]:
        """Exact names, then aliases, then learned picks; then score plus own/recent bonus."""
        kept = {s: v for s, v in scored.items() if v[0] >= min_score or s in boosts}
        if not kept:
            return []
        activity = self._activity
        newest = max(activity[s] for s in kept)

        def order(slot: int) -> tuple[int, float, float, float]:
            score, _, kind = kept[slot]
            if kind == "exact":
                tier = 4 if score >= 100.0 else 3
            else:
                tier = 2 if kind == "alias" else 1 if slot in boosts else 0
            age = max(newest - activity[slot], 0.0)
            bonus = RECENCY_BONUS * 0.5 ** (age / RECENCY_HALF_LIFE)
            if self._owner[slot] == own:
                bonus += OWN_BONUS
            return tier, boosts.get(slot, 0.0), score + bonus, activity[slot]

        hits = []
        for slot in heapq.nlargest(limit, kept, key=order):
            score, matched, kind = kept[slot]
            if slot in boosts and kind not in ("exact", "alias"):
                kind = "learned"
            hits.append(Hit(self._ids[slot], round(score, 1), matched, kind))
        return hits

    def _score(self, slot: int, q: _Query) -> tuple[float, str, str]:
        """How well one customer matches: (score 0-100, the text that matched, kind)."""
        name = self._names[slot]
        core = self._cores[slot]
        if q.core == core:
            return (100.0 if q.text == clean_text(name) else 99.0), name, "exact"
        alias_text = self._aliases[slot]
        aliases: list[tuple[str, str]] = []
        if alias_text:
            raw = alias_text.split(_SEP)
            cores = self._alias_cores[slot].split(_SEP)
            aliases = list(zip(raw, cores, strict=True))
            for alias, alias_core in aliases:
                if q.core == alias_core or q.text == clean_text(alias):
                    return 98.0, alias, "alias"
        score, kind = _text_score(q, core, name)
        matched = name
        for alias, alias_core in aliases:
            alias_score, alias_kind = _text_score(q, alias_core, alias)
            if alias_score - 3.0 > score:
                score, kind, matched = alias_score - 3.0, alias_kind, alias
        return score, matched, kind


def _postings() -> array[int]:
    return array("i")


def _size(postings: _Postings) -> int:
    return len(postings) if isinstance(postings, array) else sum(map(len, postings))


def _words(text: str) -> list[str]:
    """Latin and digit words ("Alibaba Group" -> alibaba, group), one-letter and legal ones out."""
    found = _WORD.findall(unicodedata.normalize("NFKC", text).lower())
    return [w for w in found if len(w) > 1 and w not in ENGLISH_LEGAL_WORDS]


def _pair_keys(
    pair: str, cache: dict[str, tuple[str, tuple[int, ...]]]
) -> tuple[str, tuple[int, ...]]:
    """A character pair's character key ("" for ASCII pairs) and syllable-bigram keys.

    The first three readings of each character count: pypinyin lists rarer ones after.
    """
    left, right = _syllable_ids(pair[0])[:3], _syllable_ids(pair[1])[:3]
    _char(pair[0]), _char(pair[1])  # warm the scorer's cache while building
    keys = ("" if pair.isascii() else pair, tuple(a << 9 | b for a in left for b in right))
    cache[pair] = keys
    return keys


_HEADS: dict[str, tuple[int, ...]] = {}


def _head_keys(char: str) -> tuple[int, ...]:
    keys = _HEADS[char] = tuple(_HEAD | i for i in _syllable_ids(char)[:3])
    return keys


def _initials_keys(text: str, keys: set[str]) -> None:
    """Initials of the first two and three characters, every reading of each (capped)."""
    if len(text) < 2:
        return
    firsts = [(_CHARS.get(c) or _char(c)).initials for c in text[:3]]
    if len(firsts[0]) == len(firsts[1]) == len(firsts[-1]) == 1:
        joined = firsts[0][0] + firsts[1][0] + firsts[-1][0]
        keys.add(joined[:2])
        keys.add(joined[: len(firsts)])
        return
    for length in range(2, len(firsts) + 1):
        keys.update("".join(c) for c in itertools.islice(itertools.product(*firsts[:length]), 8))


def _count_floor(histogram: Counter[int], width: int) -> tuple[int, int]:
    """The best count, and the smallest count that still keeps `width` candidates."""
    ordered = sorted(histogram, reverse=True)
    kept = 0
    for count in ordered:
        kept += histogram[count]
        if kept >= width:
            return ordered[0], count
    return ordered[0], 0


def _permission(allowed: Allowed) -> Callable[[int], bool] | None:
    if allowed is None:
        return None
    if isinstance(allowed, frozenset | set):
        return allowed.__contains__
    return allowed


# ---- query analysis ---------------------------------------------------------------------


def _parse(query: str) -> _Query | None:
    text = clean_text(query)
    if not text:
        return None
    core = normalize_company_name(query) or text
    latin = text.isascii()
    if latin and text.endswith(_LEGAL_SPELLINGS):  # "huaweijishuyouxiangongsi"
        tail = next(t for t in _LEGAL_SPELLINGS if text.endswith(t))
        if len(text) - len(tail) >= 4:
            text = core = text[: -len(tail)]
    infos = [_char(c) for c in core]
    units = need = len(core)
    if latin:
        readings = _segmentations(text)
        units = min((len(s) for s in readings), default=len(text))
        need = units if readings else 0
    else:
        need = 2 * units - 2
    return _Query(
        text=text,
        core=core,
        latin=latin,
        sounds=tuple(i.sounds for i in infos),
        canon=tuple(i.canon for i in infos),
        spelling=text if latin else "".join(i.readings[0] for i in infos),
        units=units,
        need=max(1, need // 4),
    )


def _query_char_keys(q: _Query) -> set[str]:
    keys: set[str] = set()
    for text in {q.core, q.text}:
        keys.update(p for p in (text[i : i + 2] for i in range(len(text) - 1)) if not p.isascii())
    return keys


def _query_prefix_keys(q: _Query) -> set[str]:
    return {w[:3] for w in _words(q.text)}


def _query_sound_groups(q: _Query, *, loose: bool) -> set[frozenset[int]]:
    """Syllable-bigram keys of the query lattice, one group per pair of positions.

    A name sharing any key of a group shares that pair once: alternative readings of one
    pair must not outweigh a second pair that matches.
    """
    groups: set[frozenset[int]] = set()

    def add(left: tuple[int, ...], right: tuple[int, ...]) -> None:
        if left and right:
            pairs = itertools.islice((a << 9 | b for a in left for b in right), 256)
            groups.add(frozenset(pairs))

    for positions in _lattices(q, loose=loose):
        if len(positions) == 1 and positions[0]:
            groups.add(frozenset(_HEAD | i for i in positions[0]))
        for left, right in itertools.pairwise(positions):
            add(left, right)
        for left, gap, right in zip(positions, positions[1:], positions[2:], strict=False):
            if not gap:
                add(left, right)
        if loose and q.latin:
            for at, here in enumerate(positions):
                if len(here) == 1:  # one syllable mistyped: "zhihang" may be 致尚 (zhishang)
                    near = _near_syllables(_SYL_NAMES[here[0]])
                    add(positions[at - 1][:8] if at else (), near)
                    add(near, positions[at + 1][:8] if at + 1 < len(positions) else ())
    return groups


def _lattices(q: _Query, *, loose: bool) -> list[list[tuple[int, ...]]]:
    """Possible syllable sequences of the query; each position lists the syllable ids it may be.

    A Han character stands for its usual reading (the index holds every reading, so a typo
    picked by that reading still meets the right name); loosely, for all its readings and
    their fuzzy sounds too.
    """
    runs: list[list[list[tuple[int, ...]]]] = []
    word = ""

    def close_word() -> None:
        nonlocal word
        if word:
            runs.append([list(s) for s in _segmentations(word, typos=loose)] or [[()]])
            word = ""

    for char in q.text if q.latin else q.core:
        ids = _syllable_ids(char)
        if ids:
            close_word()
            if loose:
                ids = tuple(
                    dict.fromkeys(x for i in ids for x in _FUZZY_GROUPS[_canonical(_SYL_NAMES[i])])
                )
            runs.append([[ids if loose else ids[:1]]])
        elif char.isascii() and char.isalpha():
            word += char
        else:
            close_word()
            runs.append([[()]])
    close_word()
    return [
        [p for part in combo for p in part]
        for combo in itertools.islice(itertools.product(*runs), 8)
    ]


@lru_cache(maxsize=4096)
def _segmentations(word: str, *, typos: bool = False) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """Ways to read a latin word as pinyin; the last syllable may be unfinished ("alibab").

    A word that is no clean pinyin keeps its syllables around the garbled chunk, which
    stands for anything. With `typos`, the likeliest misspellings are read too, a garbled
    chunk standing for the syllables one edit away from it.
    """
    readings = _clean_segmentations(word, 0, {})[:8]
    if not readings and len(word) >= 4 and not typos:
        pieces = _cheapest_paths(word, by_letter=False)[0]
        positions = [(_SYL_ID[p],) if p in _SYL_ID else () for p in pieces[:-1]]
        positions.append(_SYL_EXTENSIONS.get(pieces[-1], ()))
        return (tuple(positions),) if sum(map(bool, positions)) > 1 else ()
    if typos and len(word) >= 4:
        readings = [*readings[:6], *_typo_segmentations(word)]
    result: list[tuple[tuple[int, ...], ...]] = []
    for pieces in readings:
        positions = [_piece_ids(p) for p in pieces[:-1]]
        positions.append(_SYL_EXTENSIONS.get(pieces[-1]) or _near_syllables(pieces[-1]))
        result.append(tuple(positions))
    return tuple(dict.fromkeys(result))


def _piece_ids(piece: str) -> tuple[int, ...]:
    syllable = _SYL_ID.get(piece)
    if syllable is not None:
        return (syllable,)
    return _near_syllables(piece)


def _deletions(text: str) -> set[str]:
    return {text[:i] + text[i + 1 :] for i in range(len(text))}


_BY_DELETION: dict[str, set[str]] = {}
for _syl in _SYL_NAMES:
    for _variant in _deletions(_syl) | {_syl}:
        _BY_DELETION.setdefault(_variant, set()).add(_syl)
del _syl, _variant


@lru_cache(maxsize=8192)
def _near_syllables(piece: str) -> tuple[int, ...]:
    """Syllables one edit (or swap) away from `piece`, itself excluded, via a deletion index."""
    found: set[str] = set()
    for variant in _deletions(piece) | {piece}:
        found |= _BY_DELETION.get(variant, set())
    found = {s for s in found if Levenshtein.distance(piece, s, score_cutoff=1) <= 1}
    found.update(s for s in _swaps(piece) if s in _SYL_ID)
    found.discard(piece)
    return tuple(sorted(_SYL_ID[s] for s in found))


def _swaps(text: str) -> set[str]:
    """Adjacent letters swapped: "hau" for hua."""
    return {text[:i] + text[i + 1] + text[i] + text[i + 2 :] for i in range(len(text) - 1)}


def _clean_segmentations(
    word: str, start: int, memo: dict[int, list[list[str]]]
) -> list[list[str]]:
    if start == len(word):
        return [[]]
    if start in memo:
        return memo[start]
    found: list[list[str]] = []
    for end in range(min(len(word), start + 6), start, -1):
        piece = word[start:end]
        if piece in _SYL_ID:
            found.extend([piece, *rest] for rest in _clean_segmentations(word, end, memo))
        elif end == len(word) and piece in _SYL_EXTENSIONS:
            found.append([piece])
        if len(found) >= 8:
            break
    memo[start] = found
    return found


def _typo_segmentations(word: str) -> list[list[str]]:
    """The likeliest readings of a mistyped word, under two costs of a non-syllable chunk.

    Counting chunks keeps "dog" whole (dong); counting letters keeps "xiaoilv" apart
    (xiao + i + lv, the i a dropped "mi"). A chunk no syllable is one edit from costs triple.
    Ties are kept, fewest pieces first: "hunng" is huang, or hu + nong.
    """
    found: dict[tuple[str, ...], None] = {}
    for by_letter in (False, True):
        for path in _cheapest_paths(word, by_letter=by_letter):
            found[tuple(path)] = None
    return [list(p) for p in found][:8]


def _cheapest_paths(word: str, *, by_letter: bool) -> list[list[str]]:
    best = [1 << 30] * (len(word) + 1)
    back: list[list[int]] = [[] for _ in range(len(word) + 1)]
    best[0] = 0
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - 6), end):
            piece = word[start:end]
            if piece in _SYL_ID or (end == len(word) and piece in _SYL_EXTENSIONS):
                penalty = 0
            else:
                penalty = (len(piece) if by_letter else 1) * (1 if _near_syllables(piece) else 3)
            cost = best[start] + penalty
            if cost < best[end]:
                best[end], back[end] = cost, [start]
            elif cost == best[end]:
                back[end].append(start)

    def paths(end: int) -> Iterator[list[str]]:
        if not end:
            yield []
            return
        for start in back[end]:
            for path in paths(start):
                yield [*path, word[start:end]]

    return sorted(itertools.islice(paths(len(word)), 32), key=len)[:4]


# ---- scoring ----------------------------------------------------------------------------


def _text_score(q: _Query, core: str, display: str) -> tuple[float, str]:
    """Best of the character, sound, initials and fuzzy views of one name or alias core."""
    best, kind = 0.0, "fuzzy"
    if not core:
        return best, kind
    if core.startswith(q.core):
        best, kind = 82.0 + 15.0 * len(q.core) / len(core), "prefix"
    elif q.core in core:
        best, kind = 72.0 + 15.0 * len(q.core) / len(core), "substring"
    if q.text != q.core or not best:
        full = clean_text(display)
        if full.startswith(q.text):
            score, how = 82.0 + 15.0 * len(q.text) / len(full), "prefix"
        elif q.text in full:
            score, how = 72.0 + 15.0 * len(q.text) / len(full), "substring"
        else:
            score, how = 0.0, kind
        if score > best:
            best, kind = score, how
    if best >= 92.0:
        return best, kind
    infos = [_char(c) for c in core]
    if q.latin:
        score, how = _latin_score(q.text, infos)
    elif best < 80.0:
        score, how = _sound_score(q, infos, core)
    else:
        score, how = 0.0, kind
    if score > best:
        best, kind = score, how
    if best < 72.0:
        spelling = "".join(i.readings[0] for i in infos)
        ratio = fuzz.ratio(q.spelling, spelling)
        if len(q.spelling) < len(spelling):
            ratio = max(ratio, 0.9 * fuzz.ratio(q.spelling, spelling[: len(q.spelling)]))
        if not q.latin:  # typed characters: their sound is a weaker clue than they are
            ratio = max(0.875 * ratio, 0.95 * fuzz.ratio(q.core, core))
        if 0.8 * ratio > best:
            best, kind = 0.8 * ratio, "fuzzy"
    return best, kind


def _sound_score(q: _Query, infos: list[_Char], core: str) -> tuple[float, str]:
    """Homophones ("腾迅" for 腾讯) rank below typed characters, fuzzy sounds lower still.

    Among sound-alikes, the one sharing more of the typed characters wins.
    """
    for wanted, have, equal, prefix, inner, kind in (
        (q.sounds, [i.sounds for i in infos], 74.0, 58.0, 48.0, "pinyin"),
        (q.canon, [i.canon for i in infos], 66.0, 52.0, 44.0, "fuzzy"),
    ):
        at = _find(wanted, have)
        if at is None:
            continue
        size = len(wanted)
        same = 8.0 * sum(a == b for a, b in zip(q.core, core[at : at + size], strict=False)) / size
        cover = size / len(have)
        if at == 0:
            return (equal if size == len(have) else prefix + 14.0 * cover) + same, kind
        if size > 1:
            return inner + 14.0 * cover + same, kind
        return 0.0, kind
    return 0.0, "fuzzy"


def _find(wanted: tuple[frozenset[object], ...], have: list[frozenset[object]]) -> int | None:
    """First offset where every wanted position shares a sound with the candidate's."""
    size = len(wanted)
    first = wanted[0]
    for at in range(len(have) - size + 1):
        if first.isdisjoint(have[at]):
            continue
        for w, h in zip(wanted[1:], have[at + 1 : at + size], strict=True):
            if w.isdisjoint(h):
                break
        else:
            return at
    return None


def _latin_score(text: str, infos: list[_Char]) -> tuple[float, str]:
    """Full pinyin, pinyin prefix or fragment, and initials, over every reading of each char."""
    best, kind = 0.0, "pinyin"
    spelling = "".join(i.readings[0] for i in infos)
    cover = len(text) / max(len(spelling), len(text))
    if spelling.startswith(text):
        best = 92.0 if len(spelling) == len(text) else 72.0 + 20.0 * cover
    elif len(text) >= 4 and text in spelling:
        best = 62.0 + 15.0 * cover
    elif any(len(i.readings) > 1 for i in infos):  # a rarer reading costs 3 points
        readings = [i.readings for i in infos]
        for start in range(len(readings) if len(text) >= 4 else 1):
            done = _walk(text, readings, start, 0)
            if done is None:
                continue
            if start == 0:
                best = 89.0 if done == len(readings) else 69.0 + 20.0 * cover
            else:
                best = 59.0 + 15.0 * cover
            break
    if len(text) >= 2 and best < 88.0 and len(text) <= len(infos):
        initials = "".join(i.initials[0] for i in infos)
        if initials.startswith(text):
            score = 88.0 if len(initials) == len(text) else 68.0 + 20.0 * len(text) / len(initials)
        else:
            done = _walk(text, [i.initials for i in infos], 0, 0)
            if done is None:
                score = 0.0
            else:
                score = 85.0 if done == len(infos) else 65.0 + 20.0 * len(text) / len(infos)
        if score > best:
            best, kind = score, "initials"
    return best, kind


def _walk(text: str, readings: list[tuple[str, ...]], position: int, offset: int) -> float | None:
    """Consume `text` with one reading per position; the number of positions used, or None."""
    if offset == len(text):
        return position
    if position == len(readings):
        return None
    rest = len(text) - offset
    for reading in readings[position]:
        if text.startswith(reading, offset):
            done = _walk(text, readings, position + 1, offset + len(reading))
            if done is not None:
                return done
        elif rest < len(reading) and reading.startswith(text[offset:]):
            return position + 0.5
    return None
