"""Cache, locks and wake-ups: in-process by default, Redis when configured.

Redis is an accelerator, never the truth: when it is down every call falls back to the local
implementation (tokens, wake-ups) or to the database (dedup), and `/readyz` says so. Calls on the
ack path are bounded by a short timeout and never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

FAST_TIMEOUT = 0.1  # seconds: the ack path's budget for any Redis call
WAKE_CHANNEL_PREFIX = "wecrm:wake:"
_RELEASE_LOCK = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


class Cache(ABC):
    """The one cache interface: callers never ask which implementation they hold."""

    @property
    @abstractmethod
    def configured(self) -> bool:
        """True when a shared cache (Redis) was configured, healthy or not."""

    @property
    @abstractmethod
    def healthy(self) -> bool:
        """False while a configured shared cache is unreachable (readyz says `degraded`)."""

    @abstractmethod
    def describe(self) -> str:
        """One line for readyz and logs; never a password."""

    @abstractmethod
    async def ping(self) -> bool:
        """Probe the backing store; True when it answered."""

    @abstractmethod
    async def get(self, key: str) -> str | None: ...

    @abstractmethod
    async def set(self, key: str, value: str, ttl_seconds: float) -> None: ...

    @abstractmethod
    async def set_nx(self, key: str, value: str, ttl_seconds: float) -> bool: ...

    @abstractmethod
    async def delete(self, key: str) -> None: ...

    @abstractmethod
    def lock(self, key: str) -> AbstractAsyncContextManager[None]: ...

    @abstractmethod
    async def exists_fast(self, key: str) -> bool:
        """Ack-path dedup check: False means "ask the database", never "not seen"."""

    @abstractmethod
    async def set_fast(self, key: str, value: str, ttl_seconds: float) -> None:
        """Ack-path dedup mark: best effort, bounded, never retried."""

    @abstractmethod
    async def publish(self, channel: str, message: str) -> None:
        """Tell other processes; a no-op when nothing is shared."""

    @abstractmethod
    async def listen(self, prefix: str, deliver: Callable[[str], None]) -> None:
        """Call `deliver(channel)` for messages published under `prefix`, until cancelled."""

    @abstractmethod
    async def close(self) -> None: ...


class LocalCache(Cache):
    """A dict with expiry and asyncio locks: everything one process needs."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._values: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._monotonic = monotonic

    @property
    def configured(self) -> bool:
        return False

    @property
    def healthy(self) -> bool:
        return True

    def describe(self) -> str:
        return "not configured (in-process cache)"

    async def ping(self) -> bool:
        return True

    async def get(self, key: str) -> str | None:
        item = self._values.get(key)
        if item is None:
            return None
        value, expires = item
        if expires <= self._monotonic():
            self._values.pop(key, None)
            return None
        return value

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        self._values[key] = (value, self._monotonic() + ttl_seconds)
        if len(self._values) > 50_000:
            self._evict_expired()

    async def set_nx(self, key: str, value: str, ttl_seconds: float) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl_seconds)
        return True

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())

        @asynccontextmanager
        async def held() -> AsyncIterator[None]:
            async with lock:
                yield

        return held()

    async def exists_fast(self, key: str) -> bool:
        # One process: the database's unique key is as fast a truth as a dict would be.
        return False

    async def set_fast(self, key: str, value: str, ttl_seconds: float) -> None:
        return None

    async def publish(self, channel: str, message: str) -> None:
        return None

    async def listen(self, prefix: str, deliver: Callable[[str], None]) -> None:
        return None  # nothing crosses a process boundary; in-process events suffice

    async def close(self) -> None:
        self._values.clear()

    def _evict_expired(self) -> None:
        now = self._monotonic()
        for key in [k for k, (_, exp) in self._values.items() if exp <= now]:
            del self._values[key]


class RedisCache(Cache):
    """Redis with a local fallback; a failure marks it unhealthy until a probe succeeds."""

    def __init__(self, url: str, *, lock_ttl: float = 10.0) -> None:
        self._redis = aioredis.from_url(
            url,
            socket_connect_timeout=FAST_TIMEOUT,
            socket_timeout=1.0,
            decode_responses=True,
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self._local = LocalCache()
        self._lock_ttl = lock_ttl
        self._healthy = True
        self.last_error: str | None = None
        self._url_for_humans = _redact(url)

    @property
    def configured(self) -> bool:
        return True

    @property
    def healthy(self) -> bool:
        return self._healthy

    def describe(self) -> str:
        state = "ok" if self.healthy else f"down ({self.last_error}); using local fallbacks"
        return f"redis {self._url_for_humans}: {state}"

    async def _call(
        self, operation: Callable[[], Awaitable[Any]], limit: float
    ) -> tuple[bool, Any]:
        """Run one Redis call within `limit` seconds; (False, None) when Redis failed."""
        try:
            result = await asyncio.wait_for(operation(), limit)
        except (RedisError, OSError, TimeoutError) as exc:
            self._mark_down(exc)
            return False, None
        if not self._healthy:
            log.warning("redis is reachable again")
        self._healthy = True
        return True, result

    def _mark_down(self, exc: BaseException) -> None:
        if self._healthy:
            log.warning("redis unavailable, falling back to local cache: %s", type(exc).__name__)
        self._healthy = False
        self.last_error = type(exc).__name__

    async def ping(self) -> bool:
        ok, _ = await self._call(lambda: self._redis.ping(), FAST_TIMEOUT * 5)
        return ok

    async def get(self, key: str) -> str | None:
        ok, value = await self._call(lambda: self._redis.get(key), 1.0)
        return value if ok else await self._local.get(key)

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        await self._local.set(key, value, ttl_seconds)
        await self._call(
            lambda: self._redis.set(key, value, px=max(1, int(ttl_seconds * 1000))), 1.0
        )

    async def set_nx(self, key: str, value: str, ttl_seconds: float) -> bool:
        ok, done = await self._call(
            lambda: self._redis.set(key, value, px=max(1, int(ttl_seconds * 1000)), nx=True), 1.0
        )
        return bool(done) if ok else await self._local.set_nx(key, value, ttl_seconds)

    async def delete(self, key: str) -> None:
        await self._local.delete(key)
        await self._call(lambda: self._redis.delete(key), 1.0)

    async def exists_fast(self, key: str) -> bool:
        """Ack-path check: answers False (ask the database) when Redis is slow or down."""
        ok, found = await self._call(lambda: self._redis.exists(key), FAST_TIMEOUT)
        return bool(ok and found)

    async def set_fast(self, key: str, value: str, ttl_seconds: float) -> None:
        await self._call(
            lambda: self._redis.set(key, value, px=max(1, int(ttl_seconds * 1000))), FAST_TIMEOUT
        )

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """A cross-process lock (SET NX PX + token-checked release); local when Redis is down."""

        @asynccontextmanager
        async def held() -> AsyncIterator[None]:
            async with self._local.lock(key):
                token = secrets.token_hex(8)
                acquired = await self._acquire(f"lock:{key}", token)
                try:
                    yield
                finally:
                    if acquired:
                        await self._call(
                            lambda: self._redis.eval(_RELEASE_LOCK, 1, f"lock:{key}", token), 1.0
                        )

        return held()

    async def _acquire(self, key: str, token: str) -> bool:
        deadline = time.monotonic() + self._lock_ttl
        while time.monotonic() < deadline:
            ok, got = await self._call(
                lambda: self._redis.set(key, token, px=int(self._lock_ttl * 1000), nx=True), 1.0
            )
            if not ok:
                return False  # Redis down: the local lock is all we have
            if got:
                return True
            await asyncio.sleep(0.05)  # another process holds it; it refreshes tokens quickly
        return False

    async def publish(self, channel: str, message: str) -> None:
        await self._call(lambda: self._redis.publish(channel, message), FAST_TIMEOUT)

    async def listen(self, prefix: str, deliver: Callable[[str], None]) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(prefix + "*")
                async for message in pubsub.listen():
                    if message.get("type") == "pmessage":
                        deliver(str(message["channel"]).removeprefix(prefix))
            except (RedisError, OSError) as exc:
                log.debug("wake-up listener lost redis: %s", type(exc).__name__)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(1.0)  # reconnect pacing; polling covers the gap

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()


def _redact(url: str) -> str:
    """host:port/db only: a Redis URL may carry a password."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return f"{parsed.hostname}:{parsed.port or 6379}{parsed.path or ''}"


class Notifier:
    """Wake-ups for the worker and relay: an asyncio.Event here, Redis pub/sub across processes."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        self._events: dict[str, asyncio.Event] = {}
        self._listener: asyncio.Task[None] | None = None

    def event(self, channel: str) -> asyncio.Event:
        return self._events.setdefault(channel, asyncio.Event())

    async def notify(self, channel: str) -> None:
        self.event(channel).set()
        if self._cache.configured and self._cache.healthy:
            await self._cache.publish(WAKE_CHANNEL_PREFIX + channel, "1")

    async def wait(self, channel: str, poll_seconds: float) -> None:
        """Return when notified or after `poll_seconds` (the polling fallback), whichever first."""
        event = self.event(channel)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), poll_seconds)
        event.clear()

    def start(self) -> None:
        if self._cache.configured and self._listener is None:
            self._listener = asyncio.create_task(
                self._cache.listen(WAKE_CHANNEL_PREFIX, lambda channel: self.event(channel).set())
            )

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None


def make_cache(redis_url: str | None) -> Cache:
    """Redis when a URL is configured, else the in-process cache (the embedded default)."""
    return RedisCache(redis_url) if redis_url else LocalCache()
