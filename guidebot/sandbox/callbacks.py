"""Callback XML (like WeCom's event samples) and its encrypted POST envelope (FACTS §1.3)."""

from __future__ import annotations

import re
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from guidebot.settings import TenantSettings
from guidebot.wecom.crypto import CallbackCrypto

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def is_element_name(name: object) -> bool:
    return (isinstance(name, str) and bool(_NAME.fullmatch(name))
            and not name.lower().startswith("xml"))


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def to_xml(fields: Mapping[str, Any]) -> str:
    """Strings become CDATA, integers stay bare (as in WeCom's samples); dicts nest, lists
    repeat their element."""
    return "<xml>\n" + "".join(_element(k, v) + "\n" for k, v in fields.items()) + "</xml>"


def _element(name: str, value: Any) -> str:
    if isinstance(value, list):
        return "".join(_element(name, item) for item in value)
    if isinstance(value, dict):
        return f"<{name}>{''.join(_element(k, v) for k, v in value.items())}</{name}>"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"<{name}>{value}</{name}>"
    return f"<{name}>{cdata(str(value))}</{name}>"


@dataclass(frozen=True)
class Envelope:
    body: str
    query: dict[str, str]


def encrypt(tenant: TenantSettings, plaintext: str) -> Envelope:
    """Encrypt and sign like WeCom. The signature timestamp is wall-clock time even when the
    sandbox clock is advanced, so a bot checking timestamp freshness still accepts it."""
    nonce, timestamp = str(secrets.randbelow(10**10)), str(int(time.time()))
    reply = ET.fromstring(CallbackCrypto(tenant).encrypt_reply(plaintext, nonce, timestamp))
    body = (
        f"<xml><ToUserName>{cdata(tenant.corp_id)}</ToUserName>"
        f"<Encrypt>{cdata(reply.findtext('Encrypt') or '')}</Encrypt>"
        f"<AgentID>{cdata(str(tenant.agent_id))}</AgentID></xml>"
    )
    signature = reply.findtext("MsgSignature") or ""
    return Envelope(body, {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce})
