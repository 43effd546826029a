"""WeCom callback crypto (PROTOCOL.md §1.3), hardened: strict parsing and constant-time checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from xml.parsers import expat

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "CryptoError",
    "DecryptError",
    "ParseError",
    "ReceiveIdError",
    "SignatureError",
    "WeComCrypto",
]

_AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
_BLOCK = 32  # PROTOCOL.md §1.3: PKCS#7 to a multiple of 32 bytes, pad value 1..32
_PREFIX = 16 + 4  # random(16) || uint32_be(msg_len)
_UTF8_BOM = b"\xef\xbb\xbf"
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")
_REPLY_TEMPLATE = (
    "<xml>\n"
    "<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
    "<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
    "<TimeStamp>{timestamp}</TimeStamp>\n"
    "<Nonce><![CDATA[{nonce}]]></Nonce>\n"
    "</xml>"
)


class CryptoError(Exception):
    """A callback that must be refused; `code` is WeCom's official error code (ierror.py)."""

    code: int = -40007

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class SignatureError(CryptoError):
    """msg_signature does not match: forged, replayed with other params, or wrong token."""

    code = -40001


class ParseError(CryptoError):
    """The outer envelope is not the XML WeCom sends (or is unsafe to parse)."""

    code = -40002


class ReceiveIdError(CryptoError):
    """Decrypted fine but addressed to another corp/suite: refuse it."""

    code = -40005


class DecryptError(CryptoError):
    """Ciphertext is not valid base64/AES/PKCS#7 or its inner layout is inconsistent."""

    code = -40007


class WeComCrypto:
    """Signs, verifies, encrypts and decrypts the callbacks of one app (token, key, receiveid)."""

    __slots__ = ("_aes_key", "_token", "max_body_bytes", "receive_id")

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        *,
        max_body_bytes: int = 256 * 1024,
    ) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("WeCom token must be a non-empty string")
        if not isinstance(encoding_aes_key, str) or not _AES_KEY_RE.fullmatch(encoding_aes_key):
            raise ValueError("EncodingAESKey must be exactly 43 characters of [A-Za-z0-9]")
        if not isinstance(receive_id, str):
            raise ValueError("receive_id must be a string (the corpid for a self-built app)")
        self._token = token
        self._aes_key = base64.b64decode(encoding_aes_key + "=")
        self.receive_id = receive_id
        self.max_body_bytes = max_body_bytes

    def __repr__(self) -> str:
        return f"WeComCrypto(receive_id={self.receive_id!r})"

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """sha1 over the sorted four values, as WeCom computes msg_signature."""
        parts = sorted([self._token, str(timestamp), str(nonce), encrypt])
        return hashlib.sha1("".join(parts).encode("utf-8", "surrogatepass")).hexdigest()

    def verify_signature(
        self, msg_signature: str, timestamp: str, nonce: str, encrypt: str
    ) -> None:
        """Constant-time comparison so the signature cannot be guessed byte by byte."""
        expected = self.signature(timestamp, nonce, encrypt)
        given = str(msg_signature).encode("utf-8", "replace")
        if not hmac.compare_digest(expected.encode(), given):
            raise SignatureError("msg_signature mismatch")

    def decrypt(self, encrypt: str) -> str:
        """Decrypt one Encrypt field and return the message, refusing anything malformed."""
        try:
            raw = base64.b64decode(encrypt.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raise DecryptError("Encrypt is not valid base64", code=-40010) from None
        if len(raw) < _BLOCK or len(raw) % 16:
            raise DecryptError("ciphertext length is not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(raw) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise DecryptError("bad PKCS#7 padding")
        body = plain[16:-pad]
        if len(body) < 4:
            raise DecryptError("plaintext too short for its length field")
        (msg_len,) = struct.unpack(">I", body[:4])
        if msg_len > len(body) - 4:
            raise DecryptError("msg_len exceeds the plaintext", code=-40008)
        msg_bytes = body[4 : 4 + msg_len]
        receive_id = body[4 + msg_len :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise ReceiveIdError("receiveid does not match this app")
        try:
            return msg_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptError("message is not valid UTF-8") from None

    def encrypt(self, plaintext: str, *, random16: bytes | None = None) -> str:
        """Encrypt like WeCom does; random16 is fixed only to reproduce official vectors."""
        prefix = os.urandom(16) if random16 is None else random16
        if len(prefix) != 16:
            raise ValueError("random16 must be exactly 16 bytes")
        msg = plaintext.encode("utf-8")
        data = prefix + struct.pack(">I", len(msg)) + msg + self.receive_id.encode("utf-8")
        pad = _BLOCK - len(data) % _BLOCK
        data += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode("ascii")

    def _cipher(self) -> Cipher[modes.CBC]:
        # PROTOCOL.md §1.3: AES-256-CBC, IV = AESKey[:16]
        return Cipher(algorithms.AES(self._aes_key), modes.CBC(self._aes_key[:16]))

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """Answer WeCom's GET verification: the decrypted echostr (already URL-decoded)."""
        self.verify_signature(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def decrypt_post(self, body: bytes, msg_signature: str, timestamp: str, nonce: str) -> str:
        """Parse the outer <xml><Encrypt> envelope safely, verify its signature, then decrypt."""
        encrypt = self.parse_envelope(body)
        self.verify_signature(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def parse_envelope(self, body: bytes) -> str:
        """Return the Encrypt text of a callback body; no DTD, entities or oversize input."""
        if len(body) > self.max_body_bytes:
            raise ParseError("callback body too large")
        return _EnvelopeParser().parse(body)

    def encrypt_reply(
        self,
        plaintext: str,
        *,
        timestamp: str | int,
        nonce: str,
        random16: bytes | None = None,
    ) -> str:
        """The passive-reply XML of PROTOCOL.md §1.4, byte-exact with the official template."""
        timestamp = str(timestamp)
        if not timestamp.isdigit() or not timestamp.isascii():
            raise ValueError("timestamp must be decimal digits")
        if "]]>" in nonce:
            raise ValueError("nonce cannot contain ']]>'")
        encrypt = self.encrypt(plaintext, random16=random16)
        return _REPLY_TEMPLATE.format(
            encrypt=encrypt,
            signature=self.signature(timestamp, nonce, encrypt),
            timestamp=timestamp,
            nonce=nonce,
        )


class _EnvelopeParser:
    """Expat with every DTD hook refusing: no entity expansion, no external fetch."""

    def __init__(self) -> None:
        self._depth = 0
        self._root: str | None = None
        self._field: str | None = None
        self._chunks: list[str] = []
        self._encrypt: list[str] = []

    def parse(self, body: bytes) -> str:
        """The single top-level Encrypt text, or ParseError."""
        body = body.removeprefix(_UTF8_BOM)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("callback body is not valid UTF-8") from None
        match = _DECLARED_ENCODING.match(body)
        if match is not None and match.group(1).strip().lower() not in (b"utf-8", b"utf8"):
            # WeCom sends UTF-8 only; expat would raise ValueError/LookupError on GBK or Big5.
            raise ParseError("callback body declares an encoding other than UTF-8")
        parser = expat.ParserCreate("UTF-8")
        parser.StartDoctypeDeclHandler = self._refuse
        parser.EntityDeclHandler = self._refuse
        parser.UnparsedEntityDeclHandler = self._refuse
        parser.ExternalEntityRefHandler = self._refuse_external
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._chars
        try:
            parser.Parse(body, True)
        except (expat.ExpatError, ValueError, LookupError):
            raise ParseError("callback body is not well-formed XML") from None
        except RecursionError:
            raise ParseError("callback body nests too deeply") from None
        if self._root != "xml":
            raise ParseError("callback body root is not <xml>")
        if len(self._encrypt) != 1 or not self._encrypt[0]:
            raise ParseError("callback body needs exactly one non-empty <Encrypt>")
        return self._encrypt[0]

    def _refuse(self, *args: object) -> None:
        raise ParseError("DTDs and entities are not accepted")

    def _refuse_external(self, *args: object) -> int:
        raise ParseError("DTDs and entities are not accepted")

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        if self._depth == 1:
            self._root = name
        elif self._depth == 2:
            self._field = name
            self._chunks = []

    def _end(self, name: str) -> None:
        if self._depth == 2 and self._field == "Encrypt":
            self._encrypt.append("".join(self._chunks))
        if self._depth == 2:
            self._field = None
        self._depth -= 1

    def _chars(self, data: str) -> None:
        if self._depth == 2 and self._field == "Encrypt":
            self._chunks.append(data)
