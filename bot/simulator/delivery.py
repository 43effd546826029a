"""message/send, card updates and media as WeCom applies them: who gets what, and who not."""

from __future__ import annotations

import copy
import itertools
import secrets
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.simulator.directory import RECEIVING_STATUSES, Directory
from bot.simulator.errors import ApiError
from bot.simulator.messages import (
    INTERACTIVE_CARDS,
    CardUpdate,
    Media,
    ResponseCode,
    SentMessage,
    Undelivered,
    content_key,
    normalize_payload,
)

__all__ = ["MessageCenter"]

PER_USER_PER_MINUTE = 30  # PROTOCOL.md §4.7: per app -> same member ≤30/min, excess dropped
DUPLICATE_INTERVAL = 1800  # PROTOCOL.md §4.2: duplicate_check_interval default 1800 s, max 4 h
DUPLICATE_INTERVAL_MAX = 4 * 3600
RESPONSE_CODE_TTL = timedelta(hours=72)  # PROTOCOL.md §3/§4.3: 72 h, single use
MEDIA_TTL = timedelta(days=3)  # PROTOCOL.md §4.2: temporary media valid 3 days


def _split(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        raise ApiError(40058, "recipient lists are '|'-separated strings")
    return [part.strip() for part in value.split("|") if part.strip()]


class MessageCenter:
    """The app's outgoing messages and their fate per recipient; tests read its lists."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.sent: list[SentMessage] = []
        self.dropped: list[Undelivered] = []
        self.deduplicated: list[Undelivered] = []
        self.card_updates: list[CardUpdate] = []
        self.media: dict[str, Media] = {}
        self.response_codes: dict[str, ResponseCode] = {}
        self._recent: dict[str, deque[datetime]] = {}
        self._last_delivery: dict[tuple[str, str], datetime] = {}
        self._task_ids: set[str] = set()
        self._msgids = itertools.count(1)
        # Live readers (the chat page's log): told of each accepted message and card update.
        self.sent_listeners: list[Callable[[SentMessage], None]] = []
        self.update_listeners: list[Callable[[CardUpdate], None]] = []

    def messages_to(self, userid: str) -> list[SentMessage]:
        """Messages the member actually received: not dropped, not deduplicated, truncated."""
        member = self.directory.member(userid)
        name = member.userid if member else userid
        return [m for m in self.sent if name in m.delivered_to]

    def media_ok(self, msgtype: str, media_id: str, now: datetime) -> bool:
        """A media_id exists, is under 3 days old and fits the message type."""
        media = self.media.get(media_id)
        if media is None or now - media.created_at > MEDIA_TTL:
            return False
        return msgtype == "file" or media.type == msgtype

    def send(self, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Apply one message/send request (agentid already checked); returns the success body."""
        msgtype = body.get("msgtype")
        if not isinstance(msgtype, str):
            raise ApiError(40008)
        payload, truncated = normalize_payload(
            msgtype, body.get(msgtype), lambda kind, mid: self.media_ok(kind, mid, now)
        )
        task_id = payload.get("task_id") if msgtype == "template_card" else None
        if task_id is not None and task_id in self._task_ids:
            raise ApiError(40058, "task_id already used by this app")  # doc 90236: unique [U]
        interval = self._duplicate_interval(body)
        recipients, bad_users, bad_parties, bad_tags = self._resolve(body)
        if not recipients:
            raise ApiError(81013)
        message = SentMessage(
            seq=len(self.sent) + 1,
            msgid=f"sim{next(self._msgids):012d}",
            touser=str(body.get("touser") or ""),
            toparty=str(body.get("toparty") or ""),
            msgtype=msgtype,
            payload=payload,
            request=copy.deepcopy(body),
            at=now,
            invalid=bad_users,
            truncated=truncated,
        )
        self._deliver(message, recipients, content_key(msgtype, body.get(msgtype)), interval)
        result: dict[str, Any] = {}
        for name, bad in (
            ("invaliduser", bad_users),
            ("invalidparty", bad_parties),
            ("invalidtag", bad_tags),
        ):
            if bad:
                result[name] = "|".join(bad)
        result["msgid"] = message.msgid
        if task_id is not None:
            self._task_ids.add(task_id)
        card_type = payload.get("card_type")
        if msgtype == "template_card" and card_type in INTERACTIVE_CARDS:
            message.response_code = self.issue_response_code(
                str(task_id), str(card_type), message.delivered_to, now
            )
            result["response_code"] = message.response_code
        self.sent.append(message)
        for listener in self.sent_listeners:
            listener(message)
        return result

    def _deliver(
        self, message: SentMessage, recipients: list[str], key: str, interval: timedelta | None
    ) -> None:
        now = message.at
        for userid in recipients:
            last = self._last_delivery.get((userid, key))
            if interval is not None and last is not None and now - last < interval:
                message.deduplicated.append(userid)
                self.deduplicated.append(Undelivered(userid, message, "duplicate"))
            elif not self._within_rate(userid, now):
                message.dropped.append(userid)
                self.dropped.append(Undelivered(userid, message, "rate_limited"))
            else:
                self._recent[userid].append(now)
                self._last_delivery[(userid, key)] = now
                message.delivered_to.append(userid)

    def _resolve(self, body: dict[str, Any]) -> tuple[list[str], list[str], list[str], list[str]]:
        """Recipients that exist and can receive, plus the invalid users, parties and tags."""
        recipients: dict[str, None] = {}
        bad_users: list[str] = []
        bad_parties: list[str] = []
        touser = body.get("touser")
        if touser == "@all":
            # doc 90236: with touser "@all", toparty and totag are ignored
            recipients.update((m.userid, None) for m in self.directory.receivers())
            return list(recipients), [], [], []
        for userid in _split(touser):
            member = self.directory.member(userid)
            if member is None or member.status not in RECEIVING_STATUSES:
                # doc 90236: invaliduser is case-insensitive, reported in lower case
                bad_users.append(userid.lower())
            else:
                recipients[member.userid] = None
        for party in _split(body.get("toparty")):
            dept = self.directory.department(int(party)) if party.isdigit() else None
            if dept is None:
                bad_parties.append(party)
                continue
            for member in self.directory.members_of(dept.id, fetch_child=True):
                if member.status in RECEIVING_STATUSES:
                    recipients[member.userid] = None
        bad_tags = _split(body.get("totag"))  # the simulated corp has no tags
        return list(recipients), bad_users, bad_parties, bad_tags

    @staticmethod
    def _duplicate_interval(body: dict[str, Any]) -> timedelta | None:
        if str(body.get("enable_duplicate_check", 0)) != "1":
            return None
        raw = body.get("duplicate_check_interval", DUPLICATE_INTERVAL)
        try:
            seconds = int(raw)
        except (TypeError, ValueError):
            raise ApiError(40058, "invalid duplicate_check_interval") from None
        # Values above the 4 h maximum are clamped [U: WeCom may refuse them]
        return timedelta(seconds=max(0, min(seconds, DUPLICATE_INTERVAL_MAX)))

    def _within_rate(self, userid: str, now: datetime) -> bool:
        # A sliding 60 s window [U: WeCom's window may be the calendar minute]
        window = self._recent.setdefault(userid, deque())
        while window and now - window[0] >= timedelta(minutes=1):
            window.popleft()
        return len(window) < PER_USER_PER_MINUTE

    def issue_response_code(
        self, task_id: str, card_type: str, userids: list[str], now: datetime
    ) -> str:
        """A fresh single-use code, as a card send or a card click hands out."""
        code = secrets.token_urlsafe(32)
        self.response_codes[code] = ResponseCode(code, task_id, card_type, now, list(userids))
        return code

    def update_card(self, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Apply one update_template_card request (agentid already checked)."""
        code = body.get("response_code")
        if not isinstance(code, str) or not code:
            raise ApiError(40058, "response_code missing")
        record = self.response_codes.get(code)
        # [U] PROTOCOL.md §4.3: a used or >72 h old response_code -> 60140 (third-party source)
        if record is None or record.used or now - record.issued_at > RESPONSE_CODE_TTL:
            raise ApiError(60140)
        button, card = body.get("button"), body.get("template_card")
        if (button is None) == (card is None):
            raise ApiError(40058, "give exactly one of button and template_card")
        if button is not None:
            if not isinstance(button, dict) or not button.get("replace_name"):
                raise ApiError(40058, "button.replace_name missing")
            if record.card_type not in INTERACTIVE_CARDS:
                raise ApiError(40058, "button update needs an interaction card")
        else:
            card, _ = normalize_payload(
                "template_card", card, lambda kind, mid: self.media_ok(kind, mid, now)
            )
        userids = body.get("userids")
        record.used = True
        update = CardUpdate(
            response_code=code,
            task_id=record.task_id,
            userids=list(userids) if isinstance(userids, list) else list(record.userids),
            button=button,
            template_card=card,
            at=now,
        )
        self.card_updates.append(update)
        for listener in self.update_listeners:
            listener(update)
        return {"invaliduser": []}

    def store_media(self, kind: str, filename: str, content: bytes, now: datetime) -> Media:
        """Keep an upload; its media_id works for 3 days."""
        media = Media(secrets.token_urlsafe(33), kind, filename, content, now)
        self.media[media.media_id] = media
        return media
