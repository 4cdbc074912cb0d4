"""微信客服 end to end: the sandbox raises kf_msg_or_event, guidebot pages kf/sync_msg and
answers within WeCom's rules, hands off to the bound guide, attributes kf link entries."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from sqlalchemy import text

from guidebot.app import RUNTIME, create_app
from guidebot.db.engine import Database
from guidebot.db.repo import kf as kf_repo
from tests.support.kf import (
    KF_CARD,
    KFID,
    REPLY,
    SUMMARY,
    RuleRouter,
    card_stack,
    customer_writes,
    kf_rows,
    kf_state,
    sent_texts,
    session,
    use_router,
)
from tests.support.sidebar import OAUTH_AUTHORIZE, oauth_code, sign_in
from tests.support.stack import FAST_BACKOFF, Stack, start_stack


async def test_a_customer_who_is_not_a_contact_gets_a_reply(stack: Stack) -> None:
    router = use_router(stack)
    written = await customer_writes(stack, "wmKFstranger01", "你好，请问营业时间？")
    assert written["delivery"]["status"] == 200
    assert sent_texts(stack, "wmKFstranger01") == [REPLY]
    [inbound] = router.seen
    assert inbound.open_kfid == KFID and inbound.msgid == written["msgid"]
    assert inbound.text == "你好，请问营业时间？"
    assert inbound.customer.external_userid == "wmKFstranger01"
    assert inbound.customer.exclusive_guide is None and inbound.customer.tags == ()
    # the bot answered: 0 → 1 (智能助手), and the message ends with its route and reason
    assert session(await kf_state(stack), "wmKFstranger01")["service_state"] == 1
    [row] = await kf_rows(stack, "wmKFstranger01")
    assert (row.status, row.route, row.reason) == ("replied", "reply", "fixed rule")
    trans = stack.calls("kf/service_state/trans")
    assert [c["body"]["service_state"] for c in trans] == [1]



async def test_contact_matched_by_unionid_gets_their_context(stack: Stack) -> None:
    """A kf customer with another external_userid than their 客户联系 one is matched through the
    unionid kf/customer/batchget gives; the router sees the exclusive guide and tags."""
    router = use_router(stack)
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦",
                                                     unionid="oUNION00000000000000000000001")
    await stack.runtime.drain()
    await customer_writes(stack, "wmKFother0001", "在吗", unionid="oUNION00000000000000000000001")
    [inbound] = router.seen
    assert inbound.customer.external_userid == added["external_userid"]
    assert inbound.customer.exclusive_guide == "lina" and inbound.customer.name == "孙悦"
    assert [c["body"]["external_userid_list"] for c in stack.calls("kf/customer/batchget")] \
        == [["wmKFother0001"]]
    assert sent_texts(stack, "wmKFother0001") == [REPLY]


async def test_an_account_not_configured_is_not_read(stack: Stack) -> None:
    router = use_router(stack)
    written = await customer_writes(stack, "wmKFx01", "你好", open_kfid="wkNOTours000001")
    assert written["delivery"]["status"] == 200
    assert stack.calls("kf/sync_msg") == [] and router.seen == []
    assert [i.outcome for i in await stack.inbox_rows()] == ["on_kf_msg_or_event"]


async def test_five_messages_per_customer_message_then_stop(stack: Stack) -> None:
    """Six messages arrive in one page (the customer typed faster than one callback): five
    replies go out, the sixth is held back by guidebot's own count before WeCom refuses;
    a new customer message opens the count again."""
    use_router(stack)
    for n in range(6):
        await customer_writes(stack, "wmKFchatty01", f"问题{n}", deliver=False, drain=False)
    await customer_writes(stack, "wmKFchatty01", "还有一个", deliver=False, drain=False)
    from guidebot.sandbox import kfsim

    await kfsim.notify(stack.sandbox, "acme", KFID)
    await stack.runtime.drain()
    sends = stack.calls("kf/send_msg")
    assert len(sends) == 5 and all(c["errcode"] == 0 for c in sends)
    assert session(await kf_state(stack), "wmKFchatty01")["sent_since_customer"] == 5
    rows = await kf_rows(stack, "wmKFchatty01")
    assert [r.status for r in rows] == ["replied"] * 5 + ["skipped", "skipped"]
    assert all("limit: 5 messages" in r.reason for r in rows[5:])
    await customer_writes(stack, "wmKFchatty01", "最后一个问题")
    assert len(stack.calls("kf/send_msg")) == 6
    assert (await kf_rows(stack, "wmKFchatty01"))[-1].status == "replied"


async def test_messages_are_handled_once_by_msgid(stack: Stack) -> None:
    """A lost cursor (here: set back to none) makes sync_msg return the last 3 days again;
    the messages already stored are not answered twice."""
    from guidebot.db.repo import kf as kf_repo
    from guidebot.db.types import utcnow

    use_router(stack)
    await customer_writes(stack, "wmKFonce0001", "第一条")
    await customer_writes(stack, "wmKFonce0001", "第二条")
    assert len(sent_texts(stack, "wmKFonce0001")) == 2
    async with stack.runtime.services.db.write() as s:
        await kf_repo.set_cursor(s, tenant="acme", open_kfid=KFID, cursor="", now=utcnow())
    await customer_writes(stack, "wmKFonce0001", "第三条")
    assert [c["body"].get("cursor") for c in stack.calls("kf/sync_msg")][-1] is None
    assert len(sent_texts(stack, "wmKFonce0001")) == 3
    rows = await kf_rows(stack, "wmKFonce0001")
    assert [r.text for r in rows] == ["第一条", "第二条", "第三条"]
    assert len({r.msgid for r in rows}) == 3
    msgids = [c["body"]["msgid"] for c in stack.calls("kf/send_msg")]
    assert len(set(msgids)) == 3


async def test_handoff_to_the_bound_guide(stack: Stack) -> None:
    use_router(stack)
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦")
    await stack.runtime.drain()
    customer = added["external_userid"]
    await customer_writes(stack, customer, "我要转人工")
    assert session(await kf_state(stack), customer) == {
        "open_kfid": KFID, "external_userid": customer, "service_state": 3,
        "servicer_userid": "lina", "sent_since_customer": 0}
    [card] = [m for m in stack.sandbox.state("acme")["app_messages"] if m["userid"] == "lina"]
    assert card["msgtype"] == "textcard"
    assert card["content"]["description"] == SUMMARY
    assert "孙悦" in card["content"]["title"]
    [row] = await kf_rows(stack, customer)
    assert (row.status, row.route, row.guide) == ("handoff", "handoff", "lina")
    # the guide's page of this handoff, at the configured public_url
    assert card["content"]["url"] == (f"{stack.runtime.services.settings.server.public_url}"
                                      f"/sidebar/acme/handoff/{row.msgid}")
    # a person has the session now: the bot stays quiet (send_msg would answer 95018)
    await customer_writes(stack, customer, "你好？")
    assert stack.calls("kf/send_msg") == []
    last = (await kf_rows(stack, customer))[-1]
    assert last.status == "skipped" and "session state 3" in last.reason


async def test_handoff_skips_a_guide_who_stopped_serving_then_the_pool(stack: Stack) -> None:
    from tests.support.kf import control

    use_router(stack)
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦")
    await stack.runtime.drain()
    await control(stack, "kf/servicers", {"open_kfid": KFID, "userid": "lina",
                                          "status": "stopped"})
    await customer_writes(stack, added["external_userid"], "转人工")
    codes = [(c["body"]["service_state"], c["errcode"])
             for c in stack.calls("kf/service_state/trans")]
    assert codes == [(3, 95019), (2, 0)]
    state = session(await kf_state(stack), added["external_userid"])
    assert (state["service_state"], state["servicer_userid"]) == (2, "")
    assert [m for m in stack.sandbox.state("acme")["app_messages"]] == []
    [row] = await kf_rows(stack, added["external_userid"])
    assert row.status == "handoff" and row.guide is None and "pool" in row.reason


async def test_cursor_survives_a_restart(aiohttp_server: Any, tmp_path: Path,
                                         db_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url)
    try:
        use_router(stack)
        await customer_writes(stack, "wmKFrestart1", "重启前")
        assert sent_texts(stack) == [REPLY]
        async with stack.runtime.services.db.read() as s:
            stored = await kf_repo.lock_cursor(s, tenant="acme", open_kfid=KFID)
        assert stored is not None and stored.cursor
        await stack.app.shutdown()
        await stack.app.cleanup()
        # while guidebot is down the customer writes; WeCom's callback finds nobody
        stack.sandbox.set_callback_base("http://127.0.0.1:9")
        down = await customer_writes(stack, "wmKFrestart1", "停机时", drain=False)
        assert down["delivery"]["status"] != 200
        app = create_app(replace(stack.settings), start_jobs=False, backoff=FAST_BACKOFF)
        server = await aiohttp_server(app)
        stack.sandbox.set_callback_base(str(server.make_url("")).rstrip("/"))
        stack.app = app
        use_router(stack)
        await customer_writes(stack, "wmKFrestart1", "重启后")
        # the first read after the restart continues from the stored cursor
        after = stack.calls("kf/sync_msg")[-1]["body"]
        assert after["cursor"] == stored.cursor
        rows = await kf_rows(stack, "wmKFrestart1")
        assert [(r.text, r.status) for r in rows] == [
            ("重启前", "replied"), ("停机时", "replied"), ("重启后", "replied")]
        assert len(sent_texts(stack)) == 3
    finally:
        await stack.http.close()


async def test_cold_start_answers_nothing_older_than_the_cursor(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    """An account configured for the first time: sync_msg without a cursor returns the last
    3 days; what was sent before the cursor existed is recorded as skipped, not answered."""
    stack = await start_stack(aiohttp_server, tmp_path, db_url)
    try:
        await stack.app.shutdown()
        await stack.app.cleanup()
        await customer_writes(stack, "wmKFcold0001", "三天内的旧消息", deliver=False, drain=False)
        # a second later the account is configured (a new deployment starts)
        await _wait_next_second()
        db = Database(db_url)
        async with db.write() as s:
            await s.execute(text("DELETE FROM kf_cursors"))
        await db.dispose()
        app = create_app(replace(stack.settings), start_jobs=False, backoff=FAST_BACKOFF)
        server = await aiohttp_server(app)
        stack.sandbox.set_callback_base(str(server.make_url("")).rstrip("/"))
        stack.app = app
        use_router(stack)
        await _wait_next_second()
        await customer_writes(stack, "wmKFcold0001", "新消息")
        first = stack.calls("kf/sync_msg")[0]["body"]
        assert "cursor" not in first
        rows = await kf_rows(stack, "wmKFcold0001")
        assert [(r.text, r.status) for r in rows] == [
            ("三天内的旧消息", "skipped"), ("新消息", "replied")]
        assert "before the cursor" in rows[0].reason
        assert sent_texts(stack) == [REPLY]
    finally:
        await stack.http.close()


async def _wait_next_second() -> None:
    """send_time has whole seconds: let the wall clock pass into the next one."""
    import asyncio
    import time

    await asyncio.sleep(1.05 - (time.time() % 1))


async def test_kf_link_entry_is_the_guides_touch_and_is_welcomed(stack: Stack) -> None:
    from tests.support.commerce import paid, post_settled
    from tests.support.kf import control

    use_router(stack)
    status, link = await stack.admin("/kf/links", method="POST",
                                     json={"guide": "mei", "open_kfid": KFID})
    assert status == 201, link
    [way] = stack.calls("kf/add_contact_way")
    assert way["body"] == {"open_kfid": KFID, "scene": "guide"}
    assert link["url"].startswith("https://work.weixin.qq.com/kf/kfc")
    assert link["url"].endswith(f"&scene_param={link['token']}")
    # the customer (a contact bound to lina) opens mei's kf link
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦")
    await stack.runtime.drain()
    customer = added["external_userid"]
    entered = await control(stack, "simulate/kf_enter", {
        "open_kfid": KFID, "external_userid": customer, "scene": "guide",
        "scene_param": link["token"]})
    await stack.runtime.drain()
    [welcome] = stack.calls("kf/send_msg_on_event")
    assert welcome["errcode"] == 0 and welcome["body"]["code"] == entered["welcome_code"]
    assert "孙悦" in welcome["body"]["text"]["content"]
    [row] = await kf_rows(stack, customer)
    assert (row.status, row.route, row.guide) == ("replied", "welcome", "mei")
    # an order after the entry goes to mei (share_link: her touch), not to the bound lina
    status, body = await post_settled(stack, paid("O-KF1", customer=customer))
    assert status == 200, body
    assert (body["rule"], body["guide"]) == ("share_link", "mei")
    _, order = await stack.admin("/orders/O-KF1")
    assert order["attribution"]["evidence"]["touch"]["kind"] == "kf_enter"


async def test_kf_link_needs_a_configured_account(stack: Stack) -> None:
    status, body = await stack.admin("/kf/links", method="POST",
                                     json={"guide": "mei", "open_kfid": "wkNOTours01"})
    assert status == 400 and "open_kfid" in body["error"]
    assert stack.calls("kf/add_contact_way") == []


async def test_two_processes_read_each_page_once(aiohttp_server: Any, tmp_path: Path,
                                                 db_url: str) -> None:
    """Two guidebot instances on one database handle the same kf event at the same time:
    every message is answered once; on PostgreSQL (the multi-process database) the locked
    cursor also means no page is read twice."""
    import asyncio

    from guidebot.db.types import utcnow
    from guidebot.events import KfMsgOrEvent
    from guidebot.sandbox import kfsim

    stack = await start_stack(aiohttp_server, tmp_path, db_url)
    try:
        other = create_app(replace(stack.settings), start_jobs=False, backoff=FAST_BACKOFF)
        await aiohttp_server(other)
        services = [stack.runtime.services, other[RUNTIME].services]
        for s in services:
            assert s.kf is not None
            s.kf.router = RuleRouter()
        for n in range(8):
            await customer_writes(stack, f"wmKFpair{n:04d}", f"问题{n}", deliver=False,
                                  drain=False)
        token = (await kfsim.notify(stack.sandbox, "acme", KFID, deliver=False))["token"]
        event = KfMsgOrEvent(tenant="acme", created_at=utcnow(), token=token, open_kfid=KFID)
        handled = await asyncio.gather(*(s.kf.on_event(event) for s in services if s.kf))
        assert sum(handled) == 8
        assert sorted(c["body"]["touser"] for c in stack.calls("kf/send_msg")) == [
            f"wmKFpair{n:04d}" for n in range(8)]
        rows = await kf_rows(stack)
        assert [r.status for r in rows] == ["replied"] * 8
        if not stack.runtime.services.db.is_sqlite:
            pages = [c["body"].get("cursor") for c in stack.calls("kf/sync_msg")]
            assert len(pages) == len(set(pages)), pages  # no cursor was read twice
        await other.shutdown()
        await other.cleanup()
    finally:
        await stack.http.close()


async def test_a_catalog_card_is_tracked_for_the_exclusive_guide(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    stack, customer = await card_stack(aiohttp_server, tmp_path, db_url)
    try:
        text, card = [c["body"] for c in stack.calls("kf/send_msg")]
        assert text["text"]["content"] == "推荐这款："
        assert card["msgtype"] == "miniprogram"
        mini = card["miniprogram"]
        assert mini["appid"] == "wxbrandstore0001" and mini["title"] == "修护精华液 30ml"
        [upload] = stack.calls("media/upload")
        assert upload["errcode"] == 0
        assert mini["thumb_media_id"] in stack.sandbox.tenants["acme"].media
        assert mini["pagepath"].startswith("pages/goods/detail.html?id=1002&t=")
        token = mini["pagepath"].rsplit("t=", 1)[1]
        async with stack.runtime.services.db.read() as s:
            from guidebot.db.repo import commerce_links

            link = await commerce_links.get_link(s, tenant="acme", token=token)
        assert link is not None and (link.guide, link.sku, link.campaign) == (
            "lina", "SKU-SERUM-02", "kf")
        [row] = await kf_rows(stack, customer)
        assert (row.status, row.route) == ("replied", "catalog")
        assert session(await kf_state(stack), customer)["sent_since_customer"] == 2
    finally:
        await stack.http.close()


async def test_a_refused_text_stops_its_card_and_leaves_the_count(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    """The text and the card are counted and claimed together; WeCom refuses the text
    (95001): the card is not sent, neither counts, and the card's outbox row is gone."""
    from tests.support.stack import library_copy

    library = library_copy(tmp_path, {"messages/kf_card.toml": KF_CARD,
                                      "media/kf_card.png": b"\x89PNG\r\n\x1a\n" + bytes(64)})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    try:
        use_router(stack)
        async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
                "tenant": "acme", "path": "kf/send_msg", "errcode": 95001,
                "times": 1}) as resp:
            assert resp.status == 200
        await customer_writes(stack, "wmKFrefused01", "修护精华有货吗")
        [send] = stack.calls("kf/send_msg")
        assert send["errcode"] == 95001 and send["body"]["msgtype"] == "text"
        [row] = await kf_rows(stack, "wmKFrefused01")
        assert row.status == "skipped" and "errcode=95001" in row.reason, row.reason
        assert session(await kf_state(stack), "wmKFrefused01")["sent_since_customer"] == 0
        async with stack.runtime.services.db.read() as s:
            keys = (await s.execute(text(
                "SELECT key FROM outbox WHERE kind = 'kf_send'"))).scalars().all()
        assert keys == [f"kf_send:{send['body']['msgid']}"]
    finally:
        await stack.http.close()


async def test_without_a_card_picture_the_text_goes_alone(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    from tests.support.stack import library_copy

    no_picture = "# a kf_card without its miniprogram picture\ntext = \"商品\"\n"
    library = library_copy(tmp_path, {"messages/kf_card.toml": no_picture})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    try:
        use_router(stack)
        await customer_writes(stack, "wmKFcard0001", "精华液")
        assert [c["body"]["msgtype"] for c in stack.calls("kf/send_msg")] == ["text"]
        [row] = await kf_rows(stack, "wmKFcard0001")
        assert row.status == "replied" and "no picture in messages/kf_card.toml" in row.reason
    finally:
        await stack.http.close()


async def test_a_message_claimed_by_a_dead_process_is_taken_over(stack: Stack) -> None:
    from datetime import timedelta

    from guidebot.db.types import utcnow

    use_router(stack)
    kf = stack.runtime.services.kf
    assert kf is not None
    await customer_writes(stack, "wmKFdead0001", "没人管的消息", deliver=False, drain=False)
    await kf.pull("acme", KFID, "")
    [row] = await kf_rows(stack, "wmKFdead0001")
    long_ago = utcnow() - timedelta(minutes=10)
    async with stack.runtime.services.db.write() as s:  # a worker claimed it, then died
        assert await kf_repo.claim_message(s, message_id=row.id, now=long_ago,
                                           stale_before=long_ago)
    await customer_writes(stack, "wmKFdead0001", "第二条")
    rows = await kf_rows(stack, "wmKFdead0001")
    assert [(r.text, r.status) for r in rows] == [("没人管的消息", "replied"),
                                                  ("第二条", "replied")]
    assert len(sent_texts(stack, "wmKFdead0001")) == 2


async def test_openapi_lists_the_kf_link_route(stack: Stack) -> None:
    async with stack.http.get(f"{stack.bot_url}/api/v1/openapi.json") as resp:
        doc = await resp.json()
    post = doc["paths"]["/api/v1/{tenant}/kf/links"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert schema["required"] == ["guide", "open_kfid"]
    assert "201" in post["responses"]


async def test_a_refused_token_is_dropped_and_the_page_read_without_it(stack: Stack) -> None:
    """The Token lives 10 minutes; an event handled later (here: the sandbox clock moved on)
    is read without it instead of failing."""
    from guidebot.db.types import utcnow
    from guidebot.events import KfMsgOrEvent
    from guidebot.sandbox import kfsim

    use_router(stack)
    await customer_writes(stack, "wmKFlate0001", "你好", deliver=False, drain=False)
    token = (await kfsim.notify(stack.sandbox, "acme", KFID, deliver=False))["token"]
    stack.sandbox.advance_clock(11 * 60)
    kf = stack.runtime.services.kf
    assert kf is not None
    handled = await kf.on_event(KfMsgOrEvent(tenant="acme", created_at=utcnow(), token=token,
                                             open_kfid=KFID))
    assert handled == 1
    syncs = [(c["body"].get("token"), c["errcode"]) for c in stack.calls("kf/sync_msg")]
    assert syncs == [(token, 40058), (None, 0)]
    assert sent_texts(stack, "wmKFlate0001") == [REPLY]


async def test_system_events_are_recorded_with_their_reason(stack: Stack) -> None:
    """A reply WeCom failed to deliver later comes back as a msg_send_fail event item."""
    import time

    from guidebot.sandbox import kfsim

    use_router(stack)
    stack.sandbox.tenants["acme"].kf.log.append({
        "msgid": "event_msgid_fail0001", "open_kfid": KFID, "external_userid": "wmKFfail01",
        "send_time": int(time.time()) + 1, "origin": 4, "msgtype": "event",
        "event": {"event_type": "msg_send_fail", "open_kfid": KFID,
                  "external_userid": "wmKFfail01", "fail_msgid": "gbabc", "fail_type": 4}})
    await kfsim.notify(stack.sandbox, "acme", KFID)
    await stack.runtime.drain()
    [row] = await kf_rows(stack, "wmKFfail01")
    assert row.status == "skipped" and row.event_type == "msg_send_fail"
    assert row.reason == "event msg_send_fail: msgid=gbabc fail_type=4"
    assert stack.calls("kf/send_msg") == []


async def test_handoff_falls_back_to_a_guide_of_the_same_store(stack: Stack) -> None:
    from guidebot.db.repo import contacts as contacts_repo
    from tests.support.commerce import paid, post_settled
    from tests.support.kf import control

    router = use_router(stack)
    async with stack.runtime.services.db.write() as s:
        await contacts_repo.ensure_store(s, tenant="acme", store_id="S01", name="静安店")
        for userid, name in (("lina", "李娜"), ("mei", "王梅")):
            await contacts_repo.ensure_guide(s, tenant="acme", userid=userid, store_id="S01",
                                             name=name)
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦")
    await stack.runtime.drain()
    customer = added["external_userid"]
    status, _ = await post_settled(stack, paid("O-KFSKU", customer=customer, items=[
        {"sku": "SKU-SERUM-02", "category": "beauty", "quantity": 1, "amount_fen": 59900}]))
    assert status == 200
    await control(stack, "kf/servicers", {"open_kfid": KFID, "userid": "lina",
                                          "status": "removed"})
    await customer_writes(stack, customer, "转人工")
    [inbound] = router.seen
    assert inbound.customer.store_id == "S01"
    assert inbound.customer.recent_skus == ("SKU-SERUM-02",)
    trans = [(c["body"]["service_state"], c["body"].get("servicer_userid"), c["errcode"])
             for c in stack.calls("kf/service_state/trans")]
    assert trans == [(3, "lina", 95014), (3, "mei", 0)]
    state = session(await kf_state(stack), customer)
    assert (state["service_state"], state["servicer_userid"]) == (3, "mei")
    [card] = stack.sandbox.state("acme")["app_messages"]
    assert card["userid"] == "mei" and card["content"]["description"] == SUMMARY
    [row] = await kf_rows(stack, customer)
    assert (row.status, row.guide) == ("handoff", "mei")


async def test_a_burst_of_customers_is_answered_once_each(stack: Stack) -> None:
    """Twelve customers write at once and their callbacks arrive together: every message is
    answered exactly once (each process claims a message once; callbacks a complete read
    covered skip their own read), and nothing is left open."""
    import asyncio

    from guidebot.sandbox import kfsim

    use_router(stack)
    customers = [f"wmKFburst{n:03d}" for n in range(12)]
    for customer in customers:
        await customer_writes(stack, customer, "在吗", deliver=False, drain=False)
    await asyncio.gather(*(kfsim.notify(stack.sandbox, "acme", KFID) for _ in customers))
    await stack.runtime.drain()
    for customer in customers:
        assert sent_texts(stack, customer) == [REPLY], customer
    rows = await kf_rows(stack)
    assert sorted(r.external_userid for r in rows) == customers
    assert {(r.status, r.route) for r in rows} == {("replied", "reply")}
    assert 1 <= len(stack.calls("kf/sync_msg")) <= len(customers)


async def test_the_handoff_card_opens_the_conversation_for_its_guide_only(
        stack: Stack) -> None:
    """The card's link signs the guide in through WeCom's OAuth (back to the same page after
    it) and shows the customer's messages; another guide, or no such handoff, sees nothing."""
    use_router(stack)
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦")
    await stack.runtime.drain()
    customer = added["external_userid"]
    await customer_writes(stack, customer, "口红有色号推荐吗")
    await customer_writes(stack, customer, "我要转人工")
    [card] = [m for m in stack.sandbox.state("acme")["app_messages"] if m["userid"] == "lina"]
    page = urlsplit(card["content"]["url"]).path  # at the configured public_url
    url = f"{stack.bot_url}{page}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(url, allow_redirects=False) as resp:
            assert resp.status == 302  # no session: WeCom's OAuth first
            oauth = resp.headers["Location"]
        assert oauth.startswith(OAUTH_AUTHORIZE)
        state = parse_qs(urlsplit(oauth).query)["state"][0]
        code = await oauth_code(stack, "lina")
        async with http.get(f"{stack.bot_url}/sidebar/acme", params={"code": code,
                            "state": state}, allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == page  # back to it
        async with http.get(url, allow_redirects=False) as resp:
            assert resp.status == 200
            html = await resp.text()
        assert "客户转人工 · 孙悦" in html and "微信客服" in html
        texts = re.findall(r'<span class="text">([^<]*)</span>', html)
        [answer] = sent_texts(stack, customer)  # the bot's answer to the first message
        assert texts == ["口红有色号推荐吗", answer, "我要转人工"]
        assert html.count('<li class="reply">') == 1
        assert 'aria-current="true"' in html.split("我要转人工")[0].rsplit("<li", 1)[1]
        async with http.get(f"{stack.bot_url}/sidebar/acme/handoff/nosuch",
                            allow_redirects=False) as resp:
            assert resp.status == 404 and "口红" not in await resp.text()
        async with http.get(f"{stack.bot_url}/sidebar/acme", allow_redirects=False) as resp:
            assert resp.status == 200  # the same session opens the sidebar
    other = await sign_in(stack, "chenjing")
    try:
        async with other.http.get(url, allow_redirects=False) as resp:
            assert resp.status == 404  # not the guide who took it
            assert "口红" not in await resp.text()
    finally:
        await other.http.close()


async def test_asking_again_while_with_the_guide_is_not_handed_again(stack: Stack) -> None:
    """转人工 again while the session is with the guide guidebot handed it to: no second
    kf/service_state/trans and no second notice; the message says who has it. After the
    session's end (change_type 3), or 48 h without the customer, it is handed again."""
    from tests.support.kf import control

    use_router(stack)
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦")
    await stack.runtime.drain()
    customer = added["external_userid"]

    def notices() -> list[Any]:
        return [m for m in stack.sandbox.state("acme")["app_messages"]
                if m["userid"] == "lina" and m["msgtype"] == "textcard"]

    start = 1_900_000_000.0  # a fixed instant (after any real cursor), moved by hand below
    stack.sandbox.clock_offset = start - time.time()
    await customer_writes(stack, customer, "我要转人工")
    assert len(stack.calls("kf/service_state/trans")) == 1 and len(notices()) == 1
    await customer_writes(stack, customer, "转人工！")
    # two more in one sync_msg page: the batch knows its own handoff too
    await customer_writes(stack, customer, "快转人工", deliver=False, drain=False)
    await customer_writes(stack, customer, "转人工啊")
    assert len(stack.calls("kf/service_state/trans")) == 1 and len(notices()) == 1
    assert stack.calls("kf/send_msg") == []
    rows = await kf_rows(stack, customer)
    assert [(r.status, r.guide) for r in rows] == [("handoff", "lina")] + [("skipped", None)] * 3
    assert all(r.reason.startswith("already with lina: not handed again") for r in rows[1:])
    assert session(await kf_state(stack), customer)["servicer_userid"] == "lina"
    # lina ends the session: asking again hands it again
    await control(stack, "simulate/kf_session_change",
                  {"open_kfid": KFID, "external_userid": customer, "change_type": 3})
    await stack.runtime.drain()
    await customer_writes(stack, customer, "还是转人工")
    assert [c["body"]["service_state"] for c in stack.calls("kf/service_state/trans")] == [3, 3]
    assert len(notices()) == 2 and (await kf_rows(stack, customer))[-1].status == "handoff"
    # 48 h without the customer: the session's life is over, so it is handed again
    stack.sandbox.clock_offset = start + 48 * 3600 + 60 - time.time()
    await customer_writes(stack, customer, "转人工")
    assert len(stack.calls("kf/service_state/trans")) == 3 and len(notices()) == 3
    last = (await kf_rows(stack, customer))[-1]
    assert (last.status, last.guide) == ("handoff", "lina")
