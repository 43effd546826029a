"""GET verification and POST receipt of WeCom callbacks: the only code on the ack path.

POST order (DESIGN.md): size cap -> signature (constant time) -> timestamp window -> decrypt
(receiveid = corp id) -> parse -> INSERT inbox -> 200 "". No lookup, handler or outbound call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cache import Cache, Notifier, RedisCache
from bot.gateway.crypto import CryptoError, ParseError, SignatureError, WeComCrypto
from bot.gateway.wire import Envelope, WireError, peek
from crm_store.clock import Clock
from crm_store.queues import inbox

log = logging.getLogger(__name__)

MAX_BODY: Final = 64 * 1024
SEEN_TTL: Final = 24 * 3600  # longer than WeCom's retry window (PROTOCOL.md §1.5)
INBOX_CHANNEL: Final = "inbox"


@dataclass
class CallbackState:
    crypto: WeComCrypto
    engine: AsyncEngine
    cache: Cache
    notifier: Notifier
    clock: Clock
    max_skew: int


callback_state_key: Final = web.AppKey("callback_state", CallbackState)


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


def _query(request: web.Request, *names: str) -> list[str] | None:
    values = [request.query.get(name, "") for name in names]
    return values if all(values) else None


async def verify_url(request: web.Request) -> web.Response:
    """PROTOCOL.md §1.1: answer with the decrypted echostr as the whole body, within 1 s."""
    state = request.app[callback_state_key]
    params = _query(request, "msg_signature", "timestamp", "nonce", "echostr")
    if params is None:
        return _plain(400, "missing parameters")
    try:
        echo = state.crypto.verify_url(*params)
    except SignatureError:
        return _plain(403, "bad signature")
    except CryptoError:
        return _plain(403, "cannot decrypt")
    return web.Response(body=echo.encode(), content_type="text/plain")


async def receive(request: web.Request) -> web.Response:
    state = request.app[callback_state_key]
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _plain(413, "body too large")
    body = await _read_capped(request)
    if body is None:
        return _plain(413, "body too large")
    params = _query(request, "msg_signature", "timestamp", "nonce")
    if params is None:
        return _plain(400, "missing parameters")
    signature, timestamp, nonce = params
    try:
        encrypt = state.crypto.parse_envelope(body)
    except ParseError:
        return _plain(400, "malformed body")
    try:
        state.crypto.verify_signature(signature, timestamp, nonce, encrypt)
    except SignatureError:
        return _plain(403, "bad signature")
    if not _timestamp_ok(timestamp, state):
        return _plain(403, "stale timestamp")
    try:
        plaintext = state.crypto.decrypt(encrypt)
        envelope = peek(plaintext)
    except CryptoError:
        return _plain(403, "cannot decrypt")
    except WireError:
        return _plain(400, "malformed message")
    seen_key = f"wecrm:seen:{envelope.dedup_key}"
    if isinstance(state.cache, RedisCache) and await state.cache.exists_fast(seen_key):
        return web.Response(status=200, body=b"")
    try:
        inserted = await _insert(state, envelope, plaintext)
    except SQLAlchemyError as exc:
        # Not acknowledged, so WeCom retries: nothing is lost while the database is away.
        log.error("inbox insert failed: %s", type(exc).__name__)
        return _plain(503, "temporarily unavailable")
    if isinstance(state.cache, RedisCache):
        await state.cache.set_fast(seen_key, "1", SEEN_TTL)
    if inserted:
        await state.notifier.notify(INBOX_CHANNEL)
    return web.Response(status=200, body=b"")


async def _insert(state: CallbackState, envelope: Envelope, plaintext: str) -> bool:
    """One committed INSERT. A bare connection, not an ORM session: the ack path pays for
    nothing it does not use; on PostgreSQL a single autocommit statement is one round trip."""
    async with state.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        inserted = await inbox.accept(
            connection,
            dedup_key=envelope.dedup_key,
            user_id=envelope.user_id,
            kind=envelope.kind,
            payload=plaintext,
            now=state.clock.now(),
        )
        await connection.commit()
        return inserted


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
    app.router.add_post(path, receive)
