"""The load generator: encrypted callbacks at a fixed number in flight, and the replies seen.

Each lane is one connection's worth of work and owns a set of people; a person's messages go
out in their order, one at a time, as a person types (a "2" must follow the list it answers).
Replies are timed where WeCom would see them: when the simulator answers message/send.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from bench.company import Script
from bot.simulator import WeComSimulator
from bot.simulator.callbacks import CallbackSender

BAD_REPLY_MARKERS = ("没有找到", "请回复 1 到", "出了点问题", "还没有在通讯录", "已经过期")


@dataclass
class Post:
    user: str
    kind: str
    text: str
    params: dict[str, str]
    body: bytes


@dataclass
class ReplyLog:
    """Every message/send the simulator accepted, per recipient, with its arrival time."""

    sim: WeComSimulator
    arrivals: dict[str, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    _seen: int = 0

    def attach(self) -> None:
        """Hook the simulator's app before it starts (after that its signals are frozen)."""
        self.sim.app.on_response_prepare.append(self._on_response)

    async def _on_response(self, request: web.Request, _response: web.StreamResponse) -> None:
        if request.path.endswith("/message/send"):
            now = time.perf_counter()
            for message in self.sim.sent_messages[self._seen :]:
                for user in message.delivered_to:
                    self.arrivals[user].append((now, message.as_text()))
            self._seen = len(self.sim.sent_messages)

    def total(self) -> int:
        return sum(len(v) for v in self.arrivals.values())

    def count(self, user: str) -> int:
        return len(self.arrivals.get(user, ()))


@dataclass
class Drive:
    """What one run of the load generator saw."""

    acks: list[float]  # seconds per callback POST
    sent_at: dict[str, list[float]]  # per person, when each POST started
    posts: list[Post]
    elapsed: float
    errors: int

    @property
    def ack_rate(self) -> float:
        return len(self.acks) / self.elapsed if self.elapsed else 0.0


def build_posts(sender: CallbackSender, scripts: Sequence[Script], rounds: int = 1) -> list[Post]:
    """Encrypt every message beforehand, so the generator only POSTs while it is timed."""
    posts = []
    for _ in range(rounds):
        for script in scripts:
            for kind, text in script.messages:
                xml = sender.message_xml(script.user, "text", Content=text)
                params, body = sender.build_post(xml)
                posts.append(Post(script.user, kind, text, params, body))
    return posts


def lanes_of(posts: Sequence[Post], concurrency: int) -> list[list[Post]]:
    """People spread over lanes; within a lane, people take turns (round-robin by message)."""
    people: dict[str, list[Post]] = defaultdict(list)
    for post in posts:
        people[post.user].append(post)
    lanes: list[list[list[Post]]] = [[] for _ in range(concurrency)]
    for i, queue in enumerate(people.values()):
        lanes[i % concurrency].append(queue)
    out = []
    for queues in lanes:
        lane: list[Post] = []
        for k in range(max((len(q) for q in queues), default=0)):
            lane += [q[k] for q in queues if k < len(q)]
        out.append(lane)
    return [lane for lane in out if lane]


async def drive(
    url: str, posts: Sequence[Post], concurrency: int, stop: asyncio.Event | None = None
) -> Drive:
    """POST every callback with `concurrency` in flight; a person's next waits for the ack.

    With `stop`, lanes finish the POST in hand and send nothing more once it is set."""
    acks: list[float] = []
    sent_at: dict[str, list[float]] = defaultdict(list)
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def lane(work: list[Post]) -> None:
            nonlocal errors
            for post in work:
                if stop is not None and stop.is_set():
                    return
                started = time.perf_counter()
                sent_at[post.user].append(started)
                try:
                    async with http.post(url, params=post.params, data=post.body) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok:
                    acks.append(time.perf_counter() - started)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(lane(w) for w in lanes_of(posts, concurrency)))
        elapsed = time.perf_counter() - started
    done = [p for p in posts if p.user in sent_at]
    return Drive(acks, dict(sent_at), done, elapsed, errors)


async def wait_answered(
    log: ReplyLog, expected: dict[str, int], patience: float, *, stall: float = 20.0
) -> bool:
    """Wait until every person has `expected` replies, or nothing new came for `stall` s."""
    deadline = time.perf_counter() + patience
    last_total, last_change = -1, time.perf_counter()
    while time.perf_counter() < deadline:
        if all(log.count(u) >= n for u, n in expected.items()):
            return True
        total = log.total()
        if total != last_total:
            last_total, last_change = total, time.perf_counter()
        elif time.perf_counter() - last_change > stall:
            return False
        await asyncio.sleep(0.02)  # watching another process work: real time is the point
    return False


@dataclass
class Answered:
    messages: int
    answered: int
    seconds: float
    latencies: list[float]  # POST start to that message's reply, per message
    bad: int  # replies that say something went wrong (not found, bad choice, apology)
    extra: int  # replies beyond one per message

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0


def answered(log: ReplyLog, run: Drive, before: dict[str, int]) -> Answered:
    """Match the k-th reply of each person to their k-th message of this run."""
    first = min((t[0] for t in run.sent_at.values() if t), default=0.0)
    last = first
    latencies: list[float] = []
    got = bad = extra = 0
    for user, sent in run.sent_at.items():
        replies = log.arrivals.get(user, [])[before.get(user, 0) :]
        for k, (at, text) in enumerate(replies):
            if k >= len(sent):
                extra += 1
                continue
            got += 1
            last = max(last, at)
            latencies.append(at - sent[k])
            bad += any(marker in text for marker in BAD_REPLY_MARKERS)
    return Answered(len(run.posts), got, last - first, latencies, bad, extra)
