"""GET verification and POST receipt of WeCom callbacks: the only code on the ack path.

POST order (DESIGN.md): size cap -> signature (constant time) -> timestamp window -> decrypt
(receiveid = corp id) -> parse -> INSERT inbox -> 200 "". No lookup, handler or outbound call.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from bot.cache import Cache
from bot.gateway.batcher import InboxBatcher, InboxUnavailable
from bot.gateway.crypto import CryptoError, ParseError, SignatureError, WeComCrypto
from bot.gateway.throttle import LogThrottle
from bot.gateway.wire import WireError, peek
from bot.metrics import timed_callback
from crm_store.clock import Clock
from crm_store.queues.inbox import NewMessage

log = logging.getLogger(__name__)

MAX_BODY: Final = 64 * 1024
BODY_TIMEOUT: Final = 3.0  # seconds for the whole body: WeCom's arrives at once (slow-loris cap)
SEEN_TTL: Final = 24 * 3600  # longer than WeCom's retry window (PROTOCOL.md §1.5)
INBOX_CHANNEL: Final = "inbox"


@dataclass
class CallbackState:
    crypto: WeComCrypto
    batcher: InboxBatcher
    cache: Cache
    clock: Clock
    max_skew: int
    body_timeout: float = BODY_TIMEOUT
    # A flood of bad requests costs one log line per reason per minute, not one per request.
    refusals: LogThrottle = field(default_factory=lambda: LogThrottle(log))


callback_state_key: Final = web.AppKey("callback_state", CallbackState)


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


def _refuse(state: CallbackState, status: int, text: str, detail: str = "") -> web.Response:
    """A 4xx with one log line per reason per interval (details are our own fixed strings)."""
    state.refusals.log(f"callback refused: {status} {text}" + (f" ({detail})" if detail else ""))
    return _plain(status, text)


def _query(request: web.Request, *names: str) -> list[str] | None:
    values = [request.query.get(name, "") for name in names]
    return values if all(values) else None


async def verify_url(request: web.Request) -> web.Response:
    """PROTOCOL.md §1.1: answer with the decrypted echostr as the whole body, within 1 s."""
    state = request.app[callback_state_key]
    params = _query(request, "msg_signature", "timestamp", "nonce", "echostr")
    if params is None:
        return _refuse(state, 400, "missing parameters")
    try:
        echo = state.crypto.verify_url(*params)
    except SignatureError:
        return _refuse(state, 403, "bad signature")
    except CryptoError as exc:
        return _refuse(state, 403, "cannot decrypt", str(exc))
    return web.Response(body=echo.encode(), content_type="text/plain")


async def receive(request: web.Request) -> web.Response:
    state = request.app[callback_state_key]
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _refuse(state, 413, "body too large")
    try:
        async with asyncio.timeout(state.body_timeout):
            body = await _read_capped(request)
    except TimeoutError:
        response = _refuse(state, 408, "body too slow")
        response.force_close()
        return response
    if body is None:
        return _refuse(state, 413, "body too large")
    params = _query(request, "msg_signature", "timestamp", "nonce")
    if params is None:
        return _refuse(state, 400, "missing parameters")
    signature, timestamp, nonce = params
    try:
        encrypt = state.crypto.parse_envelope(body)
    except ParseError as exc:
        return _refuse(state, 400, "malformed body", str(exc))
    try:
        state.crypto.verify_signature(signature, timestamp, nonce, encrypt)
    except SignatureError:
        return _refuse(state, 403, "bad signature")
    if not _timestamp_ok(timestamp, state):
        return _refuse(state, 403, "stale timestamp")
    try:
        plaintext = state.crypto.decrypt(encrypt)
        envelope = peek(plaintext)
    except CryptoError as exc:
        return _refuse(state, 403, "cannot decrypt", str(exc))
    except WireError as exc:
        return _refuse(state, 400, "malformed message", str(exc))
    seen_key = f"wecrm:seen:{envelope.dedup_key}"
    if await state.cache.exists_fast(seen_key):
        return web.Response(status=200, body=b"")
    message = NewMessage(
        dedup_key=envelope.dedup_key,
        user_id=envelope.user_id,
        kind=envelope.kind,
        payload=plaintext,
    )
    try:
        await state.batcher.accept(message)
    except InboxUnavailable:
        # Not acknowledged, so WeCom retries: nothing is lost while the database is away.
        # The batcher logged the cause once; a line per callback would flood the log.
        return _plain(503, "temporarily unavailable")
    await state.cache.set_fast(seen_key, "1", SEEN_TTL)
    return web.Response(status=200, body=b"")


async def _read_capped(request: web.Request) -> bytes | None:
    """The body, or None once it passes MAX_BODY (a chunked upload has no Content-Length)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(MAX_BODY + 1 - size)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)


def _timestamp_ok(timestamp: str, state: CallbackState) -> bool:
    if state.max_skew == 0:
        return True
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    return abs(state.clock.now().timestamp() - int(timestamp)) <= state.max_skew


def add_routes(app: web.Application, path: str = "/wecom/callback") -> None:
    app.router.add_get(path, verify_url)
    app.router.add_post(path, timed_callback(receive))
