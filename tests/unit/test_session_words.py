"""How a 微信客服 session_status_change reads on the console's customer page and the handoff
page: who took the session, to whom it went (by name where the directory has one), the end,
and a change_type the facts do not have; any other message is left to its kind."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from guidebot.db.models_kf import KfMessage
from guidebot.web.pages.console import catalog, session_change


def _event(change: object, *, new: str = "", old: str = "", stored: str = "") -> KfMessage:
    event = {"event_type": "session_status_change", "change_type": change,
             "old_servicer_userid": old, "new_servicer_userid": new}
    return KfMessage(tenant="acme", open_kfid="wk1", msgid="m1", origin=4, msgtype="event",
                     event_type="session_status_change", text=json.dumps(event),
                     servicer_userid=stored, send_time=datetime(2030, 1, 1, tzinfo=UTC))


def test_each_change_in_words_with_the_servicers_name_else_their_userid() -> None:
    zh, en = catalog("zh-CN"), catalog("en")
    names = {"wangfang": "王芳"}
    cases = [(_event(1, new="wangfang"), "导购 王芳 接入", "王芳 took the session from the pool"),
             (_event(2, old="wangfang", new="zhouyi"), "转接给 zhouyi", "Transferred to zhouyi"),
             (_event("2", stored="wangfang"), "转接给 王芳", "Transferred to 王芳"),
             (_event(3, old="zhouyi"), "会话结束", "Session ended"),
             (_event(4, new="lina"), "会话状态变更（change_type 4）",
              "Session status changed (change_type 4)"),
             (_event("x"), "会话状态变更（change_type 0）",
              "Session status changed (change_type 0)")]
    for message, chinese, english in cases:
        assert session_change(zh, names, message) == chinese
        assert session_change(en, names, message) == english


def test_other_messages_and_a_take_naming_nobody_keep_their_kind() -> None:
    zh = catalog("zh-CN")
    text = KfMessage(tenant="acme", open_kfid="wk1", msgid="m2", origin=3, msgtype="text",
                     text="你好", send_time=datetime(2030, 1, 1, tzinfo=UTC))
    entered = KfMessage(tenant="acme", open_kfid="wk1", msgid="m3", origin=4, msgtype="event",
                        event_type="enter_session", text="{}",
                        send_time=datetime(2030, 1, 1, tzinfo=UTC))
    assert [session_change(zh, {}, m) for m in (text, entered, _event(1))] == ["", "", ""]
