"""Callback signature, timestamp window and AES decryption, mapped to 4xx rejections."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException

from guidebot.errors import CallbackRejected
from guidebot.settings import TenantSettings
from guidebot.wecom.xml import UnsafeOrInvalidXml, parse_xml

TIMESTAMP_WINDOW_S = 600


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    parts = sorted([token, timestamp, nonce, encrypted])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()


class CallbackCrypto:
    """One tenant's callback crypto: verify, then decrypt with receive id = corp id."""

    def __init__(self, tenant: TenantSettings, *, window_s: int = TIMESTAMP_WINDOW_S,
                 clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._token = tenant.token
        self._crypto = WeChatCrypto(tenant.token, tenant.encoding_aes_key, tenant.corp_id)
        self._window_s = window_s

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET URL verification: returns the plaintext to answer with."""
        self._check(msg_signature, timestamp, nonce, echostr)
        return self._decrypt(lambda: self._crypto.check_signature(
            msg_signature, timestamp, nonce, echostr))

    def decrypt_body(self, body: bytes, msg_signature: str, timestamp: str, nonce: str) -> str:
        """POST delivery: returns the decrypted plaintext XML."""
        try:
            envelope = parse_xml(body)
        except UnsafeOrInvalidXml as exc:
            raise CallbackRejected(400, f"body is not acceptable XML ({exc})") from None
        node = envelope.find("Encrypt")
        encrypted = (node.text or "").strip() if node is not None else ""
        if not encrypted:
            raise CallbackRejected(400, "envelope has no Encrypt element")
        self._check(msg_signature, timestamp, nonce, encrypted)
        return self._decrypt(lambda: self._crypto.decrypt_message(
            {"Encrypt": encrypted}, msg_signature, timestamp, nonce))

    def encrypt_reply(self, plaintext: str, nonce: str, timestamp: str) -> str:
        """Encrypt and sign like WeCom (the sandbox's callbacks, passive replies): the
        <xml><Encrypt/><MsgSignature/>… document wechatpy builds."""
        return str(self._crypto.encrypt_message(plaintext, nonce, timestamp))

    def _check(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise CallbackRejected(400, "timestamp is not an integer") from None
        if abs(self._clock() - sent_at) > self._window_s:
            raise CallbackRejected(403, "timestamp outside the accepted window")
        expected = signature(self._token, timestamp, nonce, encrypted)
        # bytes, not str: compare_digest refuses non-ASCII str (a forged header is not a 500)
        if not hmac.compare_digest(expected.encode(), msg_signature.lower().encode("utf-8")):
            raise CallbackRejected(403, "signature mismatch")

    @staticmethod
    def _decrypt(run: Callable[[], str]) -> str:
        try:
            plaintext = run()
        except InvalidCorpIdException:
            raise CallbackRejected(403, "receive id is not this tenant's corp id") from None
        except Exception as exc:  # noqa: BLE001
            # wechatpy's own errors, and the binascii/struct/Unicode errors it leaks on
            # malformed ciphertext (FACTS §5.2), are all a payload that cannot be decrypted
            raise CallbackRejected(400, f"cannot decrypt ({type(exc).__name__})") from None
        return str(plaintext)
