"""In-memory customer index: fragments, pinyin, initials and typos, only within the actor's scope.

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
import threading
from array import array
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from crm_store.names import clean_text, normalize_company_name, pinyin_keys, split_company_name
from crm_store.search.keys import (
    WORD_HINT,
    PairKeys,
    abbreviations,
    head_keys,
    initials_keys,
    pair_keys,
    phone_keys,
    words,
)
from crm_store.search.query import (
    Query,
    parse,
    query_char_keys,
    query_prefix_keys,
    query_sound_groups,
)
from crm_store.search.rank import (
    ABBREVIATION_SCORE,
    CONTACT_PINYIN_SCORE,
    CONTACT_SCORE,
    PHONE_SCORE,
    PHONE_TAIL_SCORE,
    text_score,
)


@dataclass(frozen=True, slots=True)
class Owners:
    """A scope by owner, checked on the index's own data: no id list read from the database.

    A slot is in it when its owner key is in `keys` (None is the pool, "#<id>" an unowned
    customer of department <id>) or its id is in `ids` (shared with the actor). The service
    still re-reads every hit under the real scope; this only keeps others out of the ranking.
    """

    keys: frozenset[str | None]
    ids: frozenset[int] = frozenset()


Allowed = Callable[[int], bool] | frozenset[int] | set[int] | Owners | None
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
SEP = "\x1f"


@dataclass(frozen=True, slots=True)
class IndexedCustomer:
    """What the index keeps of a customer: enough to match, scope and rank, nothing more."""

    id: int
    name: str
    aliases: tuple[str, ...] = ()
    owner_id: str | None = None  # an owner key: userid, None for the pool, "#<dept>" unowned
    last_activity: float = 0.0  # epoch seconds
    phones: tuple[str, ...] = ()  # normalised: the customer's and its contacts'
    contacts: tuple[str, ...] = ()  # contacts' names


@dataclass(frozen=True, slots=True)
class Hit:
    """One match: `score` is match quality (0-100); the order also weighs learned/own/recent."""

    id: int
    score: float
    matched: str
    kind: str  # exact|alias|learned|prefix|substring|pinyin|initials|abbrev|phone|contact|fuzzy


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
        self._heads = _Column()
        self._phones = _Column()
        self._contacts = _Column()
        self._owners: list[str | None] = []
        self._owner_no: dict[str | None, int] = {}
        self._sorted_upto = 0
        self._late: dict[int, int] = {}
        self._chars: defaultdict[str, array[int]] = defaultdict(_postings)
        self._sounds: defaultdict[int, array[int]] = defaultdict(_postings)
        self._prefixes: defaultdict[str, array[int]] = defaultdict(_postings)
        self._extras: defaultdict[str, array[int]] = defaultdict(
            _postings
        )  # numbers, people, 青啤
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
        pairs: dict[str, PairKeys] = {}
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
                if (
                    self._names[slot] == c.name
                    and self._aliases[slot] == SEP.join(c.aliases)
                    and self._phones[slot] == SEP.join(c.phones)
                    and self._contacts[slot] == SEP.join(c.contacts)
                ):
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

    def get(self, customer_id: int) -> IndexedCustomer | None:
        """The customer as indexed, or None."""
        with self._lock:
            slot = self._slot(customer_id)
            return None if slot is None else self._customer(slot)

    def _customer(self, slot: int) -> IndexedCustomer:
        return IndexedCustomer(
            id=self._ids[slot],
            name=self._names[slot],
            aliases=_split(self._aliases[slot]),
            owner_id=self._owners[self._owner[slot]],
            last_activity=self._activity[slot],
            phones=_split(self._phones[slot]),
            contacts=_split(self._contacts[slot]),
        )

    def _append(self, c: IndexedCustomer, pairs: dict[str, PairKeys]) -> None:
        slot = len(self._ids)
        prefix, core = split_company_name(c.name)
        if c.aliases:
            alias_cores = [normalize_company_name(a) for a in c.aliases]
            aliases, joined_cores = SEP.join(c.aliases), SEP.join(alias_cores)
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
        self._heads.append(prefix)
        self._phones.append(SEP.join(c.phones))
        self._contacts.append(SEP.join(c.contacts))
        self._live += 1

        chars: set[str] = set()
        sounds: set[int] = set()
        prefixes: set[str] = set()
        texts = [(prefix + core, len(prefix))] if prefix else [(core, 0)]
        texts.extend((a, 0) for a in alias_cores if a)
        for text, start in texts:
            for at in range(len(text) - 1):
                known = pair_keys(text[at : at + 2], pairs)
                chars.add(known[0])
                sounds.update(known[1])  # the region's too: "hangzhouyunqi" is typed
            head = text[start:] if start else text
            if head:
                sounds.update(head_keys(head[0]))
                if len(head) > 1:
                    initials_keys(head, prefixes)
            if start:
                initials_keys(text, prefixes)  # "hzyq": initials with the city
        chars.discard("")
        extras = {a for text in (core, *alias_cores) for a in abbreviations(text)}
        for phone in c.phones:
            extras.update(phone_keys(phone))
        for person in c.contacts:
            if cleaned := clean_text(person):
                extras.add(cleaned)
                extras.update(pinyin_keys(cleaned, cap=2)[0])
        if aliases or c.name.isascii() or WORD_HINT.search(c.name):
            for text in (c.name, *c.aliases):
                for word in words(text):
                    prefixes.add(word[:2])
                    prefixes.add(word[:3])
        table = self._chars
        for key in chars:
            table[key].append(slot)
        by_sound = self._sounds
        for sound in sounds:
            by_sound[sound].append(slot)
        table = self._prefixes
        for key in prefixes:
            table[key].append(slot)
        table = self._extras
        for key in extras:
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
        q = parse(query)
        with self._lock:
            permitted = self._permission(allowed)
            own = self._owner_no.get(owner_id, -1) if owner_id is not None else -1
            boosts: dict[int, float] = {}
            for customer_id, boost in (learned or {}).items():
                slot = self._slot(customer_id)
                if slot is not None and (permitted is None or permitted(slot)):
                    boosts[slot] = boost
            scored: dict[int, tuple[float, str, str]] = {}
            if q is not None and q.digits is not None:
                scored = self._gather_extras(q, permitted, (q.digits, q.digits[-8:]))
            elif q is not None:
                scope = self._scope_slots(allowed)
                scored = self._gather(q, scope, permitted, own, limit, loose=loose)
                if len(q.text) <= 30:
                    extras = self._gather_extras(q, permitted, (q.text, q.core))
                    for slot, value in extras.items():
                        scored.setdefault(slot, value)
            for slot in boosts:
                if slot not in scored:
                    scored[slot] = self._score(slot, q) if q else (0.0, self._names[slot], "")
            return self._rank(scored, boosts, own, limit, min_score)

    def _gather(
        self,
        q: Query,
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

    def _gather_extras(
        self, q: Query, permitted: Callable[[int], bool] | None, keys: Iterable[str]
    ) -> dict[int, tuple[float, str, str]]:
        """Customers found by a phone number, a contact's name or an abbreviation of the name."""
        alive = self._alive
        scored: dict[int, tuple[float, str, str]] = {}
        for key in dict.fromkeys(keys):
            for slot in self._extras.get(key, ())[:TYPED_SCAN]:
                if slot not in scored and alive[slot] and (permitted is None or permitted(slot)):
                    scored[slot] = self._score(slot, q)
        return scored

    def _permission(self, allowed: Allowed) -> Callable[[int], bool] | None:
        """`allowed` as a test of one slot."""
        if allowed is None:
            return None
        ids = self._ids
        if isinstance(allowed, Owners):
            owner, wanted, shared = self._owner, allowed.keys, allowed.ids
            mask = bytes(o in wanted for o in self._owners)
            if shared:
                return lambda slot: bool(mask[owner[slot]]) or ids[slot] in shared
            return lambda slot: bool(mask[owner[slot]])
        test = allowed.__contains__ if isinstance(allowed, frozenset | set) else allowed
        return lambda slot: test(ids[slot])

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

    def _postings(self, q: Query, *, loose: bool) -> dict[str | frozenset[int], _Postings]:
        """Postings per query key: character pairs, syllable-pair groups, initials/words.

        A group of alternative syllable pairs stays a tuple of lists; `_count` merges it
        only if the budget reaches it.
        """
        found: dict[str | frozenset[int], _Postings] = {}
        for key in query_char_keys(q):
            if postings := self._chars.get(key):
                found[key] = postings
        for group in query_sound_groups(q, loose=loose):
            lists = sorted((p for p in map(self._sounds.get, group) if p), key=len)
            while len(lists) > 1 and sum(map(len, lists)) > GROUP_BUDGET:
                lists.pop()
            if len(lists) == 1:
                found[group] = lists[0]
            elif lists:
                found[group] = tuple(lists)
        for key in query_prefix_keys(q):
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
        q: Query,
    ) -> list[int]:
        """A few names whose initials or latin words start like the query, whatever the counts.

        One initials key is a single count against several syllable pairs, yet "albb" or
        "tencent" mean exactly those names.
        """
        alive, core_len, owner = self._alive, self._core_len, self._owner
        found: list[int] = []
        for postings in lists:
            if not isinstance(postings, array) or len(postings) > TYPED_SCAN:
                continue
            found += (
                s
                for s in postings
                if alive[s]
                and (scope is None or s in scope)
                and (permitted is None or permitted(s))
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
        q: Query,
        *,
        loose: bool = False,
    ) -> list[int]:
        """The `width` most promising slots: most shared keys, then nearest length, own, recent.

        Strictly, a slot also needs half the best count; loosely (typos) any count will do.
        """
        alive = self._alive
        pool = counts if permitted is None else {s: n for s, n in counts.items() if permitted(s)}
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
        whole = {s: v for s, v in kept.items() if v[0] >= 100.0 and v[2] == "exact"}
        if whole:  # the full registered name typed: that customer, not a choice
            kept = whole
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

    def _score(self, slot: int, q: Query) -> tuple[float, str, str]:
        """How well one customer matches: (score 0-100, the text that matched, kind)."""
        name = self._names[slot]
        if q.digits is not None:
            return _phone_score(q.digits, self._phones[slot])
        core = self._cores[slot]
        head = self._heads[slot]
        if q.core == core:
            whole = q.text == head + core or q.text == clean_text(name)
            return (100.0 if whole else 99.0), name, "exact"
        alias_text = self._aliases[slot]
        aliases: list[tuple[str, str]] = []
        if alias_text:
            raw = alias_text.split(SEP)
            cores = self._alias_cores[slot].split(SEP)
            aliases = list(zip(raw, cores, strict=True))
            for alias, alias_core in aliases:
                if q.core == alias_core or q.text == clean_text(alias):
                    return 98.0, alias, "alias"
        score, kind = text_score(q, core, name, head)
        matched = name
        if score < ABBREVIATION_SCORE and q.core in abbreviations(core):
            score, kind = ABBREVIATION_SCORE, "abbrev"
        people = self._contacts[slot]
        if people and score < CONTACT_SCORE:
            for person in people.split(SEP):
                cleaned = clean_text(person)
                if q.text == cleaned:
                    return CONTACT_SCORE, person, "contact"
                if q.latin and q.text in pinyin_keys(cleaned, cap=2)[0]:
                    score, kind, matched = CONTACT_PINYIN_SCORE, "contact", person
        for alias, alias_core in aliases:
            alias_score, alias_kind = text_score(q, alias_core, alias)
            if alias_score - 3.0 > score:
                score, kind, matched = alias_score - 3.0, alias_kind, alias
        return score, matched, kind


def _postings() -> array[int]:
    return array("i")


def _size(postings: _Postings) -> int:
    return len(postings) if isinstance(postings, array) else sum(map(len, postings))


def _split(joined: str) -> tuple[str, ...]:
    return tuple(joined.split(SEP)) if joined else ()


def _phone_score(number: str, phones: str) -> tuple[float, str, str]:
    """A whole number, or a landline's last eight digits (typed without its area code)."""
    best: tuple[float, str, str] = (0.0, "", "phone")
    for phone in _split(phones):
        if phone == number:
            return PHONE_SCORE, phone, "phone"
        if (
            phone.startswith("0")
            and len(number) >= 8
            and phone.endswith(number[-8:])
            and best[0] < PHONE_TAIL_SCORE
        ):
            best = (PHONE_TAIL_SCORE, phone, "phone")
    return best


def _count_floor(histogram: Counter[int], width: int) -> tuple[int, int]:
    """The best count, and the smallest count that still keeps `width` candidates."""
    ordered = sorted(histogram, reverse=True)
    kept = 0
    for count in ordered:
        kept += histogram[count]
        if kept >= width:
            return ordered[0], count
    return ordered[0], 0
