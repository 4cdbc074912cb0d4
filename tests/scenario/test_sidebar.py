"""The chat sidebar over HTTP against the sandbox: WeCom OAuth → guide session → the customer
card; only followed customers, only this tenant's sessions; tags and tracked cards."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.support.commerce import signed_visit
from tests.support.sidebar import OAUTH_AUTHORIZE, oauth_code, sign_in
from tests.support.stack import Stack


async def _customer(stack: Stack, guide: str, name: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def test_oauth_session_and_the_customer_card(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    await stack.runtime.services.sync_tags()
    guide = await sign_in(stack, "lina")
    oauth = urlsplit(guide.oauth)
    assert guide.oauth.startswith(OAUTH_AUTHORIZE + "?") and oauth.fragment == "wechat_redirect"
    query = {k: v[0] for k, v in parse_qs(oauth.query).items()}
    tenant = stack.tenant()
    assert query["appid"] == tenant.corp_id and query["agentid"] == str(tenant.agent_id)
    assert query["scope"] == "snsapi_base" and query["response_type"] == "code"
    assert query["redirect_uri"] == f"{stack.settings.server.public_url}/sidebar/acme"
    assert [c["query"]["code"] for c in stack.calls("auth/getuserinfo")] != []

    status, card = await guide.get(f"/customer/{customer}")
    assert status == 200, card
    assert card["guide"] == "lina" and card["customer"]["name"] == "陈思"
    assert card["bound_to_me"] is True and card["exclusive_guide"] == "lina"
    assert card["orders"] == [] and card["propensity"]["score"] == 0
    assert {g["group"] for g in card["tag_library"]} >= {"来源渠道", "客户阶段"}
    texts = {s["id"]: s["text"] for s in card["suggestions"]}
    assert "sop_care_thanks" not in texts  # written to guides (task placeholders)
    assert not {"kf_handoff", "kf_welcome", "reply_greeting"} & set(texts)  # sidebar = false
    assert "welcome_default" in texts and "sop_new_coupon" in texts
    assert texts and all("{{" not in t for t in texts.values())
    assert {p["sku"] for p in card["products"]} == set(
        stack.runtime.services.commerce.catalog.products)
    await guide.http.close()


async def test_a_code_works_once_and_the_state_must_match(stack: Stack) -> None:
    page = f"{stack.bot_url}/sidebar/acme"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(page, allow_redirects=False) as resp:
            state = parse_qs(urlsplit(resp.headers["Location"]).query)["state"][0]
        code = await oauth_code(stack, "lina")
        async with http.get(page, params={"code": code, "state": "0" * 32},
                            allow_redirects=False) as resp:
            assert resp.status == 403  # a state this browser was not given
        async with http.get(page, params={"code": code, "state": state},
                            allow_redirects=False) as resp:
            assert resp.status == 302
        http.cookie_jar.clear()
        async with http.get(page, allow_redirects=False) as resp:
            state = parse_qs(urlsplit(resp.headers["Location"]).query)["state"][0]
        async with http.get(page, params={"code": code, "state": state},
                            allow_redirects=False) as resp:
            assert resp.status == 403  # the sandbox refuses a used code, as WeCom does
        assert "gb_sidebar" not in {c.key for c in http.cookie_jar}


async def test_a_guide_reads_only_customers_they_follow(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    other = await sign_in(stack, "chenjing")
    for path in (f"/customer/{customer}", "/customer/wmNOBODY"):
        assert (await other.get(path))[0] == 404
    status, _ = await other.post(f"/customer/{customer}/tags", {"add": ["新客"]})
    assert status == 404
    status, _ = await other.post(f"/customer/{customer}/card", {"sku": "SKU-LIPSTICK-01"})
    assert status == 404
    assert stack.calls("externalcontact/mark_tag") == []
    await other.http.close()


async def test_no_session_or_another_tenants_session_is_refused(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    beta = await sign_in(stack, "lina", tenant="beta")
    async with aiohttp.ClientSession() as http:
        for cookies in ({}, {"gb_sidebar": beta.cookie()}, {"gb_sidebar": "x.y"}):
            async with http.get(f"{stack.bot_url}/sidebar/acme/customer/{customer}",
                                cookies=cookies) as resp:
                assert resp.status == 401, cookies
            async with http.get(f"{stack.bot_url}/sidebar/acme/signature",
                                params={"url": "http://x/"}, cookies=cookies) as resp:
                assert resp.status == 401
            for page in ("/sidebar/acme", "/sidebar/acme/handoff/anymsg"):
                async with http.get(f"{stack.bot_url}{page}", cookies=cookies,
                                    allow_redirects=False) as resp:
                    assert resp.status == 302, (page, cookies)  # back to WeCom's OAuth
                    assert resp.headers["Location"].startswith(OAUTH_AUTHORIZE)
    assert (await beta.get(f"/customer/{customer}"))[0] == 404  # not beta's customer
    await beta.http.close()


async def test_tags_are_edited_on_the_guides_relation_with_csrf(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    await stack.runtime.services.sync_tags()
    guide = await sign_in(stack, "lina")
    path = f"/customer/{customer}/tags"
    assert (await guide.post(path, {"add": ["复购客"]}, csrf=""))[0] == 403
    assert (await guide.post(path, {"add": ["复购客"]}, csrf="forged"))[0] == 403
    assert stack.calls("externalcontact/mark_tag") == []
    status, card = await guide.post(path, {"add": ["复购客"]})
    assert status == 200 and "复购客" in card["tags"], card
    [call] = stack.calls("externalcontact/mark_tag")
    assert call["body"]["userid"] == "lina" and call["body"]["external_userid"] == customer
    status, card = await guide.post(path, {"remove": ["复购客"]})
    assert status == 200 and "复购客" not in card["tags"]
    assert (await guide.post(path, {"add": ["没有这个标签"]}))[0] == 400
    await guide.http.close()


async def test_a_product_card_carries_the_guides_tracking_token(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    guide = await sign_in(stack, "lina")
    status, card = await guide.post(f"/customer/{customer}/card", {"sku": "SKU-SERUM-02"})
    assert status == 201, card
    program = card["miniprogram"]
    assert card["msgtype"] == "miniprogram"
    assert program["page"] == f"pages/goods/detail.html?id=1002&t={card['token']}"
    assert program["title"] == "修护精华液 30ml" and program["imgUrl"].endswith("/card.png")
    async with stack.http.get(f"{stack.bot_url}/t/{card['token']}",
                              params=signed_visit(stack, card["token"],
                                                  external_userid=customer)) as resp:
        assert resp.status == 204
    _, after = await guide.get(f"/customer/{customer}")
    assert after["propensity"]["visits_30d"] == 1  # the visit counts for this customer
    assert (await guide.post(f"/customer/{customer}/card", {"sku": "NOPE"}))[0] == 400
    await guide.http.close()


async def test_static_files_are_served_from_the_package(stack: Stack) -> None:
    for name, needle in (("vendor/wecom.global.prod.js", b"var ww="),
                         ("sidebar.js", b"ww.register")):
        async with stack.http.get(f"{stack.bot_url}/sidebar/_static/{name}") as resp:
            assert resp.status == 200 and needle in await resp.read()


async def test_one_ticket_serves_many_signatures_until_it_nears_expiry(stack: Stack) -> None:
    from datetime import timedelta

    from guidebot.db.types import utcnow
    from guidebot.sidebar.tickets import AgentTickets

    guide = await sign_in(stack, "lina")
    page = f"{stack.bot_url}/sidebar/acme?from=chat#top"
    jsapi = stack.sandbox.tenant("acme").jsapi
    signatures = []
    for _ in range(5):
        status, signed = await guide.get(f"/signature?url={aiohttp.helpers.quote(page)}")
        assert status == 200, signed
        signatures.append(signed)
        # what the WeCom client checks: the sandbox recomputes it with the ticket it issued
        assert jsapi.verify(url=page, timestamp=str(signed["timestamp"]),
                            nonce=signed["nonceStr"], signature=signed["signature"],
                            now=stack.sandbox.now())
    assert len({s["nonceStr"] for s in signatures}) == 5
    [fetch] = stack.calls("ticket/get")
    assert fetch["query"]["type"] == "agent_config" and fetch["errcode"] == 0
    first = signatures[0]
    assert not jsapi.verify(url=page.replace("chat", "elsewhere"),
                            timestamp=str(first["timestamp"]), nonce=first["nonceStr"],
                            signature=first["signature"], now=stack.sandbox.now())

    services = stack.runtime.services
    another_process = AgentTickets(services.db, services.client)
    assert await another_process.ticket(stack.tenant()) == jsapi.tickets[0].ticket
    assert len(stack.calls("ticket/get")) == 1  # read from the database, not fetched

    assert services.sidebar is not None
    later = utcnow() + timedelta(seconds=7200 - 299)  # under 5 minutes left: refresh
    services.sidebar.tickets.clock = lambda: later
    status, _ = await guide.get("/signature?url=http%3A%2F%2Fx%2F")
    assert status == 200 and len(stack.calls("ticket/get")) == 2
    await guide.get("/signature?url=http%3A%2F%2Fx%2F")
    assert len(stack.calls("ticket/get")) == 2
    assert (await guide.get("/signature?url=relative"))[0] == 400
    await guide.http.close()


async def test_unknown_tenants_and_the_page_headers(stack: Stack) -> None:
    for path in ("/sidebar/nope", "/sidebar/nope/customer/wm1", "/sidebar/nope/signature"):
        async with stack.http.get(f"{stack.bot_url}{path}", allow_redirects=False) as resp:
            assert resp.status == 404, path
    guide = await sign_in(stack, "lina")
    async with guide.http.get(guide.base) as resp:
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        html = await resp.text()
    assert "/sidebar/_static/vendor/wecom.global.prod.js" in html and "https://" not in html
    await guide.http.close()


async def test_the_card_shows_the_birthday_and_the_days_left_within_30(stack: Stack) -> None:
    """The birthday HQ set (生日关怀), MM-DD even when the year is known, and the days left
    when it is 30 days away or nearer (Feb 29 on Feb 28 in years without one); the sidebar's
    "today" is pinned."""
    customer = await _customer(stack, "lina", "陈思")
    guide = await sign_in(stack, "lina")
    sidebar = stack.runtime.services.sidebar
    sidebar.clock = lambda: datetime(2031, 2, 10, 20, tzinfo=UTC)  # Feb 11 in Shanghai
    stack.runtime.services.sop.clock = sidebar.clock  # birthday SOPs' catch-up: the same day
    status, card = await guide.get(f"/customer/{customer}")
    assert status == 200 and card["customer"]["birthday"] is None
    for birthday, shown in (("1990-03-13", {"date": "03-13", "in_days": 30}),
                            ("03-14", {"date": "03-14", "in_days": None}),
                            ("02-11", {"date": "02-11", "in_days": 0}),
                            ("02-10", {"date": "02-10", "in_days": None}),  # next year's
                            ("02-29", {"date": "02-29", "in_days": 17})):  # Feb 28, 2031
        status, body = await stack.admin(f"/customers/{customer}/birthday", method="PUT",
                                         json={"birthday": birthday})
        assert status == 200, body
        status, card = await guide.get(f"/customer/{customer}")
        assert (status, card["customer"]["birthday"]) == (200, shown), birthday
    await guide.http.close()
