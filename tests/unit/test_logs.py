"""The real log configuration masks secrets wherever they hide in a record."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.logs import configure_logging

SECRET = "corp-secret-Zq81Lm0Xv4Bn8Cz1Dw6Fy3"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _log_everything(log: logging.Logger) -> None:
    log.warning("token refresh with %s failed", SECRET)
    log.error("bad key " + AES_KEY)
    log.info("GET https://qyapi.example/cgi-bin/gettoken?corpid=ww1&corpsecret=%s", SECRET)
    log.info("POST /cgi-bin/message/send?access_token=abcdef0123456789 -> 200")
    try:
        raise RuntimeError(f"cannot decrypt with {AES_KEY}")
    except RuntimeError:
        log.exception("callback failed")


def test_no_secret_reaches_the_log_output(
    root_logging: None, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", [SECRET, AES_KEY])
    _log_everything(logging.getLogger("wecrm.test"))
    err = capfd.readouterr().err
    assert "callback failed" in err and "RuntimeError" in err  # the records are there
    assert SECRET not in err and AES_KEY not in err
    assert "abcdef0123456789" not in err and "access_token=***" in err
    assert err.count("***") >= 5


def test_the_check_above_would_catch_a_leak(
    root_logging: None, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without the secrets the filter cannot mask them: the same scan sees them."""
    configure_logging("INFO", [])
    _log_everything(logging.getLogger("wecrm.test"))
    err = capfd.readouterr().err
    assert SECRET in err and AES_KEY in err
