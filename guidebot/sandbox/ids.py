"""Generated identifiers and demo names, shaped like WeCom's but clearly random."""

from __future__ import annotations

import secrets
import string

_ALNUM = string.ascii_letters + string.digits
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN = "静敏丽娜婷雪欣怡晨悦思雨佳琪梦涵子轩浩然宇航嘉"


def random_text(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def external_userid() -> str:
    return "wm" + random_text(30)


def chat_id() -> str:
    """A customer group's chat_id: "wr" and 30 characters, like the change_external_chat
    sample (FACTS-next §C)."""
    return "wr" + random_text(30)


def unionid() -> str:
    return "o" + random_text(27)


def access_token() -> str:
    return random_text(64, _ALNUM + "-_")


def welcome_code() -> str:
    return random_text(43, _ALNUM + "-_")


def tag_id() -> str:
    return "et" + random_text(30)


def config_id() -> str:
    return secrets.token_hex(16)


def link_id() -> str:
    """A 获客助手 link_id: FACTS-next §F shows only "LINK_ID"; "cawc" and 28 characters is the
    sandbox's shape (assumed)."""
    return "cawc" + random_text(28)


def msgid() -> str:
    return "msg" + random_text(28)


def media_id() -> str:
    return random_text(44, _ALNUM + "-_")


def demo_name() -> str:
    """A Chinese-looking two- or three-character name for a generated customer."""
    given = random_text(secrets.choice((1, 2)), _GIVEN)
    return secrets.choice(_SURNAMES) + given
