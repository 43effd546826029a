"""Envelopes in other encodings, broken UTF-8, DTDs and entity tricks: 4xx, and a quiet log."""

from __future__ import annotations

import asyncio
import logging
from itertools import cycle, islice

import pytest

from tests.e2e.conftest import BotHarness

DECLARED = [
    b'<?xml version="1.0" encoding="GBK"?><xml><Encrypt>abc</Encrypt></xml>',
    b'<?xml version="1.0" encoding="Big5"?><xml><Encrypt>abc</Encrypt></xml>',
    b"<?xml version='1.0' encoding='gb2312'?><xml><Encrypt>abc</Encrypt></xml>",
    b'<?xml version="1.0" encoding="x-no-such-codec"?><xml><Encrypt>abc</Encrypt></xml>',
    b'<?xml version="1.0" encoding="UTF-16"?><xml><Encrypt>abc</Encrypt></xml>',
    b'<?xml version="1.0" encoding="ISO-8859-1"?><xml><Encrypt>\xe9</Encrypt></xml>',
    b'  <?xml version="1.0"  encoding = "Shift_JIS" ?><xml><Encrypt>abc</Encrypt></xml>',
]
BROKEN_UTF8 = [
    b"<xml><Encrypt>\xff\xfe\xfd</Encrypt></xml>",
    b"\xff\xfe<\x00x\x00m\x00l\x00>\x00",  # UTF-16 with its BOM
    b"<xml><Encrypt>\xc0\xaf</Encrypt></xml>",  # overlong '/'
    b"<xml><Encrypt>\xed\xa0\x80</Encrypt></xml>",  # a lone surrogate
]
DTD_TRICKS = [
    b'<!DOCTYPE x [<!ENTITY a "aa"><!ENTITY b "&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>',
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "http://169.254.169.254/">]><xml><Encrypt>&e;</Encrypt></xml>',
    b'<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><xml><Encrypt>a</Encrypt></xml>',
    b'<!DOCTYPE xml SYSTEM "http://example.invalid/x.dtd"><xml><Encrypt>a</Encrypt></xml>',
    b"<xml><Encrypt>&undefined;</Encrypt></xml>",
    b"<xml><Encrypt>" + b"<a>" * 5000 + b"</Encrypt></xml>",
]
HOSTILE = DECLARED + BROKEN_UTF8 + DTD_TRICKS


async def test_a_thousand_hostile_envelopes_get_4xx_and_a_bounded_log(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="aiohttp.access")  # as configure_logging sets it
    sender = bot.sim.sender
    params, _ = sender.build_post(sender.message_xml("zhangsan", "text", msg_id=1, Content="x"))
    bodies = list(islice(cycle(HOSTILE), 1000))
    statuses: list[int] = []
    for start in range(0, len(bodies), 50):
        answers = await asyncio.gather(
            *(sender.post_raw(bot.callback_url, params, b) for b in bodies[start : start + 50])
        )
        statuses += [status for status, text in answers if "Traceback" not in text]
    assert len(statuses) == 1000
    assert all(400 <= status < 500 for status in statuses), sorted(set(statuses))
    # One line per reason per interval: a handful of lines for 1,000 requests, none an error.
    assert len(caplog.records) <= 8, [r.getMessage() for r in caplog.records]
    assert len(caplog.text) < 4000
    assert not any(r.levelno >= logging.ERROR or r.exc_info for r in caplog.records)
    assert await bot.say("zhangsan", "帮助")  # and the server keeps serving


@pytest.mark.parametrize(
    "plaintext",
    [
        '<?xml version="1.0" encoding="GBK"?><xml><FromUserName>u</FromUserName></xml>',
        '<!DOCTYPE x [<!ENTITY e "boom">]><xml><FromUserName>&e;</FromUserName></xml>',
        "<xml><FromUserName>u</FromUserName>",
    ],
)
async def test_hostile_plaintext_inside_a_valid_signature_is_400(
    bot: BotHarness, plaintext: str
) -> None:
    """Even a sender holding our keys cannot get such XML stored."""
    status, _ = await bot.sim.send_callback(plaintext)
    assert status == 400
