"""CallbackCrypto against WeCom's documented vectors and wechatpy 1.8.18's, plus the rejections.

Every vector comes from tests/data/crypto. Signatures for hand-made negative inputs are computed
here with hashlib (FACTS §1.3: sha1 over the sorted token, timestamp, nonce and Encrypt), not
with guidebot's own helper, so a bug there cannot hide itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from guidebot.errors import CallbackRejected
from guidebot.settings import TenantSettings
from guidebot.wecom.crypto import CallbackCrypto

DATA = Path(__file__).resolve().parents[1] / "data" / "crypto"
OFFICIAL: dict[str, Any] = json.loads(
    (DATA / "official-doc-QDG6eK_vectors.json").read_text(encoding="utf-8"))
WECHATPY: dict[str, Any] = json.loads(
    (DATA / "wechatpy-1.8.18_vectors.json").read_text(encoding="utf-8"))
POST = OFFICIAL["decrypt_post"]
GET = OFFICIAL["url_verify"]
POST_BODY = (DATA / POST["body_file"]).read_bytes()
POST_PLAINTEXT = (DATA / POST["expected_plaintext_file"]).read_bytes()
POST_ENCRYPT = re.search(rb"<Encrypt><!\[CDATA\[([^\]]+)\]\]></Encrypt>",
                         POST_BODY).group(1).decode()  # type: ignore[union-attr]


def tenant_for(vector: dict[str, Any], *, corp_id: str | None = None, token: str | None = None,
               key: str | None = None) -> TenantSettings:
    return TenantSettings(
        id="vec", corp_id=vector["receive_id_corpid"] if corp_id is None else corp_id,
        agent_id=1, token=token or vector["token"],
        encoding_aes_key=key or vector["encoding_aes_key"],
        secret="unused-secret", admin_token="unused-admin-token")


def crypto_at(vector: dict[str, Any], now: float, **tenant: str) -> CallbackCrypto:
    return CallbackCrypto(tenant_for(vector, **tenant), clock=lambda: now)


def sign(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


def envelope(encrypted: str, *, prolog: str = "", to_user: str = "wx5823bf96d3bd56c7") -> bytes:
    return (f"{prolog}<xml><ToUserName>{to_user}</ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID>218</AgentID></xml>").encode()


def post_crypto(now: float | None = None, **tenant: str) -> CallbackCrypto:
    return crypto_at(OFFICIAL, int(POST["timestamp"]) if now is None else now, **tenant)


def decrypt_official(crypto: CallbackCrypto, body: bytes = POST_BODY,
                     msg_signature: str | None = None) -> str:
    return crypto.decrypt_body(body, msg_signature or POST["msg_signature"], POST["timestamp"],
                               POST["nonce"])


def decrypt_resigned(encrypted: str, body: bytes | None = None) -> str:
    """Decrypt `encrypted` with a *valid* signature, so only the ciphertext can be at fault."""
    signature = sign(OFFICIAL["token"], POST["timestamp"], POST["nonce"], encrypted)
    return post_crypto().decrypt_body(envelope(encrypted) if body is None else body, signature,
                                      POST["timestamp"], POST["nonce"])


def rejected(run: Any) -> CallbackRejected:
    with pytest.raises(CallbackRejected) as info:
        run()
    return info.value


# --- the official WeCom document vectors -----------------------------------------------------

def test_official_post_vector_decrypts_to_the_documented_plaintext_byte_exact() -> None:
    plaintext = decrypt_official(post_crypto())
    assert plaintext.encode("utf-8") == POST_PLAINTEXT
    assert "<Content><![CDATA[hello]]></Content>" in plaintext


def test_official_post_vector_with_encrypt_before_or_after_agentid() -> None:
    # element order varies in real payloads (FACTS §1.3); parse the envelope by name
    reordered = envelope(POST_ENCRYPT, to_user="wx5823bf96d3bd56c7").replace(
        b"<AgentID>218</AgentID>", b"")
    reordered = reordered.replace(b"<xml>", b"<xml><AgentID>218</AgentID>")
    assert decrypt_official(post_crypto(), reordered).encode() == POST_PLAINTEXT


def test_official_get_url_verify_with_the_url_decoded_echostr() -> None:
    crypto = crypto_at(OFFICIAL, int(GET["timestamp"]))
    answer = crypto.verify_url(GET["msg_signature"], GET["timestamp"], GET["nonce"],
                               GET["echostr_urldecoded"])
    assert answer == GET["expected_response_body"] == "1616140317555161061"


def test_official_get_url_verify_rejects_the_still_url_encoded_echostr() -> None:
    encoded = GET["request_line_urlencoded"].split("echostr=", 1)[1].split(" ", 1)[0]
    assert "%2F" in encoded
    crypto = crypto_at(OFFICIAL, int(GET["timestamp"]))
    exc = rejected(lambda: crypto.verify_url(GET["msg_signature"], GET["timestamp"],
                                             GET["nonce"], encoded))
    assert exc.status == 403


# --- wechatpy 1.8.18's vectors ---------------------------------------------------------------

def test_wechatpy_check_signature_ok_returns_the_decrypted_echostr() -> None:
    v = WECHATPY["check_signature_ok"]
    crypto = crypto_at(WECHATPY, int(v["timestamp"]))
    answer = crypto.verify_url(v["msg_signature"], v["timestamp"], v["nonce"], v["echostr"])
    assert answer == v["expected_response_body"] == "5927782489442352469"


def test_wechatpy_check_signature_fail_is_403() -> None:
    v = WECHATPY["check_signature_fail"]
    crypto = crypto_at(WECHATPY, int(v["timestamp"]))
    exc = rejected(lambda: crypto.verify_url(v["msg_signature"], v["timestamp"], v["nonce"],
                                             v["echostr"]))
    assert exc.status == 403


@pytest.mark.parametrize("as_text", [False, True], ids=["bytes", "str"])
def test_wechatpy_decrypt_message(as_text: bool) -> None:
    v = WECHATPY["decrypt_message"]
    body = (DATA / v["body_file"]).read_bytes()
    crypto = crypto_at(WECHATPY, int(v["timestamp"]))
    plaintext = crypto.decrypt_body(body.decode() if as_text else body,  # type: ignore[arg-type]
                                    v["msg_signature"], v["timestamp"], v["nonce"])
    assert plaintext.encode() == (DATA / v["expected_plaintext_file"]).read_bytes()
    root = ElementTree.fromstring(plaintext)
    for name, value in v["asserted_by_wechatpy"].items():
        assert root.findtext(name) == value
    assert (root.findtext("Content"), root.findtext("FromUserName")) == ("test", "messense")


def test_vectors_of_one_set_do_not_verify_with_the_other_sets_credentials() -> None:
    v = WECHATPY["decrypt_message"]
    body = (DATA / v["body_file"]).read_bytes()
    crypto = crypto_at(OFFICIAL, int(v["timestamp"]))
    exc = rejected(lambda: crypto.decrypt_body(body, v["msg_signature"], v["timestamp"],
                                               v["nonce"]))
    assert exc.status == 403


# --- the timestamp window --------------------------------------------------------------------

@pytest.mark.parametrize("offset", [0, 600, -600, 1, -1])
def test_timestamps_inside_the_window_are_accepted(offset: int) -> None:
    crypto = post_crypto(int(POST["timestamp"]) + offset)
    assert decrypt_official(crypto).encode() == POST_PLAINTEXT


@pytest.mark.parametrize("offset", [601, -601, 86_400 * 365, -86_400 * 365])
def test_stale_or_future_timestamp_is_403_for_post(offset: int) -> None:
    crypto = post_crypto(int(POST["timestamp"]) + offset)
    assert rejected(lambda: decrypt_official(crypto)).status == 403


@pytest.mark.parametrize("offset", [601, -601, 86_400 * 365])
def test_stale_or_future_timestamp_is_403_for_url_verify(offset: int) -> None:
    crypto = crypto_at(OFFICIAL, int(GET["timestamp"]) + offset)
    exc = rejected(lambda: crypto.verify_url(GET["msg_signature"], GET["timestamp"],
                                             GET["nonce"], GET["echostr_urldecoded"]))
    assert exc.status == 403


def test_default_clock_rejects_the_2014_vector_as_stale() -> None:
    crypto = CallbackCrypto(tenant_for(OFFICIAL))  # real time.time
    assert rejected(lambda: decrypt_official(crypto)).status == 403


def test_custom_window() -> None:
    now = int(POST["timestamp"]) + 61
    crypto = CallbackCrypto(tenant_for(OFFICIAL), window_s=60, clock=lambda: now)
    assert rejected(lambda: decrypt_official(crypto)).status == 403
    wider = CallbackCrypto(tenant_for(OFFICIAL), window_s=61, clock=lambda: now)
    assert decrypt_official(wider).encode() == POST_PLAINTEXT


def test_non_integer_timestamp_is_400() -> None:
    ts = "14096598l3"
    signature = sign(OFFICIAL["token"], ts, POST["nonce"], POST_ENCRYPT)
    exc = rejected(lambda: post_crypto().decrypt_body(POST_BODY, signature, ts, POST["nonce"]))
    assert exc.status == 400


# --- signature, token, corp id, key -----------------------------------------------------------

def _flip_one_hex_char(signature: str, at: int) -> str:
    return signature[:at] + ("0" if signature[at] != "0" else "1") + signature[at + 1:]


@pytest.mark.parametrize("at", [0, 17, 39])
def test_forged_signature_is_403(at: int) -> None:
    forged = _flip_one_hex_char(POST["msg_signature"], at)
    assert forged != POST["msg_signature"]
    exc = rejected(lambda: decrypt_official(post_crypto(), msg_signature=forged))
    assert exc.status == 403


def test_other_nonce_than_signed_is_403() -> None:
    crypto = post_crypto()
    exc = rejected(lambda: crypto.decrypt_body(POST_BODY, POST["msg_signature"],
                                               POST["timestamp"], "1372623148"))
    assert exc.status == 403


def test_non_ascii_signature_is_rejected_not_crashing() -> None:
    # WeCom only sends lower-case hex; anything else must be a plain 403, not an exception
    crypto = post_crypto()
    try:
        decrypt_official(crypto, msg_signature="ü" * 40)
    except CallbackRejected as exc:
        assert exc.status == 403
    except Exception as exc:  # noqa: BLE001 - the failure this test documents
        raise AssertionError(
            f"non-ASCII msg_signature raised {type(exc).__name__}: {exc} "
            "instead of CallbackRejected(403)") from exc
    else:
        raise AssertionError("non-ASCII msg_signature was accepted")


def test_other_token_is_403() -> None:
    crypto = post_crypto(token="QDG6eL")
    assert rejected(lambda: decrypt_official(crypto)).status == 403


@pytest.mark.parametrize("corp_id", ["wwacme5823bf96d3bd", "wx5823bf96d3bd56c8", ""])
def test_same_key_other_corp_id_is_403_for_post(corp_id: str) -> None:
    crypto = post_crypto(corp_id=corp_id)
    assert rejected(lambda: decrypt_official(crypto)).status == 403


def test_same_key_other_corp_id_is_403_for_url_verify() -> None:
    crypto = crypto_at(OFFICIAL, int(GET["timestamp"]), corp_id="wwacme5823bf96d3bd")
    exc = rejected(lambda: crypto.verify_url(GET["msg_signature"], GET["timestamp"],
                                             GET["nonce"], GET["echostr_urldecoded"]))
    assert exc.status == 403


def test_same_token_other_aes_key_never_yields_plaintext() -> None:
    crypto = post_crypto(key=WECHATPY["encoding_aes_key"])
    assert rejected(lambda: decrypt_official(crypto)).status in (400, 403)


# --- malformed ciphertext (validly signed, so decryption itself must fail) ---------------------

@pytest.mark.parametrize("encrypted", [
    pytest.param(POST_ENCRYPT[:-8], id="truncated-not-a-block-multiple"),
    pytest.param(POST_ENCRYPT[:64], id="truncated-to-three-blocks"),
    pytest.param(POST_ENCRYPT[:43], id="truncated-bad-base64-length"),
    pytest.param(POST_ENCRYPT[:-4] + "A===", id="bad-base64-padding"),
    pytest.param("!!!this-is-not*base64***", id="not-base64"),
    pytest.param(base64.b64encode(b"\x00" * 32).decode(), id="zero-blocks"),
    pytest.param("QUJD", id="three-bytes"),
])
def test_malformed_encrypt_is_400(encrypted: str) -> None:
    assert rejected(lambda: decrypt_resigned(encrypted)).status == 400


def test_malformed_echostr_is_400() -> None:
    echostr = GET["echostr_urldecoded"][:-8]
    signature = sign(OFFICIAL["token"], GET["timestamp"], GET["nonce"], echostr)
    crypto = crypto_at(OFFICIAL, int(GET["timestamp"]))
    exc = rejected(lambda: crypto.verify_url(signature, GET["timestamp"], GET["nonce"], echostr))
    assert exc.status == 400


# --- malformed or hostile envelopes -----------------------------------------------------------

@pytest.mark.parametrize("body", [
    pytest.param(b"<xml><ToUserName>wx5823bf96d3bd56c7</ToUserName><AgentID>218</AgentID></xml>",
                 id="no-encrypt"),
    pytest.param(b"<xml><Encrypt></Encrypt></xml>", id="empty-encrypt"),
    pytest.param(b"<xml><Encrypt>   </Encrypt></xml>", id="blank-encrypt"),
    pytest.param(b"<xml><Other><Encrypt>" + POST_ENCRYPT.encode() + b"</Encrypt></Other></xml>",
                 id="encrypt-not-a-child-of-root"),
])
def test_envelope_without_usable_encrypt_is_400(body: bytes) -> None:
    assert rejected(lambda: decrypt_official(post_crypto(), body)).status == 400


@pytest.mark.parametrize("body", [
    pytest.param(b"", id="empty"),
    pytest.param(b'{"Encrypt": "' + POST_ENCRYPT.encode() + b'"}', id="json"),
    pytest.param(b"Encrypt=" + POST_ENCRYPT.encode(), id="form"),
    pytest.param(POST_BODY[: len(POST_BODY) // 2], id="truncated-xml"),
    pytest.param(b"\xff\xfe<\x00x\x00", id="binary"),
])
def test_non_xml_body_is_400(body: bytes) -> None:
    assert rejected(lambda: decrypt_official(post_crypto(), body)).status == 400


# Each hostile envelope carries the genuine, correctly signed Encrypt of the official vector:
# a parser that tolerated the DTD would return the plaintext instead of rejecting.
XXE_FILE = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
            "&xxe;")
XXE_HTTP = ('<!DOCTYPE xml [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/x">]>', "&xxe;")
EXTERNAL_DTD = ('<!DOCTYPE xml SYSTEM "file:///etc/passwd">', "wx5823bf96d3bd56c7")
PARAMETER_ENTITY = ('<!DOCTYPE xml [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
                    "wx5823bf96d3bd56c7")
INTERNAL_ENTITY = ('<!DOCTYPE xml [<!ENTITY corp "wx5823bf96d3bd56c7">]>', "&corp;")
LOLS = "".join(
    f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
BILLION_LAUGHS = (f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol0 "lol">{LOLS}]>',
                  "&lol9;")


@pytest.mark.parametrize(("prolog", "to_user"), [
    pytest.param(*XXE_FILE, id="xxe-file"),
    pytest.param(*XXE_HTTP, id="xxe-http"),
    pytest.param(*EXTERNAL_DTD, id="external-dtd"),
    pytest.param(*PARAMETER_ENTITY, id="parameter-entity"),
    pytest.param(*INTERNAL_ENTITY, id="internal-entity"),
    pytest.param(*BILLION_LAUGHS, id="billion-laughs"),
])
def test_dtd_and_entity_envelopes_are_400(prolog: str, to_user: str) -> None:
    body = envelope(POST_ENCRYPT, prolog=prolog, to_user=to_user)
    assert rejected(lambda: decrypt_official(post_crypto(), body)).status == 400


def test_entity_inside_encrypt_is_400() -> None:
    # if entities were expanded, Encrypt would become the vector's ciphertext and be accepted
    prolog = f'<!DOCTYPE xml [<!ENTITY enc "{POST_ENCRYPT}">]>'
    body = f"{prolog}<xml><Encrypt>&enc;</Encrypt></xml>".encode()
    assert rejected(lambda: decrypt_official(post_crypto(), body)).status == 400


def test_rejection_reasons_do_not_carry_secrets() -> None:
    reasons = [
        rejected(lambda: decrypt_official(post_crypto(), msg_signature="0" * 40)).reason,
        rejected(lambda: decrypt_official(post_crypto(corp_id="wwother"))).reason,
        rejected(lambda: decrypt_resigned(POST_ENCRYPT[:64])).reason,
        rejected(lambda: decrypt_official(post_crypto(), envelope(POST_ENCRYPT,
                                                                  prolog=XXE_FILE[0]))).reason,
    ]
    for reason in reasons:
        assert reason
        for secret in (OFFICIAL["token"], OFFICIAL["encoding_aes_key"], "hello", "mycreate",
                       POST_ENCRYPT[:20]):
            assert secret not in reason


def test_an_encrypted_reply_carries_the_given_timestamp_and_nonce_and_decrypts_back() -> None:
    """encrypt_reply (the sandbox's callbacks, passive replies) signs with the timestamp and
    nonce it is given, so the receiver's signature and replay checks see those."""
    crypto = post_crypto()
    plaintext = "<xml><Content><![CDATA[回复]]></Content></xml>"
    reply = crypto.encrypt_reply(plaintext, "nonce123", POST["timestamp"])
    root = ElementTree.fromstring(reply)
    fields = {child.tag: child.text for child in root}
    assert (fields["TimeStamp"], fields["Nonce"]) == (POST["timestamp"], "nonce123")
    assert fields["MsgSignature"] == sign(OFFICIAL["token"], POST["timestamp"], "nonce123",
                                          str(fields["Encrypt"]))
    assert crypto.decrypt_body(envelope(str(fields["Encrypt"])), str(fields["MsgSignature"]),
                               POST["timestamp"], "nonce123") == plaintext


def test_each_rejection_answers_its_own_status_and_reason() -> None:
    """The reason is what the operator reads in the response and the log line: each check
    says which one failed (and nothing secret)."""
    cases = [
        (lambda: decrypt_official(post_crypto(), b"<xml><ToUserName>x</ToUserName></xml>"),
         400, "envelope has no Encrypt element"),
        (lambda: post_crypto().decrypt_body(POST_BODY, POST["msg_signature"], "abc",
                                            POST["nonce"]),
         400, "timestamp is not an integer"),
        (lambda: decrypt_official(post_crypto(now=int(POST["timestamp"]) + 100_000)),
         403, "timestamp outside the accepted window"),
        (lambda: decrypt_official(post_crypto(), msg_signature="0" * 40),
         403, "signature mismatch"),
        (lambda: decrypt_official(post_crypto(corp_id="wwother")),
         403, "receive id is not this tenant's corp id"),
        (lambda: decrypt_resigned(POST_ENCRYPT[:64]), 400, "cannot decrypt (error)"),
    ]
    assert [(rejected(run).status, rejected(run).reason) for run, _, _ in cases] == [
        (status, reason) for _, status, reason in cases]
