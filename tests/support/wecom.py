"""Test-side WeCom: builds real encrypted, signed callbacks the way WeCom does."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from wechatpy.enterprise.crypto import WeChatCrypto

from guidebot.settings import TenantSettings
from guidebot.wecom.crypto import signature
from guidebot.wecom.xml import parse_xml


@dataclass(frozen=True)
class SignedCallback:
    query: dict[str, str]
    body: bytes


def encrypt_callback(tenant: TenantSettings, plaintext: str, *, timestamp: int | None = None,
                     nonce: str | None = None, corp_id: str | None = None) -> SignedCallback:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    crypto = WeChatCrypto(tenant.token, tenant.encoding_aes_key, corp_id or tenant.corp_id)
    reply = parse_xml(crypto.encrypt_message(plaintext, nonce, ts))
    encrypted = reply.findtext("Encrypt") or ""
    body = (f"<xml><ToUserName><![CDATA[{tenant.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<AgentID><![CDATA[{tenant.agent_id}]]></AgentID></xml>").encode()
    query = {"msg_signature": signature(tenant.token, ts, nonce, encrypted),
             "timestamp": ts, "nonce": nonce}
    return SignedCallback(query, body)


def add_contact_xml(*, corp_id: str, guide: str, external_userid: str, state: str = "",
                    welcome_code: str = "", create_time: int | None = None) -> str:
    ts = create_time if create_time is not None else int(time.time())
    return (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]>"
            f"</FromUserName><CreateTime>{ts}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[change_external_contact]]></Event>"
            "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
            f"<UserID><![CDATA[{guide}]]></UserID><ExternalUserID><![CDATA[{external_userid}]]></ExternalUserID>"
            f"<State><![CDATA[{state}]]></State><WelcomeCode><![CDATA[{welcome_code}]]></WelcomeCode></xml>"
            )


def contact_event_xml(change_type: str, *, corp_id: str, guide: str, external_userid: str,
                      create_time: int, **extra: str) -> str:
    """Any change_external_contact event; `extra` adds elements like Source or FailReason."""
    more = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in extra.items())
    return (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]>"
            f"</FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[change_external_contact]]></Event>"
            f"<ChangeType><![CDATA[{change_type}]]></ChangeType><UserID><![CDATA[{guide}]]></UserID>"
            f"<ExternalUserID><![CDATA[{external_userid}]]></ExternalUserID>{more}</xml>"
            )
