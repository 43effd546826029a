"""Our async WeCom API client: cached token with single-flight refresh, errcodes as exceptions."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from json import loads
from typing import Any, Protocol
from urllib.parse import unquote

import aiohttp

from crm_store.clock import Clock

__all__ = [
    "DEFAULT_BASE_URL",
    "DownloadedMedia",
    "InProcessTokenCache",
    "TokenCache",
    "WeComClient",
    "WeComError",
    "WeComTimeoutError",
    "WeComTransportError",
    "split_for_wecom",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com/cgi-bin"
TEXT_LIMIT = 2048  # PROTOCOL.md §4.2: text and markdown content ≤ 2048 bytes, truncated beyond
REFRESH_MARGIN = 300  # refresh this many seconds before WeCom's expires_in runs out
# PROTOCOL.md §4.1: on 40014/42001 (and 40001 if the secret rotated) refetch once and retry
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
LIST_ID_LIMIT = 10_000  # PROTOCOL.md §5: user/list_id limit ≤ 10000

DataFactory = Callable[[], Any]


class WeComError(Exception):
    """WeCom answered with a non-zero errcode; never carries the token, secret or query."""

    def __init__(self, errcode: int, errmsg: str, path: str) -> None:
        super().__init__(f"WeCom {path} failed with errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path


class WeComTransportError(aiohttp.ClientError):
    """No usable answer (connection, HTTP status, body); the URL and its token are scrubbed."""

    def __init__(self, path: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(f"WeCom {path}: {reason}")
        self.path = path
        self.reason = reason
        self.status = status


class WeComTimeoutError(WeComTransportError, TimeoutError):
    """No answer within the client's timeout; WeCom may still have acted on the request."""


class TokenCache(Protocol):
    """Where access tokens live: in process by default, Redis when several processes share."""

    async def get(self, key: str) -> str | None:
        """The cached value, or None when absent or expired."""
        ...

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        """Store a value that expires after ttl_seconds."""
        ...

    async def delete(self, key: str) -> None:
        """Forget a value (a token WeCom refused)."""
        ...

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """Mutual exclusion for refreshing `key` (cross-process when backed by Redis)."""
        ...


class InProcessTokenCache:
    """A TokenCache for one process; expiry follows the injected clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._values: dict[str, tuple[str, datetime]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str) -> str | None:
        """The value unless the injected clock says it expired."""
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if self._clock.now() >= expires_at:
            del self._values[key]
            return None
        return value

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        """Store with an expiry measured on the injected clock."""
        self._values[key] = (value, self._clock.now() + timedelta(seconds=ttl_seconds))

    async def delete(self, key: str) -> None:
        """Forget the value."""
        self._values.pop(key, None)

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """An asyncio.Lock per key: enough when one process owns the cache."""
        return self._locks.setdefault(key, asyncio.Lock())


class WeComClient:
    """Calls WeCom's cgi-bin APIs for one app (corp_id, agent_id) over a shared aiohttp session."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        corp_id: str,
        secret: str,
        agent_id: int,
        session: aiohttp.ClientSession,
        token_cache: TokenCache,
        clock: Clock,
        timeout: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        self._session = session
        self._cache = token_cache
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # PROTOCOL.md §4.1: tokens are per app, so the cache key names corp and agent
        self._cache_key = f"wecom:access_token:{corp_id}:{agent_id}"
        self._refreshing: asyncio.Task[str] | None = None

    def __repr__(self) -> str:
        return f"WeComClient(corp_id={self.corp_id!r}, agent_id={self.agent_id!r})"

    # --- access token -----------------------------------------------------------------------

    async def access_token(self) -> str:
        """A valid token; concurrent callers on a cold cache share a single gettoken."""
        token = await self._cache.get(self._cache_key)
        if token:
            return token
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh())
            self._refreshing.add_done_callback(_consume_exception)
        return await asyncio.shield(self._refreshing)

    async def _refresh(self) -> str:
        async with self._cache.lock(self._cache_key):
            token = await self._cache.get(self._cache_key)  # another process may have won
            if token:
                return token
            data = await self._request(
                "GET",
                "gettoken",
                params={"corpid": self.corp_id, "corpsecret": self._secret},
                token=None,
            )
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise WeComTransportError("gettoken", "answer has no access_token")
            expires_in = float(data.get("expires_in") or 7200)
            # Near its end a token is used to the last second; a late 42001 triggers the retry.
            ttl = expires_in - REFRESH_MARGIN if expires_in > 2 * REFRESH_MARGIN else expires_in
            await self._cache.set(self._cache_key, token, ttl)
            logger.info(
                "fetched WeCom access token for agent %s (cached %.0f s)", self.agent_id, ttl
            )
            return token

    async def invalidate_token(self, token: str) -> None:
        """Drop `token` from the cache unless another caller already replaced it."""
        if await self._cache.get(self._cache_key) == token:
            await self._cache.delete(self._cache_key)

    # --- calls ------------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
    ) -> dict[str, Any]:
        """One API call with the token added; a rejected token is replaced and retried once."""
        factory: DataFactory | None = (lambda: data) if data is not None else None
        return await self._call(method, path, params=params, json=json, data_factory=factory)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data_factory: DataFactory | None = None,
    ) -> dict[str, Any]:
        token = await self.access_token()
        try:
            return await self._request(
                method, path, params=params, json=json, data_factory=data_factory, token=token
            )
        except WeComError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
            logger.info(
                "WeCom %s refused the token (errcode %s); fetching a new one", path, exc.errcode
            )
            await self.invalidate_token(token)
            token = await self.access_token()
            return await self._request(
                method, path, params=params, json=json, data_factory=data_factory, token=token
            )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data_factory: DataFactory | None = None,
        token: str | None,
    ) -> dict[str, Any]:
        _, body = await self._fetch(
            method, path, params=params, json=json, data_factory=data_factory, token=token
        )
        return self._answer(path, body, token)

    async def _fetch(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data_factory: DataFactory | None = None,
        token: str | None,
    ) -> tuple[dict[str, str], bytes]:
        """One HTTP exchange: the answer's headers and body, or a scrubbed transport error."""
        query = {
            k: str(int(v)) if isinstance(v, bool) else str(v) for k, v in (params or {}).items()
        }
        if token is not None:
            query["access_token"] = token
        try:
            async with self._session.request(
                method,
                f"{self.base_url}/{path}",
                params=query,
                json=json,
                data=data_factory() if data_factory is not None else None,
                timeout=self._timeout,
            ) as resp:
                if resp.status != 200:
                    raise WeComTransportError(path, f"HTTP {resp.status}", status=resp.status)
                headers = {k.lower(): v for k, v in resp.headers.items()}
                return headers, await resp.read()
        except TimeoutError:
            # aiohttp's messages can embed the URL, whose query holds the token: say less
            raise WeComTimeoutError(path, "timed out") from None
        except WeComTransportError:
            raise
        except aiohttp.ClientError as exc:
            raise WeComTransportError(path, type(exc).__name__) from None

    def _answer(self, path: str, body: bytes, token: str | None) -> dict[str, Any]:
        """WeCom's JSON envelope; a non-zero errcode becomes a WeComError."""
        try:
            payload = loads(body)
        except ValueError:
            raise WeComTransportError(path, "answer is not JSON") from None
        if not isinstance(payload, dict):
            raise WeComTransportError(path, "answer is not a JSON object")
        errcode = payload.get("errcode", 0)
        if errcode:
            errmsg = self._scrub(str(payload.get("errmsg", "")), token)
            raise WeComError(int(errcode), errmsg, path)
        return payload

    def _scrub(self, text: str, token: str | None) -> str:
        for secret in (self._secret, token):
            if secret:
                text = text.replace(secret, "***")
        return text

    # --- messages ---------------------------------------------------------------------------

    async def send_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        """message/send; the answer carries invaliduser, msgid and maybe response_code."""
        return await self.call("POST", "message/send", json={**payload, "agentid": self.agent_id})

    async def update_template_card(self, payload: dict[str, Any]) -> dict[str, Any]:
        """message/update_template_card with a single-use response_code (PROTOCOL.md §4.3)."""
        body = {**payload, "agentid": self.agent_id}
        return await self.call("POST", "message/update_template_card", json=body)

    async def upload_media(self, kind: str, filename: str, content: bytes) -> str:
        """Upload temporary media (valid 3 days) and return its media_id."""

        def form() -> aiohttp.FormData:
            # Raw UTF-8 filename, as browsers send it; a %-quoted one would show as %E5...
            data = aiohttp.FormData(quote_fields=False)
            # A stream, not bytes: aiohttp warns that a large bytes body blocks the loop
            data.add_field(
                "media",
                io.BytesIO(content),
                filename=filename,
                content_type="application/octet-stream",
            )
            return data

        answer = await self._call("POST", "media/upload", params={"type": kind}, data_factory=form)
        return str(answer["media_id"])

    async def download_media(self, media_id: str) -> DownloadedMedia:
        """media/get: a received file's bytes (PROTOCOL.md §3: media ids live 3 days).

        The file comes as the body with a Content-Disposition; an error is WeCom's JSON
        envelope without one (40007 for an unknown or expired id). A rejected token is
        replaced and the download retried once, as for every call.
        """
        path = "media/get"
        for attempt in (1, 2):
            token = await self.access_token()
            headers, body = await self._fetch(
                "GET", path, params={"media_id": media_id}, token=token
            )
            disposition = headers.get("content-disposition")
            if disposition is not None:
                return DownloadedMedia(
                    content=body,
                    file_name=_disposition_filename(disposition),
                    content_type=headers.get("content-type", "application/octet-stream"),
                )
            try:
                self._answer(path, body, token)
            except WeComError as exc:
                if exc.errcode not in TOKEN_ERRCODES or attempt == 2:
                    raise
                await self.invalidate_token(token)
                continue
            raise WeComTransportError(path, "answer has neither a file nor an errcode")
        raise AssertionError("unreachable")  # pragma: no cover

    # --- directory --------------------------------------------------------------------------

    async def get_user(self, userid: str) -> dict[str, Any]:
        """user/get: one member (no mobile/email/avatar for new apps, PROTOCOL.md §5)."""
        answer = await self.call("GET", "user/get", params={"userid": userid})
        return _strip_status(answer)

    async def list_users(
        self, department_id: int, fetch_child: bool = True
    ) -> list[dict[str, Any]]:
        """user/list: members of a department, optionally its whole subtree."""
        params = {"department_id": department_id, "fetch_child": int(fetch_child)}
        answer = await self.call("GET", "user/list", params=params)
        return list(answer.get("userlist", []))

    async def list_user_ids(self, *, page_size: int = LIST_ID_LIMIT) -> list[dict[str, Any]]:
        """user/list_id, all pages: {userid, department} rows, the one list new IPs may read."""
        rows: list[dict[str, Any]] = []
        cursor = ""
        seen: set[str] = set()
        while True:
            answer = await self.call(
                "POST", "user/list_id", json={"cursor": cursor, "limit": page_size}
            )
            rows.extend(answer.get("dept_user", []))
            cursor = str(answer.get("next_cursor") or "")
            if not cursor:
                return rows
            if cursor in seen:
                raise WeComTransportError("user/list_id", "cursor repeated")
            seen.add(cursor)

    async def list_departments(self, department_id: int | None = None) -> list[dict[str, Any]]:
        """department/list: a subtree (or everything visible) with names and leaders."""
        params = {} if department_id is None else {"id": department_id}
        answer = await self.call("GET", "department/list", params=params)
        return list(answer.get("department", []))

    async def list_department_ids(self, department_id: int | None = None) -> list[dict[str, Any]]:
        """department/simplelist: {id, parentid, order} rows, the fallback for department/list."""
        params = {} if department_id is None else {"id": department_id}
        answer = await self.call("GET", "department/simplelist", params=params)
        return list(answer.get("department_id", []))

    async def get_department(self, department_id: int) -> dict[str, Any]:
        """department/get: one department's details."""
        answer = await self.call("GET", "department/get", params={"id": department_id})
        return dict(answer.get("department", {}))


@dataclass(frozen=True)
class DownloadedMedia:
    content: bytes
    file_name: str | None
    content_type: str


def _disposition_filename(header: str) -> str | None:
    """filename*=UTF-8''… (RFC 5987) first, else filename="…"; None when it names nothing."""
    extended = re.search(r"filename\*\s*=\s*([^']*)'[^']*'([^;]+)", header, re.I)
    if extended:
        charset = extended.group(1) or "utf-8"
        try:
            return unquote(extended.group(2).strip(), encoding=charset) or None
        except LookupError:
            return unquote(extended.group(2).strip()) or None
    plain = re.search(r'filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;]+)', header, re.I)
    if plain:
        return (plain.group(1) if plain.group(1) is not None else plain.group(2)).strip() or None
    return None


def _strip_status(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("errcode", "errmsg")}


def _consume_exception(task: asyncio.Task[str]) -> None:
    # Every waiter may have been cancelled; mark the failure as seen so asyncio does not log it.
    if not task.cancelled():
        task.exception()


def split_for_wecom(content: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut text/markdown into pieces WeCom will not truncate: at line ends, never mid-character."""
    if limit < 4:
        raise ValueError("limit must hold one UTF-8 character (4 bytes)")
    if len(content.encode("utf-8")) <= limit:
        return [content]
    pieces: list[str] = []
    lines: list[str] = []
    size = 0
    for line in content.split("\n"):
        line_size = len(line.encode("utf-8"))
        if line_size > limit:
            if lines:
                pieces.append("\n".join(lines))
            *whole, rest = _split_line(line, limit)
            pieces.extend(whole)
            lines, size = [rest], len(rest.encode("utf-8"))
        elif lines and size + 1 + line_size > limit:
            pieces.append("\n".join(lines))
            lines, size = [line], line_size
        else:
            size += line_size + (1 if lines else 0)
            lines.append(line)
    if lines:
        pieces.append("\n".join(lines))
    return pieces


def _split_line(line: str, limit: int) -> list[str]:
    parts: list[str] = []
    start = 0
    size = 0
    for index, char in enumerate(line):
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(line[start:index])
            start, size = index, 0
        size += width
    parts.append(line[start:])
    return parts
