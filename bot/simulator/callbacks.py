"""WeCom's side of the callback: encrypt, sign and POST to the bot as WeCom does (§1)."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import aiohttp
from yarl import URL

from bot.gateway.crypto import WeComCrypto
from crm_store.clock import Clock

__all__ = ["CallbackSender", "build_xml"]

FieldValue = str | int | Sequence[Any] | Mapping[str, Any]
# Events sent without an AgentID: contact changes come from 'sys' (doc 90240 samples) [U]
_NO_AGENT_EVENTS = frozenset({"change_contact", "change_external_contact", "change_external_chat"})
_ITEM_NAMES = {"PicList": "item"}
# MsgIds are unique across WeCom, so across simulator runs too: a demo restarted on the same
# database must not have its new messages taken for retries of old ones.
_msg_ids = itertools.count(7_000_000_000_000_000_000 + secrets.randbelow(10**15) * 10**3)


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _element(name: str, value: FieldValue) -> str:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return f"<{name}>{value}</{name}>"
    if isinstance(value, str):
        return f"<{name}>{_cdata(value)}</{name}>"
    if isinstance(value, Mapping):
        inner = "".join(_element(k, v) for k, v in value.items())
        return f"<{name}>{inner}</{name}>"
    item = _ITEM_NAMES.get(name, name.removesuffix("s"))
    inner = "".join(_element(item, v) for v in value)
    return f"<{name}>{inner}</{name}>"


def build_xml(fields: Mapping[str, FieldValue]) -> str:
    """Plaintext callback XML in WeCom's layout: strings as CDATA, numbers bare, one per line."""
    return "<xml>" + "\n".join(_element(k, v) for k, v in fields.items()) + "\n</xml>"


class CallbackSender:
    """Posts encrypted callbacks to a bot URL as WeCom would (signature over Encrypt only)."""

    def __init__(
        self,
        *,
        token: str,
        encoding_aes_key: str,
        corp_id: str,
        agent_id: int,
        clock: Clock,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.crypto = WeComCrypto(token, encoding_aes_key, corp_id)
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.clock = clock
        self.timeout = timeout
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> CallbackSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this sender created it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _timestamp(self) -> str:
        return str(int(self.clock.now().timestamp()))

    @staticmethod
    def _nonce() -> str:
        return str(secrets.randbelow(9 * 10**9) + 10**9)

    def build_post(
        self, plaintext_xml: str, timestamp: str | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The query params and body of one callback POST, for tests that tamper with them."""
        timestamp = self._timestamp() if timestamp is None else timestamp
        nonce = self._nonce() if nonce is None else nonce
        encrypt = self.crypto.encrypt(plaintext_xml)
        params = {
            "msg_signature": self.crypto.signature(timestamp, nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        body = (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName>"
            f"<Encrypt>{_cdata(encrypt)}</Encrypt>"
            f"<AgentID>{_cdata(str(self.agent_id))}</AgentID></xml>"
        )
        return params, body.encode()

    @staticmethod
    def _url(url: str, params: Mapping[str, str]) -> URL:
        # PROTOCOL.md §1.1: values arrive percent-encoded, '+' as %2B, '/' as %2F, '=' as %3D
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
        base = URL(url)
        if base.raw_query_string:
            query = f"{base.raw_query_string}&{query}"
        return URL(f"{base.with_query(None).with_fragment(None)}?{query}", encoded=True)

    async def post_raw(self, url: str, params: Mapping[str, str], body: bytes) -> tuple[int, str]:
        """POST exactly these params and body; returns (HTTP status, response text)."""
        async with self._http().post(
            self._url(url, params),
            data=body,
            headers={"Content-Type": "text/xml"},
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as resp:
            return resp.status, await resp.text()

    async def post_xml(
        self,
        url: str,
        plaintext_xml: str,
        timestamp: str | None = None,
        nonce: str | None = None,
    ) -> tuple[int, str]:
        """Encrypt, sign and POST one plaintext callback."""
        params, body = self.build_post(plaintext_xml, timestamp, nonce)
        return await self.post_raw(url, params, body)

    async def verify_url(self, url: str, echo: str | None = None) -> tuple[int, str]:
        """WeCom's GET verification; a correct bot answers with `echo` exactly."""
        echo = str(secrets.randbelow(9 * 10**18) + 10**18) if echo is None else echo
        timestamp, nonce = self._timestamp(), self._nonce()
        echostr = self.crypto.encrypt(echo)
        params = {
            "msg_signature": self.crypto.signature(timestamp, nonce, echostr),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }
        async with self._http().get(
            self._url(url, params), timeout=aiohttp.ClientTimeout(total=self.timeout)
        ) as resp:
            return resp.status, await resp.text()

    def message_xml(
        self,
        from_user: str,
        msgtype: str,
        *,
        msg_id: int | None = None,
        create_time: int | None = None,
        **fields: FieldValue,
    ) -> str:
        """Plaintext of a member's message (doc 90239) with our corp and agent filled in."""
        data: dict[str, FieldValue] = {
            "ToUserName": self.corp_id,
            "FromUserName": from_user,
            "CreateTime": int(self._timestamp()) if create_time is None else create_time,
            "MsgType": msgtype,
            **fields,
            "MsgId": next(_msg_ids) if msg_id is None else msg_id,
            "AgentID": self.agent_id,
        }
        return build_xml(data)

    def event_xml(
        self, from_user: str, event: str, *, create_time: int | None = None, **fields: FieldValue
    ) -> str:
        """Plaintext of an event (doc 90240), e.g. template_card_event or change_contact."""
        data: dict[str, FieldValue] = {
            "ToUserName": self.corp_id,
            "FromUserName": from_user,
            "CreateTime": int(self._timestamp()) if create_time is None else create_time,
            "MsgType": "event",
            "Event": event,
            **fields,
        }
        if event not in _NO_AGENT_EVENTS:
            data["AgentID"] = self.agent_id
        return build_xml(data)

    async def send_text(
        self,
        url: str,
        from_user: str,
        content: str,
        msg_id: int | None = None,
        create_time: int | None = None,
    ) -> tuple[int, str]:
        """A member typed `content` to the app."""
        xml = self.message_xml(
            from_user, "text", msg_id=msg_id, create_time=create_time, Content=content
        )
        return await self.post_xml(url, xml)

    async def send_message(
        self,
        url: str,
        from_user: str,
        msgtype: str,
        *,
        msg_id: int | None = None,
        create_time: int | None = None,
        **fields: FieldValue,
    ) -> tuple[int, str]:
        """Any other message type (image, voice, location, link) with its fields."""
        xml = self.message_xml(
            from_user, msgtype, msg_id=msg_id, create_time=create_time, **fields
        )
        return await self.post_xml(url, xml)

    async def send_event(
        self,
        url: str,
        from_user: str,
        event: str,
        *,
        create_time: int | None = None,
        **fields: FieldValue,
    ) -> tuple[int, str]:
        """An event; lists nest WeCom-style (SelectedItems/SelectedItem, OptionIds/OptionId)."""
        if event == "enter_agent":
            fields.setdefault("EventKey", "")
        return await self.post_xml(
            url, self.event_xml(from_user, event, create_time=create_time, **fields)
        )

    def decrypt_reply(self, body: str) -> str:
        """Verify and decrypt a passive reply (PROTOCOL.md §1.4) the bot returned."""
        encrypt = self.crypto.parse_envelope(body.encode())
        root = ElementTree.fromstring(body)  # parse_envelope already refused DTDs and entities
        self.crypto.verify_signature(
            root.findtext("MsgSignature") or "",
            root.findtext("TimeStamp") or "",
            root.findtext("Nonce") or "",
            encrypt,
        )
        return self.crypto.decrypt(encrypt)
