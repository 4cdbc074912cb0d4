"""Admin API: per-tenant bearer tokens, tenant isolation, OpenAPI, guides and channels."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from tests.support.stack import Stack
from tests.support.wecom import add_contact_xml


async def test_tokens_are_per_tenant(stack: Stack) -> None:
    assert (await stack.admin("/guides", token=""))[0] == 401
    assert (await stack.admin("/guides", token="wrong"))[0] == 403
    beta_token = stack.tenant("beta").admin_token
    assert (await stack.admin("/guides", tenant="acme", token=beta_token))[0] == 403
    assert (await stack.admin("/guides", tenant="beta"))[0] == 200
    status, body = await stack.admin("/guides", tenant="nosuch", token="x")
    assert status == 404


async def test_tenants_are_isolated(stack: Stack) -> None:
    xml = add_contact_xml(corp_id=stack.tenant().corp_id, guide="lina",
                          external_userid="wmISOLATED", create_time=int(time.time()))
    assert await stack.post_callback(xml, tenant="acme") == 200
    await stack.runtime.drain()
    assert (await stack.admin("/customers/wmISOLATED"))[0] == 200
    assert (await stack.admin("/customers/wmISOLATED", tenant="beta"))[0] == 404
    _, guides = await stack.admin("/guides", tenant="beta")
    assert guides == {"guides": []}
    _, guides = await stack.admin("/guides")
    assert guides["guides"] == [{"userid": "lina", "name": "", "store": None, "active": True,
                                 "active_customers": 1}]


async def test_openapi_document_lists_the_contract_routes(stack: Stack) -> None:
    async with stack.http.get(f"{stack.bot_url}/api/v1/openapi.json") as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/{tenant}/customers/{external_userid}" in doc["paths"]
    assert "/api/v1/{tenant}/guides" in doc["paths"]
    schema = doc["paths"]["/api/v1/{tenant}/customers/{external_userid}"]["get"]
    ref = schema["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    required = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["required"]
    assert set(required) >= {"external_userid", "name", "guides", "exclusive_guide", "tags",
                             "channel"}


async def test_channel_create_validates_input(stack: Stack) -> None:
    status, body = await stack.admin("/channels", method="POST", json={"store": "S01"})
    assert status == 400 and "guide" in body["error"]
    status, body = await stack.admin("/channels", method="POST",
                                     json={"guide": "lina", "tags": ["不存在的标签"]})
    assert status == 400 and "不存在的标签" in body["error"]
    status, body = await stack.admin("/channels", method="POST",
                                     json={"guide": "lina", "welcome_message": "nope"})
    assert status == 400 and "nope" in body["error"]
    assert stack.calls("externalcontact/add_contact_way") == []
    status, listing = await stack.admin("/channels")
    assert status == 200 and listing == {"channels": []}


async def test_unknown_customer_is_404(stack: Stack) -> None:
    status, body = await stack.admin("/customers/wmNOBODY")
    assert status == 404 and "wmNOBODY" in body["error"]


async def test_healthz_and_metrics(stack: Stack) -> None:
    xml = add_contact_xml(corp_id=stack.tenant().corp_id, guide="lina",
                          external_userid="wmMETRICS", create_time=int(time.time()))
    await stack.post_callback(xml)
    await stack.post_callback(xml)
    async with stack.http.get(f"{stack.bot_url}/healthz") as resp:
        assert resp.status == 200
    async with stack.http.get(f"{stack.bot_url}/metrics") as resp:
        text = await resp.text()
    counted = {(s.labels["tenant"], s.labels["result"]): s.value
               for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "guidebot_callbacks_total"}
    assert counted == {("acme", "accepted"): 1, ("acme", "duplicate"): 1}


async def test_hq_marks_and_unmarks_tags_mirrored_locally(stack: Stack) -> None:
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦")
    await stack.runtime.drain()
    path = f"/customers/{added['external_userid']}/tags"
    status, view = await stack.admin(path, method="POST",
                                     json={"guide": "lina", "add": ["新客", "直播间"]})
    assert status == 200, view
    assert sorted(view["tags"]) == ["新客", "直播间"]
    status, view = await stack.admin(path, method="POST",
                                     json={"guide": "lina", "remove": ["直播间"]})
    assert status == 200 and view["tags"] == ["新客"]
    marks = [c["body"] for c in stack.calls("externalcontact/mark_tag")]
    assert len(marks) == 2 and marks[1]["remove_tag"] and not marks[1]["add_tag"]
    # WeCom has no relation between this guide and the customer: refused, nothing mirrored.
    await stack.sandbox.simulate_add_contact("acme", userid="wangfang")  # a known guide
    await stack.runtime.drain()
    status, body = await stack.admin(path, method="POST",
                                     json={"guide": "wangfang", "add": ["复购客"]})
    assert status == 409, body
    _, view = await stack.admin(f"/customers/{added['external_userid']}")
    assert view["tags"] == ["新客"]
    status, body = await stack.admin(path, method="POST", json={"guide": "lina"})
    assert status == 400
