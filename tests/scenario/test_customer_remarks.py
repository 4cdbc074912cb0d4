"""A guide's WeCom remark (备注/描述) over HTTP: set in the sidebar through the sandbox's
externalcontact/remark, then found by the admin API's and the console's customer search; a
WeCom refusal stores nothing; remarks set in the WeCom client are read back with the profile
(externalcontact/get) and the tag sweep (batch/get_by_user)."""

from __future__ import annotations

from html import unescape

import pytest
from sqlalchemy import select

from guidebot.db.models import Follow
from guidebot.errors import WeComError
from tests.support.console import Console
from tests.support.sidebar import sign_in
from tests.support.stack import Stack


async def _customer(stack: Stack, guide: str, name: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _stored(stack: Stack, guide: str, customer: str) -> tuple[str, str]:
    async with stack.runtime.services.db.read() as s:
        follow = (await s.execute(select(Follow).where(
            Follow.tenant == "acme", Follow.guide == guide,
            Follow.external_userid == customer))).scalar_one()
    return follow.remark, follow.description


async def _found(stack: Stack, q: str) -> list[str]:
    status, body = await stack.admin(f"/customers?q={q}")
    assert status == 200, body
    return [c["external_userid"] for c in body["customers"]]


async def test_a_remark_set_in_the_sidebar_is_in_wecom_and_found(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    guide = await sign_in(stack, "lina")
    path = f"/customer/{customer}/remark"
    assert (await guide.post(path, {"remark": "x"}, csrf=""))[0] == 403
    assert await _found(stack, "敏感肌") == []
    status, card = await guide.post(path, {"remark": " 敏感肌VIP ", "description": "周末到店"})
    assert status == 200, card
    assert card["remark"] == "敏感肌VIP" and card["description"] == "周末到店"
    [call] = stack.calls("externalcontact/remark")
    assert call["body"] == {"userid": "lina", "external_userid": customer,
                            "remark": "敏感肌VIP", "description": "周末到店"}
    follow = stack.sandbox.tenant("acme").follow("lina", customer)
    assert (follow.remark, follow.description) == ("敏感肌VIP", "周末到店")
    assert await _stored(stack, "lina", customer) == ("敏感肌VIP", "周末到店")
    assert await _found(stack, "敏感肌") == [customer]
    assert await _found(stack, "周末到店") == [customer]
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get("/console/acme/customers?q=敏感肌")
        assert status == 200 and customer in unescape(html)
    finally:
        await console.close()
    _, again = await guide.get(f"/customer/{customer}")
    assert again["remark"] == "敏感肌VIP"
    await guide.http.close()


async def test_a_wecom_refusal_stores_nothing(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    guide = await sign_in(stack, "lina")
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": "externalcontact/remark", "errcode": 40003,
            "times": 1}) as resp:
        assert resp.status == 200
    status, body = await guide.post(f"/customer/{customer}/remark", {"remark": "老客"})
    assert status == 502 and "40003" in body["error"], body
    assert await _stored(stack, "lina", customer) == ("", "")
    assert stack.sandbox.tenant("acme").follow("lina", customer).remark == ""
    assert await _found(stack, "老客") == []
    await guide.http.close()


async def test_bad_input_and_strangers_change_nothing(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    guide = await sign_in(stack, "lina")
    for body, code, params in (({"remark": "好" * 129}, "remark.long", {"most": "128"}),
                               ({"description": "好" * 513}, "description.long", {"most": "512"}),
                               ({"remark": 5}, "remark.type", {})):
        status, answer = await guide.post(f"/customer/{customer}/remark", body)
        assert status == 400, (body, answer)
        assert (answer["code"], answer["params"]) == (code, params), answer
    stranger = await sign_in(stack, "wangfang")
    assert (await stranger.post(f"/customer/{customer}/remark", {"remark": "x"}))[0] == 404
    beta = await sign_in(stack, "lina", tenant="beta")
    assert (await beta.post(f"/customer/{customer}/remark", {"remark": "x"}))[0] == 404
    assert stack.calls("externalcontact/remark") == []
    assert await _stored(stack, "lina", customer) == ("", "")
    for g in (guide, stranger, beta):
        await g.http.close()


async def test_the_sandbox_refuses_a_remark_without_the_relation(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    client = stack.runtime.services.client("acme")
    with pytest.raises(WeComError) as refused:
        await client.remark(userid="wangfang", external_userid=customer, remark="x",
                            description="")
    assert refused.value.errcode == 84061


async def test_a_remark_set_in_the_client_is_read_back_with_the_profile(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    follow = stack.sandbox.tenant("acme").follow("lina", customer)
    follow.remark, follow.description = "客户端备注", "客户端描述"
    await stack.runtime.services.profiles.refresh("acme", customer, guide="lina")
    assert await _stored(stack, "lina", customer) == ("客户端备注", "客户端描述")
    assert await _found(stack, "客户端备注") == [customer]


async def test_a_remark_set_in_the_client_is_read_back_by_the_sweep(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    follow = stack.sandbox.tenant("acme").follow("lina", customer)
    follow.remark, follow.description = "扫到的备注", ""
    await stack.runtime.services.tags.sweep("acme")
    assert await _stored(stack, "lina", customer) == ("扫到的备注", "")
