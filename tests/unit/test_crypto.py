"""Callback crypto against WeCom's official vectors, and every malformed input we can think of."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.gateway.crypto import (
    CryptoError,
    DecryptError,
    ParseError,
    ReceiveIdError,
    SignatureError,
    WeComCrypto,
)

VECTORS_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "wecom_vectors.json"
VECTORS: dict[str, dict[str, Any]] = {
    v["id"]: v for v in json.loads(VECTORS_PATH.read_text())["vectors"]
}

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP = "wx5823bf96d3bd56c7"


def crypto_for(vector: dict[str, Any], receive_id: str | None = None) -> WeComCrypto:
    return WeComCrypto(
        vector["token"],
        vector["encoding_aes_key"],
        vector["receiveid"] if receive_id is None else receive_id,
    )


def by_kind(kind: str) -> list[Any]:
    return [pytest.param(v, id=k) for k, v in VECTORS.items() if v["kind"] == kind]


def raw_encrypt(key: str, data: bytes) -> str:
    """AES-CBC without our padding, to build ciphertexts our encoder would never produce."""
    aes_key = base64.b64decode(key + "=")
    enc = Cipher(algorithms.AES(aes_key), modes.CBC(aes_key[:16])).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode()


def pkcs7(data: bytes, block: int = 32) -> bytes:
    pad = block - len(data) % block
    return data + bytes([pad]) * pad


def test_vector_file_has_every_kind() -> None:
    kinds = {v["kind"] for v in VECTORS.values()}
    assert {
        "verify_url_get",
        "decrypt_post_xml",
        "decrypt_post_json",
        "encrypt_reply_xml",
    } <= kinds


# --- official vectors, decrypt direction ---------------------------------------------------


@pytest.mark.parametrize("vector", by_kind("verify_url_get"))
def test_verify_url_vectors(vector: dict[str, Any]) -> None:
    crypto = crypto_for(vector)
    answer = crypto.verify_url(
        vector["msg_signature"], vector["timestamp"], vector["nonce"], vector["echostr"]
    )
    assert answer == vector["expected_plaintext"]


def test_verify_url_echostr_arrives_url_encoded() -> None:
    from urllib.parse import unquote

    vector = VECTORS["B1_verify_url"]
    echostr = unquote(vector["echostr_urlencoded"])
    assert echostr == vector["echostr"]
    answer = crypto_for(vector).verify_url(
        vector["msg_signature"], vector["timestamp"], vector["nonce"], echostr
    )
    assert answer == vector["expected_plaintext"]


@pytest.mark.parametrize("vector", by_kind("decrypt_post_xml"))
def test_decrypt_post_vectors(vector: dict[str, Any]) -> None:
    crypto = crypto_for(vector)
    plain = crypto.decrypt_post(
        vector["post_body"].encode(), vector["msg_signature"], vector["timestamp"], vector["nonce"]
    )
    assert plain == vector["expected_plaintext"]


@pytest.mark.parametrize("vector", by_kind("decrypt_post_json"))
def test_json_body_vector_through_decrypt(vector: dict[str, Any]) -> None:
    crypto = crypto_for(vector)
    encrypt = json.loads(vector["post_body"])["encrypt"]
    assert encrypt == vector["encrypt"]
    crypto.verify_signature(vector["msg_signature"], vector["timestamp"], vector["nonce"], encrypt)
    assert crypto.decrypt(encrypt) == vector["expected_plaintext"]


@pytest.mark.parametrize(
    "vector",
    by_kind("verify_url_get") + by_kind("decrypt_post_xml") + by_kind("decrypt_post_json"),
)
def test_vector_signature_recomputes(vector: dict[str, Any]) -> None:
    encrypt = vector.get("encrypt", vector.get("echostr"))
    assert (
        crypto_for(vector).signature(vector["timestamp"], vector["nonce"], encrypt)
        == (vector["msg_signature"])
    )


# --- official vectors, encrypt direction ---------------------------------------------------


@pytest.mark.parametrize("vector", by_kind("encrypt_reply_xml"))
def test_encrypt_reply_byte_exact(vector: dict[str, Any]) -> None:
    crypto = crypto_for(vector)
    random16 = vector["random16"].encode()
    assert crypto.encrypt(vector["plaintext"], random16=random16) == vector["expected_encrypt"]
    reply = crypto.encrypt_reply(
        vector["plaintext"],
        timestamp=vector["timestamp"],
        nonce=vector["nonce"],
        random16=random16,
    )
    assert reply == vector["expected_reply_xml"]


@pytest.mark.parametrize("vector", by_kind("decrypt_post_xml") + by_kind("decrypt_post_json"))
def test_reencrypting_vectors_with_their_random_gives_the_official_ciphertext(
    vector: dict[str, Any],
) -> None:
    crypto = crypto_for(vector)
    random16 = bytes.fromhex(vector["expected_random16_hex"])
    assert crypto.encrypt(vector["expected_plaintext"], random16=random16) == vector["encrypt"]


@pytest.mark.parametrize("vector", by_kind("encrypt_reply_xml"))
def test_encrypt_reply_parses_back(vector: dict[str, Any]) -> None:
    crypto = crypto_for(vector)
    reply = crypto.encrypt_reply(vector["plaintext"], timestamp=1411525903, nonce="42")
    signature = reply.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    assert (
        crypto.decrypt_post(reply.encode(), signature, "1411525903", "42") == vector["plaintext"]
    )


# --- negative vectors and tampering ---------------------------------------------------------


def test_c2_signature_mismatch() -> None:
    vector = VECTORS["C2_check_signature_should_fail"]
    crypto = crypto_for(vector)
    assert (
        crypto.signature(vector["timestamp"], vector["nonce"], vector["echostr"])
        == vector["computed_signature"]
    )
    with pytest.raises(SignatureError) as info:
        crypto.verify_url(
            vector["msg_signature"], vector["timestamp"], vector["nonce"], vector["echostr"]
        )
    assert info.value.code == -40001


@pytest.mark.parametrize("vector", by_kind("decrypt_post_xml"))
def test_wrong_receiveid_is_refused(vector: dict[str, Any]) -> None:
    crypto = crypto_for(vector, receive_id="wwsomeothercorp")
    with pytest.raises(ReceiveIdError) as info:
        crypto.decrypt_post(
            vector["post_body"].encode(),
            vector["msg_signature"],
            vector["timestamp"],
            vector["nonce"],
        )
    assert info.value.code == -40005


def test_empty_receiveid_is_refused_for_a_corp_message() -> None:
    vector = VECTORS["B2_decrypt_xml_post"]
    with pytest.raises(ReceiveIdError):
        crypto_for(vector, receive_id="").decrypt(vector["encrypt"])


def test_receiveid_prefix_is_not_enough() -> None:
    vector = VECTORS["B2_decrypt_xml_post"]
    with pytest.raises(ReceiveIdError):
        crypto_for(vector, receive_id=CORP[:-1]).decrypt(vector["encrypt"])


@pytest.mark.parametrize("field", ["timestamp", "nonce"])
def test_changed_query_param_fails_signature(field: str) -> None:
    vector = dict(VECTORS["B2_decrypt_xml_post"])
    vector[field] = vector[field] + "1"
    with pytest.raises(SignatureError):
        crypto_for(vector).decrypt_post(
            vector["post_body"].encode(),
            vector["msg_signature"],
            vector["timestamp"],
            vector["nonce"],
        )


def test_tampered_ciphertext_fails_signature_before_decrypting() -> None:
    vector = VECTORS["B2_decrypt_xml_post"]
    encrypt = vector["encrypt"]
    tampered = encrypt[:40] + ("A" if encrypt[40] != "A" else "B") + encrypt[41:]
    body = vector["post_body"].replace(encrypt, tampered).encode()
    with pytest.raises(SignatureError):
        crypto_for(vector).decrypt_post(
            body, vector["msg_signature"], vector["timestamp"], vector["nonce"]
        )


@pytest.mark.parametrize("position", [0, 100, -30])
def test_tampered_ciphertext_never_decrypts_silently(position: int) -> None:
    vector = VECTORS["B2_decrypt_xml_post"]
    raw = bytearray(base64.b64decode(vector["encrypt"]))
    raw[position] ^= 0x01
    with pytest.raises(CryptoError):
        crypto_for(vector).decrypt(base64.b64encode(bytes(raw)).decode())


def test_signature_with_non_ascii_is_a_mismatch_not_a_crash() -> None:
    vector = VECTORS["B2_decrypt_xml_post"]
    with pytest.raises(SignatureError):
        crypto_for(vector).verify_signature(
            "签名", vector["timestamp"], vector["nonce"], vector["encrypt"]
        )
    with pytest.raises(SignatureError):
        crypto_for(vector).verify_signature("\udcff", "\udcff", vector["nonce"], "x")


@pytest.mark.parametrize(
    "encrypt",
    [
        "not base64 at all!",
        "YWJj ZGVm",  # whitespace is not tolerated
        "YWJjZA",  # missing padding
        "YWJj\nZGVm",
        "密文",
    ],
)
def test_bad_base64(encrypt: str) -> None:
    with pytest.raises(DecryptError) as info:
        WeComCrypto(TOKEN, KEY, CORP).decrypt(encrypt)
    assert info.value.code == -40010


@pytest.mark.parametrize("size", [0, 16, 31, 33, 47])
def test_ciphertext_length_must_be_whole_blocks_of_at_least_32(size: int) -> None:
    with pytest.raises(DecryptError) as info:
        WeComCrypto(TOKEN, KEY, CORP).decrypt(base64.b64encode(b"\0" * size).decode())
    assert info.value.code == -40007


def test_empty_inputs() -> None:
    crypto = WeComCrypto(TOKEN, KEY, CORP)
    with pytest.raises(DecryptError):
        crypto.decrypt("")
    with pytest.raises(ParseError):
        crypto.decrypt_post(b"", "sig", "1", "2")
    with pytest.raises(ParseError):
        crypto.decrypt_post(b"<xml><Encrypt></Encrypt></xml>", "sig", "1", "2")
    with pytest.raises(ParseError):
        crypto.decrypt_post(b"<xml><Encrypt/></xml>", crypto.signature("1", "2", ""), "1", "2")


def test_truncated_ciphertext() -> None:
    vector = VECTORS["B2_decrypt_xml_post"]
    crypto = crypto_for(vector)
    raw = base64.b64decode(vector["encrypt"])
    with pytest.raises(DecryptError):
        crypto.decrypt(vector["encrypt"][:-4])  # whole base64 quanta, but not AES blocks
    with pytest.raises(CryptoError):
        crypto.decrypt(base64.b64encode(raw[:-32]).decode())  # blocks missing at the end
    with pytest.raises(DecryptError):
        crypto.decrypt(vector["encrypt"][:-1])  # broken base64


def _layout(msg: bytes, receive_id: bytes = CORP.encode(), msg_len: int | None = None) -> bytes:
    length = len(msg) if msg_len is None else msg_len
    return b"r" * 16 + struct.pack(">I", length) + msg + receive_id


@pytest.mark.parametrize(
    "tail",
    [
        b"\x00" * 32,  # pad 0
        b"\x21" * 32,  # pad 33
        b"\x05" * 31 + b"\x04",  # pad bytes disagree
        b"\x00" * 31 + b"\x20",  # claims 32 but only one byte says so
    ],
)
def test_bad_padding(tail: bytes) -> None:
    body = _layout(b"hello")
    body += b"x" * (-len(body) % 32)
    with pytest.raises(DecryptError) as info:
        WeComCrypto(TOKEN, KEY, CORP).decrypt(raw_encrypt(KEY, body + tail))
    assert info.value.code == -40007


def test_padding_to_sixteen_is_accepted() -> None:
    data = _layout(b"hi")
    pad = 16 - len(data) % 16
    ct = raw_encrypt(KEY, data + bytes([pad]) * pad)
    assert WeComCrypto(TOKEN, KEY, CORP).decrypt(ct) == "hi"


@pytest.mark.parametrize("msg_len", [10_000, 2**32 - 1, len(b"hello") + len(CORP) + 1])
def test_msg_len_out_of_bounds(msg_len: int) -> None:
    ct = raw_encrypt(KEY, pkcs7(_layout(b"hello", msg_len=msg_len)))
    with pytest.raises(DecryptError):
        WeComCrypto(TOKEN, KEY, CORP).decrypt(ct)


def test_plaintext_too_short_for_length_field() -> None:
    ct = raw_encrypt(KEY, pkcs7(b"r" * 16 + b"\x00\x00"))
    with pytest.raises(DecryptError):
        WeComCrypto(TOKEN, KEY, CORP).decrypt(ct)


def test_invalid_utf8_message() -> None:
    ct = raw_encrypt(KEY, pkcs7(_layout(b"\xff\xfe bad")))
    with pytest.raises(DecryptError):
        WeComCrypto(TOKEN, KEY, CORP).decrypt(ct)


def test_msg_len_shorter_than_message_shifts_into_receiveid() -> None:
    ct = raw_encrypt(KEY, pkcs7(_layout(b"hello", msg_len=3)))
    with pytest.raises(ReceiveIdError):
        WeComCrypto(TOKEN, KEY, CORP).decrypt(ct)


# --- the outer XML envelope -----------------------------------------------------------------


def _signed_body(crypto: WeComCrypto, envelope: str, encrypt: str) -> tuple[bytes, str]:
    return envelope.replace("ENC", encrypt).encode(), crypto.signature("1", "2", encrypt)


@pytest.mark.parametrize(
    "envelope",
    [
        '<!DOCTYPE xml [<!ENTITY a "x">]><xml><Encrypt>ENC</Encrypt></xml>',
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        "<xml><Encrypt>ENC&lol2;</Encrypt></xml>",
        '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Encrypt>&xxe;</Encrypt></xml>',
        '<!DOCTYPE xml SYSTEM "http://127.0.0.1:1/evil.dtd"><xml><Encrypt>ENC</Encrypt></xml>',
        "<!DOCTYPE xml><xml><Encrypt>ENC</Encrypt></xml>",
        "<xml><Encrypt>&undefined;</Encrypt></xml>",
    ],
)
def test_xml_with_dtd_or_entities_is_refused(envelope: str) -> None:
    vector = VECTORS["B2_decrypt_xml_post"]
    crypto = crypto_for(vector)
    body, signature = _signed_body(crypto, envelope, vector["encrypt"])
    with pytest.raises(ParseError) as info:
        crypto.decrypt_post(body, signature, "1", "2")
    assert info.value.code == -40002


@pytest.mark.parametrize(
    "envelope",
    [
        "<xml><Encrypt>ENC</Encrypt><Encrypt>ENC</Encrypt></xml>",
        "<root><Encrypt>ENC</Encrypt></root>",
        "<xml><ToUserName>x</ToUserName></xml>",
        "<xml><Inner><Encrypt>ENC</Encrypt></Inner></xml>",
        "<xml><Encrypt>ENC</Encrypt>",
        "<xml><Encrypt>ENC</Encrypt></xml><xml/>",
        '{"encrypt": "ENC"}',
        "\x00\x01\x02",
    ],
)
def test_malformed_envelopes(envelope: str) -> None:
    vector = VECTORS["B2_decrypt_xml_post"]
    crypto = crypto_for(vector)
    body, signature = _signed_body(crypto, envelope, vector["encrypt"])
    with pytest.raises(ParseError):
        crypto.decrypt_post(body, signature, "1", "2")


def test_envelope_with_cdata_split_and_comments_still_parses() -> None:
    vector = VECTORS["B2_decrypt_xml_post"]
    crypto = crypto_for(vector)
    enc = vector["encrypt"]
    body = f"<xml><!-- hi --><Encrypt><![CDATA[{enc[:10]}]]><![CDATA[{enc[10:]}]]></Encrypt></xml>"
    signature = crypto.signature("1", "2", enc)
    assert crypto.decrypt_post(body.encode(), signature, "1", "2") == vector["expected_plaintext"]


def test_two_mebibyte_body_is_refused_before_parsing() -> None:
    vector = VECTORS["B2_decrypt_xml_post"]
    crypto = crypto_for(vector)
    padding = "<Pad>" + "x" * (2 * 1024 * 1024) + "</Pad>"
    body = vector["post_body"].replace("</xml>", padding + "</xml>").encode()
    assert len(body) > 2 * 1024 * 1024
    with pytest.raises(ParseError):
        crypto.decrypt_post(body, vector["msg_signature"], vector["timestamp"], vector["nonce"])


def test_deeply_nested_body_is_refused() -> None:
    crypto = WeComCrypto(TOKEN, KEY, CORP)
    body = ("<a>" * 30_000 + "</a>" * 30_000).encode()
    assert len(body) < crypto.max_body_bytes
    with pytest.raises(ParseError):
        crypto.decrypt_post(body, "sig", "1", "2")


# --- round trips and construction -----------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "hello", "下周三下午再联系 张总", "🎉👨‍👩‍👧 emoji", "x" * 5000, "]]><xml/>"]
)
@pytest.mark.parametrize("receive_id", [CORP, ""])
def test_round_trip(text: str, receive_id: str) -> None:
    crypto = WeComCrypto(TOKEN, KEY, receive_id)
    encrypt = crypto.encrypt(text)
    assert len(base64.b64decode(encrypt)) % 32 == 0
    assert crypto.decrypt(encrypt) == text
    assert crypto.encrypt(text) != encrypt  # fresh randomness every time


def test_random16_must_be_sixteen_bytes() -> None:
    with pytest.raises(ValueError):
        WeComCrypto(TOKEN, KEY, CORP).encrypt("x", random16=b"short")


def test_encrypt_reply_refuses_unsafe_timestamp_and_nonce() -> None:
    crypto = WeComCrypto(TOKEN, KEY, CORP)
    with pytest.raises(ValueError):
        crypto.encrypt_reply("x", timestamp="12<", nonce="1")
    with pytest.raises(ValueError):
        crypto.encrypt_reply("x", timestamp="12", nonce="]]><x>")


@pytest.mark.parametrize(
    "bad_key",
    [
        KEY[:-1],
        KEY + "A",
        KEY[:-1] + "=",
        KEY[:-1] + "+",
        KEY[:-1] + "中",
        "",
    ],
)
def test_bad_aes_key_is_refused_without_echoing_it(bad_key: str) -> None:
    with pytest.raises(ValueError) as info:
        WeComCrypto(TOKEN, bad_key, CORP)
    if bad_key:
        assert bad_key not in str(info.value)
        assert bad_key[:20] not in str(info.value)


def test_empty_token_is_refused() -> None:
    with pytest.raises(ValueError):
        WeComCrypto("", KEY, CORP)


def test_secrets_never_in_reprs_or_errors() -> None:
    token = "SuperSecretToken42"
    crypto = WeComCrypto(token, KEY, CORP)
    texts = [repr(crypto), str(crypto)]
    attempts = [
        lambda: crypto.verify_signature("0" * 40, "1", "2", "x"),
        lambda: crypto.decrypt("!!"),
        lambda: crypto.decrypt(base64.b64encode(b"\0" * 32).decode()),
        lambda: WeComCrypto(token, KEY, "other").decrypt(crypto.encrypt("hi")),
        lambda: crypto.decrypt_post(b"<!DOCTYPE x><xml/>", "s", "1", "2"),
    ]
    for attempt in attempts:
        with pytest.raises(CryptoError) as info:
            attempt()
        texts += [str(info.value), repr(info.value)]
    for text in texts:
        assert token not in text
        assert KEY not in text
        assert KEY[:16] not in text


def test_error_hierarchy_and_codes() -> None:
    for cls, code in [
        (SignatureError, -40001),
        (ParseError, -40002),
        (ReceiveIdError, -40005),
        (DecryptError, -40007),
    ]:
        assert issubclass(cls, CryptoError)
        assert cls("x").code == code
