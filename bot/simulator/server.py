"""A local WeCom: the cgi-bin APIs the bot uses, faithful to PROTOCOL.md, with fault injection."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import BodyPartReader, web

from bot.simulator import directory as directory_api
from bot.simulator.callbacks import CallbackSender, FieldValue
from bot.simulator.chatlog import ChatLog
from bot.simulator.control import add_control_routes
from bot.simulator.delivery import MEDIA_TTL, MessageCenter
from bot.simulator.directory import Department, Directory, Member
from bot.simulator.errors import ApiError, error_body, normalize_path
from bot.simulator.faults import Fault, FaultPlan
from bot.simulator.messages import (
    MEDIA_LIMITS,
    MEDIA_MIN_BYTES,
    CardUpdate,
    Media,
    ResponseCode,
    SentMessage,
    Undelivered,
)
from crm_store.clock import Clock

__all__ = ["WeComSimulator"]

TOKEN_TTL = 7200  # PROTOCOL.md §4.1: access_token valid 7200 s, same token while valid

Handler = Callable[[web.Request], Awaitable[dict[str, Any] | web.StreamResponse]]
MEDIA_CONTENT_TYPES = {  # what media/get answers with, by kind [U: WeCom sends the file's own]
    "image": "image/jpeg",
    "voice": "audio/amr",
    "video": "video/mp4",
    "file": "application/octet-stream",
}
_json_dumps = functools.partial(json.dumps, ensure_ascii=False)


def _json(data: dict[str, Any]) -> web.Response:
    return web.json_response(data, dumps=_json_dumps)


class WeComSimulator:
    """One corp with one self-built app; tests configure its directory and inspect what it got."""

    def __init__(
        self,
        corp_id: str,
        corp_secret: str,
        agent_id: int,
        token: str,
        encoding_aes_key: str,
        clock: Clock,
        *,
        callback_url: str | None = None,
        tz: ZoneInfo | None = None,
    ) -> None:
        self.corp_id = corp_id
        self.corp_secret = corp_secret
        self.agent_id = agent_id
        self.token = token
        self.encoding_aes_key = encoding_aes_key
        self.clock = clock
        self.callback_url = callback_url
        self.directory = Directory()
        self.faults = FaultPlan()
        self.messages = MessageCenter(self.directory)
        # The records tests assert on (the same objects as in self.messages)
        self.sent_messages: list[SentMessage] = self.messages.sent
        self.dropped: list[Undelivered] = self.messages.dropped
        self.deduplicated: list[Undelivered] = self.messages.deduplicated
        self.card_updates: list[CardUpdate] = self.messages.card_updates
        self.media: dict[str, Media] = self.messages.media
        self.response_codes: dict[str, ResponseCode] = self.messages.response_codes
        self.calls: Counter[str] = Counter()
        self.token_calls = 0
        self._tokens: dict[str, datetime] = {}
        self._current_token: str | None = None
        self._restricted: dict[str, int] = {}
        self._released = asyncio.Event()
        self._closed = False
        self._sender: CallbackSender | None = None
        # What the chat page and `wecrm chat` read, and the hooks the demo fills in.
        self.tz = tz or ZoneInfo("Asia/Shanghai")
        self.log = ChatLog()
        self.messages.sent_listeners.append(self.log.on_sent)
        self.messages.update_listeners.append(self.log.on_card_update)
        self.roles: dict[str, str] = {}  # userid -> what the page shows as the person's role
        self.clock_listeners: list[Callable[[], Awaitable[None]]] = []
        self.settle_hook: Callable[[], Awaitable[None]] | None = None
        self.app = self._make_app()

    # --- directory ------------------------------------------------------------------------

    def add_department(
        self,
        id: int,
        name: str,
        parentid: int = 0,
        *,
        leaders: Iterable[str] = (),
        order: int = 0,
        name_en: str = "",
    ) -> Department:
        """Add a department (root: parentid 0, usually id 1)."""
        return self.directory.add_department(
            id, name, parentid, leaders=leaders, order=order, name_en=name_en
        )

    def add_user(
        self,
        userid: str,
        name: str,
        department: Iterable[int] = (1,),
        *,
        main_department: int | None = None,
        is_leader_in_dept: Iterable[int] | None = None,
        direct_leader: Iterable[str] = (),
        status: int = 1,
        position: str = "",
        alias: str = "",
    ) -> Member:
        """Add a member to the app's visible directory."""
        return self.directory.add_member(
            userid,
            name,
            department,
            main_department=main_department,
            is_leader_in_dept=is_leader_in_dept,
            direct_leader=direct_leader,
            status=status,
            position=position,
            alias=alias,
        )

    def remove_user(self, userid: str) -> None:
        """The member leaves: later sends list them in invaliduser."""
        self.directory.remove_member(userid)

    # --- configuration and faults ---------------------------------------------------------

    def restrict_api(self, path: str, errcode: int = 48002) -> None:
        """Make an endpoint refuse every call, e.g. department/list -> 48002 (PROTOCOL.md §5)."""
        self._restricted[normalize_path(path)] = errcode

    def unrestrict_api(self, path: str) -> None:
        """Let a restricted endpoint answer normally again."""
        self._restricted.pop(normalize_path(path), None)

    def fail_next(self, path: str, errcode: int = -1, times: int = 1) -> None:
        """The next `times` calls to `path` answer {"errcode": errcode} and do nothing."""
        self.faults.add(path, "errcode", errcode, times)

    def http_error_next(self, path: str, status: int = 502, times: int = 1) -> None:
        """The next `times` calls to `path` get a bare HTTP error, as from a broken proxy."""
        self.faults.add(path, "http", status, times)

    def delay_next(self, path: str, seconds: float, times: int = 1) -> None:
        """The next calls wait `seconds` of real time, then are processed and answered.

        TestServer cancels a handler whose client went away, so a client timeout means the
        call had no effect; `release_delays()` and shutdown end every wait early.
        """
        self.faults.add(path, "delay", seconds, times)

    def drop_connection_next(self, path: str, times: int = 1) -> None:
        """The next calls get their connection closed without any response and have no effect.

        aiohttp's client retries an idempotent request (GET) once on a fresh connection after
        such a drop, so a GET endpoint needs times=2 for the caller to see the error.
        """
        self.faults.add(path, "drop", 0, times)

    def release_delays(self) -> None:
        """End every pending delay now; later delays wait again."""
        self._released.set()
        self._released = asyncio.Event()

    def expire_tokens(self) -> None:
        """WeCom may expire tokens early (PROTOCOL.md §4.1): next use -> 42001, gettoken -> new."""
        now = self.clock.now()
        for token in self._tokens:
            self._tokens[token] = now
        self._current_token = None

    def invalidate_tokens(self) -> None:
        """Forget every token: next use -> 40014, gettoken -> a new token."""
        self._tokens.clear()
        self._current_token = None

    # --- what users see --------------------------------------------------------------------

    def messages_to(self, userid: str) -> list[SentMessage]:
        """Messages the member actually received: not dropped, not deduplicated, truncated."""
        return self.messages.messages_to(userid)

    def texts_to(self, userid: str) -> list[str]:
        """The visible text of each text/markdown message the member received."""
        return [m.content for m in self.messages_to(userid) if m.content is not None]

    def screen(self, userid: str) -> list[str]:
        """Everything the member received, as they would read it (cards flattened to text)."""
        return [m.as_text() for m in self.messages_to(userid)]

    # --- the callback side ------------------------------------------------------------------

    @property
    def sender(self) -> CallbackSender:
        """The encrypting callback client for this corp and app."""
        if self._sender is None:
            self._sender = CallbackSender(
                token=self.token,
                encoding_aes_key=self.encoding_aes_key,
                corp_id=self.corp_id,
                agent_id=self.agent_id,
                clock=self.clock,
            )
        return self._sender

    def _bot_url(self) -> str:
        if not self.callback_url:
            raise RuntimeError("set sim.callback_url to the bot's callback URL first")
        return self.callback_url

    async def send_callback(self, plaintext_xml: str) -> tuple[int, str]:
        """POST any plaintext callback, encrypted and signed, to the configured bot URL."""
        return await self.sender.post_xml(self._bot_url(), plaintext_xml)

    async def verify_callback_url(self, echo: str | None = None) -> tuple[int, str]:
        """The GET verification an admin triggers when saving the callback URL."""
        return await self.sender.verify_url(self._bot_url(), echo)

    async def send_text(
        self,
        from_user: str,
        content: str,
        msg_id: int | None = None,
        create_time: int | None = None,
    ) -> tuple[int, str]:
        """A member types `content` to the app."""
        return await self.sender.send_text(
            self._bot_url(), from_user, content, msg_id=msg_id, create_time=create_time
        )

    def receive_media(self, kind: str, filename: str, content: bytes) -> str:
        """A file a member received (a customer's photo, say): its media id, valid 3 days."""
        return self.messages.store_media(kind, filename, content, self.clock.now()).media_id

    async def send_media(
        self, from_user: str, kind: str, filename: str, content: bytes
    ) -> tuple[int, str]:
        """The member forwards a picture, voice, video or file to the app (doc 90239 fields)."""
        media_id = self.receive_media(kind, filename, content)
        fields: dict[str, Any] = {"MediaId": media_id}
        if kind == "image":
            fields["PicUrl"] = f"https://wework.qpic.cn/sim/{media_id}/0"
        elif kind == "voice":
            fields["Format"] = "amr"
        elif kind == "file":
            fields["FileName"] = filename
        return await self.sender.send_message(self._bot_url(), from_user, kind, **fields)

    async def send_event(
        self, from_user: str, event: str, **fields: FieldValue
    ) -> tuple[int, str]:
        """An event from a member (or from 'sys' for contact changes)."""
        extra: dict[str, Any] = dict(fields)  # field names never collide with create_time
        return await self.sender.send_event(self._bot_url(), from_user, event, **extra)

    async def click_card(
        self,
        from_user: str,
        task_id: str,
        event_key: str,
        *,
        selected_items: list[dict[str, Any]] | None = None,
    ) -> tuple[int, str]:
        """The member presses a button of a card we sent: template_card_event with a fresh code."""
        card = next(
            (
                m
                for m in reversed(self.sent_messages)
                if m.msgtype == "template_card" and m.payload.get("task_id") == task_id
            ),
            None,
        )
        if card is None:
            raise LookupError(f"no template_card with task_id {task_id!r} was sent")
        card_type = str(card.payload.get("card_type"))
        code = self.messages.issue_response_code(task_id, card_type, [from_user], self.clock.now())
        fields: dict[str, FieldValue] = {
            "EventKey": event_key,
            "TaskId": task_id,
            "CardType": card_type,
            "ResponseCode": code,
        }
        if selected_items is not None:
            fields["SelectedItems"] = selected_items
        return await self.send_event(from_user, "template_card_event", **fields)

    async def close(self) -> None:
        """Release delays and close the callback client's session."""
        self._closed = True
        self.log.close()
        self.release_delays()
        if self._sender is not None:
            await self._sender.close()

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve the app for the demo and benchmarks; yields the root URL (APIs under /cgi-bin)."""
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        try:
            address = runner.addresses[0]
            yield f"http://{address[0]}:{address[1]}"
        finally:
            await runner.cleanup()

    # --- the app ----------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        routes: list[tuple[str, str, Handler, bool]] = [
            ("GET", "gettoken", self._gettoken, False),
            ("POST", "message/send", self._message_send, True),
            ("POST", "message/update_template_card", self._update_template_card, True),
            ("POST", "media/upload", self._media_upload, True),
            ("GET", "media/get", self._media_get, True),
            ("GET", "user/get", self._query_api(directory_api.user_get), True),
            ("GET", "user/list", self._query_api(directory_api.user_list), True),
            ("GET", "user/simplelist", self._query_api(directory_api.user_simplelist), True),
            ("POST", "user/list_id", self._user_list_id, True),
            ("GET", "department/list", self._query_api(directory_api.department_list), True),
            (
                "GET",
                "department/simplelist",
                self._query_api(directory_api.department_simplelist),
                True,
            ),
            ("GET", "department/get", self._query_api(directory_api.department_get), True),
        ]
        for method, path, handler, needs_token in routes:
            app.router.add_route(
                method, f"/cgi-bin/{path}", self._endpoint(path, handler, needs_token)
            )
        app.router.add_post("/sim/say", self._sim_say)
        app.router.add_post("/sim/click", self._sim_click)
        app.router.add_get("/sim/messages", self._sim_messages)
        add_control_routes(app, self)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.close()

    def _endpoint(
        self, path: str, handler: Handler, needs_token: bool
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            self.calls[path] += 1
            if path == "gettoken":
                self.token_calls += 1
            fault = self.faults.take(path)
            if fault is not None:
                early = await self._apply_fault(request, fault)
                if early is not None:
                    return early
            try:
                if needs_token:
                    self._check_token(request)
                if path in self._restricted:
                    raise ApiError(self._restricted[path])
                result = await handler(request)
            except ApiError as exc:
                return _json(error_body(exc.errcode, exc.detail))
            if isinstance(result, web.StreamResponse):
                return result  # a file (media/get), not the JSON envelope
            return _json({"errcode": 0, "errmsg": "ok", **result})

        return endpoint

    async def _apply_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        if fault.kind == "errcode":
            return _json(error_body(int(fault.value)))
        if fault.kind == "http":
            return web.Response(status=int(fault.value), text="Bad Gateway")
        if fault.kind == "delay":
            if not self._closed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), fault.value)
            return None
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    def _check_token(self, request: web.Request) -> None:
        token = request.query.get("access_token")
        if not token:
            raise ApiError(41001)
        expires_at = self._tokens.get(token)
        if expires_at is None:
            raise ApiError(40014)
        if self.clock.now() >= expires_at:
            raise ApiError(42001)

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        try:
            body = json.loads(raw or b"{}")
        except (UnicodeDecodeError, ValueError):
            # PROTOCOL.md §4.8: bad JSON shows "Warning: wrong json format." (errcode [U])
            raise ApiError(40058, "Warning: wrong json format.") from None
        if not isinstance(body, dict):
            raise ApiError(40058, "Warning: wrong json format.")
        return body

    def _check_agent(self, body: dict[str, Any]) -> None:
        agentid = body.get("agentid")
        if agentid is None or agentid == "":
            raise ApiError(41011)
        # A token and an agentid of different apps: 40056 is our choice; WeCom may say 301002 [U]
        if isinstance(agentid, bool) or str(agentid).strip() != str(self.agent_id):
            raise ApiError(40056)

    # --- gettoken ---------------------------------------------------------------------------

    async def _gettoken(self, request: web.Request) -> dict[str, Any]:
        corpid = request.query.get("corpid", "")
        secret = request.query.get("corpsecret", "")
        if not corpid:
            raise ApiError(41002)
        if corpid != self.corp_id:
            raise ApiError(40013)
        if not secret:
            raise ApiError(41004)
        if not secrets.compare_digest(secret.encode(), self.corp_secret.encode()):
            raise ApiError(40001, "invalid secret")
        now = self.clock.now()
        token = self._current_token
        if token is None or self._tokens.get(token, now) <= now:
            token = secrets.token_urlsafe(96)
            self._tokens[token] = now + timedelta(seconds=TOKEN_TTL)
            self._current_token = token
        # A repeat call returns the same token with the time it has left [U: WeCom may say 7200]
        remaining = int((self._tokens[token] - now).total_seconds())
        return {"access_token": token, "expires_in": remaining}

    # --- messages and media --------------------------------------------------------------

    async def _message_send(self, request: web.Request) -> dict[str, Any]:
        body = await self._json_body(request)
        self._check_agent(body)
        return self.messages.send(body, self.clock.now())

    async def _update_template_card(self, request: web.Request) -> dict[str, Any]:
        body = await self._json_body(request)
        self._check_agent(body)
        return self.messages.update_card(body, self.clock.now())

    async def _media_upload(self, request: web.Request) -> dict[str, Any]:
        kind = request.query.get("type", "")
        if kind not in MEDIA_LIMITS:
            raise ApiError(40005)
        if not request.content_type.startswith("multipart/"):
            raise ApiError(44001)
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name != "media":
                continue
            data = bytearray()
            while chunk := await part.read_chunk(64 * 1024):
                data += chunk
                if len(data) > MEDIA_LIMITS[kind]:
                    raise ApiError(45001)
            if len(data) <= MEDIA_MIN_BYTES:
                raise ApiError(40006)
            now = self.clock.now()
            media = self.messages.store_media(kind, part.filename or "media", bytes(data), now)
            # doc 90253 shows created_at as a string of epoch seconds [U]
            return {
                "type": kind,
                "media_id": media.media_id,
                "created_at": str(int(now.timestamp())),
            }
        raise ApiError(44001)

    async def _media_get(self, request: web.Request) -> web.StreamResponse:
        """media/get: the file with a Content-Disposition; 40007 once its 3 days are over."""
        media_id = request.query.get("media_id", "")
        if not media_id:
            raise ApiError(41006)
        media = self.media.get(media_id)
        if media is None or self.clock.now() - media.created_at > MEDIA_TTL:
            raise ApiError(40007)
        ascii_name = media.filename.encode("ascii", "replace").decode().replace('"', "_")
        return web.Response(
            body=media.content,
            content_type=MEDIA_CONTENT_TYPES.get(media.type, "application/octet-stream"),
            headers={
                "Content-Disposition": f'attachment; filename="{ascii_name}"; '
                f"filename*=UTF-8''{quote(media.filename)}"
            },
        )

    # --- directory --------------------------------------------------------------------------

    def _query_api(self, fn: Callable[[Directory, Mapping[str, str]], dict[str, Any]]) -> Handler:
        async def handler(request: web.Request) -> dict[str, Any]:
            return fn(self.directory, request.query)

        return handler

    async def _user_list_id(self, request: web.Request) -> dict[str, Any]:
        return directory_api.user_list_id(self.directory, await self._json_body(request))

    # --- the demo's control API -------------------------------------------------------------

    async def _sim_say(self, request: web.Request) -> web.Response:
        body = await _control_body(request, "from", "text")
        if not self.callback_url:
            return web.json_response({"error": "no callback_url configured"}, status=409)
        self.log.said(body["from"], body["text"], self.clock.now())
        status, text = await self.send_text(body["from"], body["text"])
        return _json({"status": status, "body": text})

    async def _sim_click(self, request: web.Request) -> web.Response:
        body = await _control_body(request, "from", "task_id", "key")
        if not self.callback_url:
            return web.json_response({"error": "no callback_url configured"}, status=409)
        label = self._button_label(body["task_id"], body["key"])
        if label is None:
            return web.json_response({"error": "no such card or button"}, status=404)
        self.log.tapped(body["from"], body["task_id"], body["key"], label, self.clock.now())
        try:
            status, text = await self.click_card(body["from"], body["task_id"], body["key"])
        except LookupError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        return _json({"status": status, "body": text})

    def _button_label(self, task_id: str, key: str) -> str | None:
        """The text of the button `key` on the card `task_id`; None if there is no such one."""
        for message in reversed(self.sent_messages):
            if message.msgtype == "template_card" and message.payload.get("task_id") == task_id:
                for button in message.payload.get("button_list") or []:
                    if button.get("key") == key:
                        return str(button.get("text", key))
                return None
        return None

    async def _sim_messages(self, request: web.Request) -> web.Response:
        userid = request.query.get("to", "")
        after = int(request.query.get("after", "0") or 0)
        seen = [m for m in self.messages_to(userid) if m.seq > after]
        last = seen[-1].seq if seen else after
        return _json({"messages": [m.as_json() for m in seen], "last": last})


async def _control_body(request: web.Request, *keys: str) -> dict[str, str]:
    """The demo control API's JSON body, with the given keys as strings, or HTTP 400."""
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(body, dict) or any(k not in body for k in keys):
        raise web.HTTPBadRequest(text=f"body needs {', '.join(keys)}")
    return {k: str(body[k]) for k in keys}
