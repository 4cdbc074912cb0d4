"""Attribution end to end: contact callbacks and visits in, signed orders in, credit out."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from guidebot.commerce import bulk
from guidebot.commerce.attribution import Item
from guidebot.commerce.schema import CustomerRef, PaidOrder
from guidebot.sandbox.api.idconvert import openid_of
from guidebot.settings import CommissionSettings
from tests.support.commerce import paid, post_settled, signed_visit
from tests.support.stack import Stack
from tests.support.wecom import contact_event_xml

DAY = 86_400


async def _event(stack: Stack, change_type: str, guide: str, customer: str, at: int,
                 **extra: str) -> None:
    xml = contact_event_xml(change_type, corp_id=stack.tenant().corp_id, guide=guide,
                            external_userid=customer, create_time=at, **extra)
    assert await stack.post_callback(xml) == 200
    await stack.runtime.drain()


async def _link(stack: Stack, guide: str) -> str:
    status, link = await stack.admin("/links", method="POST",
                                     json={"guide": guide, "sku": "SKU1", "title": "Card"})
    assert status == 201
    return str(link["token"])


async def _visit(stack: Stack, token: str, **query: str) -> None:
    async with stack.http.get(f"{stack.bot_url}/t/{token}",
                              params=signed_visit(stack, token, **query)) as resp:
        assert resp.status == 204


async def _credit(stack: Stack, order_no: str, **kw: object) -> tuple[str, str | None]:
    status, body = await post_settled(stack, paid(order_no, **kw))  # type: ignore[arg-type]
    assert status == 200, body
    return body["rule"], body["guide"]


async def test_exclusive_guide_from_the_add_callback(stack: Stack) -> None:
    await _event(stack, "add_external_contact", "lina", "wmEX1", int(time.time()) - DAY)
    assert await _credit(stack, "O-EX1", customer="wmEX1") == ("exclusive_guide", "lina")
    _, order = await stack.admin("/orders/O-EX1")
    evidence = order["attribution"]["evidence"]
    assert evidence["binding"]["guide"] == "lina"
    assert [s["rule"] for s in evidence["skipped"]] == ["share_link"]
    assert order["ledger"][0]["kind"] == "earn" and order["ledger"][0]["amount_fen"] == 597


@pytest.mark.parametrize(("first_add_days_ago", "expected"), [(29, "lina"), (30, "wangfang")])
async def test_protection_edge_decides_the_credit(stack: Stack, first_add_days_ago: int,
                                                 expected: str) -> None:
    now = int(time.time())
    await _event(stack, "add_external_contact", "lina", "wmPROT", now - first_add_days_ago * DAY)
    await _event(stack, "add_external_contact", "wangfang", "wmPROT", now)
    assert await _credit(stack, "O-PROT", customer="wmPROT") == ("exclusive_guide", expected)


async def test_customer_deleting_the_guide_falls_back_to_the_store(stack: Stack) -> None:
    now = int(time.time())
    await _event(stack, "add_external_contact", "lina", "wmDEL", now - 5 * DAY)
    await _event(stack, "del_follow_user", "lina", "wmDEL", now - DAY)
    assert await _credit(stack, "O-DEL", customer="wmDEL", store="S02") == ("store", None)
    paid_before = datetime.now(UTC) - timedelta(days=2)
    assert await _credit(stack, "O-DEL-EARLY", customer="wmDEL",
                         paid_at=paid_before) == ("exclusive_guide", "lina")
    period = datetime.now(UTC).astimezone(stack.tenant().tz).strftime("%Y-%m")
    status, report = await stack.admin(f"/commissions/stores?period={period}")
    assert status == 200
    assert report["stores"] == [{"store": "S02", "orders": 1, "gmv_fen": 19900}]


async def test_completed_transfer_moves_the_credit(stack: Stack) -> None:
    now = int(time.time())
    await _event(stack, "add_external_contact", "lina", "wmTR", now - 10 * DAY)
    await _event(stack, "add_external_contact", "zhaolei", "wmTR", now - 3600)
    await _event(stack, "del_external_contact", "lina", "wmTR", now - 600,
                 Source="DELETE_BY_TRANSFER")
    assert await _credit(stack, "O-TR", customer="wmTR") == ("exclusive_guide", "zhaolei")
    before = datetime.fromtimestamp(now - 3000, UTC)
    assert await _credit(stack, "O-TR-0", customer="wmTR",
                         paid_at=before) == ("exclusive_guide", "lina")


async def test_share_link_beats_the_binding_and_the_window_ends(stack: Stack) -> None:
    await _event(stack, "add_external_contact", "lina", "wmSL", int(time.time()) - 40 * DAY)
    await _visit(stack, await _link(stack, "chenjing"), external_userid="wmSL", dur="45")
    assert await _credit(stack, "O-SL", customer="wmSL") == ("share_link", "chenjing")
    eight_days = datetime.now(UTC) + timedelta(days=8)
    assert await _credit(stack, "O-SL-LATE", customer="wmSL",
                         paid_at=eight_days) == ("exclusive_guide", "lina")


async def test_the_orders_own_tracking_token_is_a_touch(stack: Stack) -> None:
    token = await _link(stack, "wangfang")
    assert await _credit(stack, "O-TOK", customer="wmTOK", tracking=token) == (
        "share_link", "wangfang")
    _, order = await stack.admin("/orders/O-TOK")
    assert order["attribution"]["evidence"]["touch"]["kind"] == "order"
    assert order["attribution"]["evidence"]["touch"]["token"] == token
    assert await _credit(stack, "O-TOK2", customer="wmTOK") == ("share_link", "wangfang")
    status, _ = await post_settled(stack, paid("O-TOK3", customer="wmTOK3", tracking="nosuch"))
    _, order = await stack.admin("/orders/O-TOK3")
    assert order["attribution"]["evidence"]["unknown_tracking"] is True


async def test_visit_by_unionid_counts_once_the_customer_is_known(stack: Stack) -> None:
    token = await _link(stack, "zhaolei")
    await _visit(stack, token, unionid="oUNION-VISIT")
    assert await _credit(stack, "O-UV", customer="wmUV", unionid="oUNION-VISIT") == (
        "share_link", "zhaolei")
    await _visit(stack, token, unionid="oUNION-VISIT", dur="30")
    _, view = await stack.admin("/customers/wmUV")
    assert view["propensity"]["visits_30d"] == 2


async def test_order_with_only_a_unionid_finds_its_customer(stack: Stack) -> None:
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina",
                                                     unionid="oUNION-PROFILE")
    await stack.runtime.drain()
    rule, guide = await _credit(stack, "O-UNION", unionid="oUNION-PROFILE")
    assert (rule, guide) == ("exclusive_guide", "lina")
    _, order = await stack.admin("/orders/O-UNION")
    assert order["customer"]["external_userid"] == added["external_userid"]


async def test_conversion_api_resolves_an_unknown_unionid_once(stack: Stack) -> None:
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina",
                                                     unionid="oUNION-API", deliver=False)
    openid = openid_of("oUNION-API")
    await post_settled(stack, paid("O-API1", unionid="oUNION-API", openid=openid))
    await post_settled(stack, paid("O-API2", unionid="oUNION-API", openid=openid))
    for order_no in ("O-API1", "O-API2"):
        _, order = await stack.admin(f"/orders/{order_no}")
        assert order["customer"]["external_userid"] == added["external_userid"]
    assert len(stack.calls("externalcontact/unionid_to_external_userid")) == 1
    await post_settled(stack, paid("O-API3", unionid="oNOBODY", openid=openid_of("oNOBODY")))
    _, order = await stack.admin("/orders/O-API3")
    assert order["customer"]["external_userid"] is None


async def test_a_later_rules_change_never_rewrites_history(stack: Stack) -> None:
    await _event(stack, "add_external_contact", "lina", "wmVER", int(time.time()) - DAY)
    paid_before_change = datetime.now(UTC) - timedelta(seconds=5)
    assert await _credit(stack, "O-V1", customer="wmVER") == ("exclusive_guide", "lina")
    commerce = stack.runtime.services.commerce
    tenant = replace(stack.tenant(), commission=CommissionSettings(default_rate="0.10"))
    commerce.settings = replace(commerce.settings, tenants={**commerce.settings.tenants,
                                                            "acme": tenant})
    await commerce.record_rules()
    await _credit(stack, "O-V2", customer="wmVER")
    await _credit(stack, "O-V0", customer="wmVER", paid_at=paid_before_change)
    orders = {n: (await stack.admin(f"/orders/{n}"))[1] for n in ("O-V1", "O-V2", "O-V0")}
    assert orders["O-V1"]["commission_fen"] == 597 and orders["O-V0"]["commission_fen"] == 597
    assert orders["O-V2"]["commission_fen"] == 1990
    assert orders["O-V2"]["rules"]["default_rate"] == "0.10"
    hashes = {n: o["attribution"]["evidence"]["rule_version"]["config_hash"]
              for n, o in orders.items()}
    assert hashes["O-V1"] == hashes["O-V0"] != hashes["O-V2"]


@pytest.mark.parametrize(("before_paid", "expected"), [
    (timedelta(days=7), ("share_link", "chenjing")),                   # exactly N days: inside
    (timedelta(days=7, seconds=1), ("exclusive_guide", "lina"))])      # one second older
async def test_share_link_window_edge_at_exactly_n_days(stack: Stack, before_paid: timedelta,
                                                        expected: tuple[str, str]) -> None:
    """Per order over the webhook and in bulk, on the real database."""
    await _event(stack, "add_external_contact", "lina", "wmWIN", int(time.time()) - 40 * DAY)
    token = await _link(stack, "chenjing")
    paid_at = datetime.now(UTC).replace(microsecond=250_000)
    commerce = stack.runtime.services.commerce
    ts = str(int((paid_at - before_paid).timestamp()))  # signed when the visit happened
    assert await commerce.links.visit(
        token, signed_visit(stack, token, external_userid="wmWIN", ts=ts),
        paid_at - before_paid) == "acme"
    assert await _credit(stack, "O-WIN", customer="wmWIN", paid_at=paid_at) == expected
    order = PaidOrder("O-WIN-BULK", paid_at, CustomerRef("wmWIN"), "", "S01",
                      (Item("SKU1", "beauty", 19900),))
    await bulk.record_many(commerce.db, stack.tenant(), [order], commerce.clock)
    _, recorded = await stack.admin("/orders/O-WIN-BULK")
    assert (recorded["attribution"]["rule"], recorded["attribution"]["guide"]) == expected


@pytest.mark.parametrize(("bound_days_ago", "expected"), [
    (30, ("store", None)),                          # exactly binding_validity_days: ended
    (29, ("exclusive_guide", "lina"))])
async def test_binding_validity_edge_at_exactly_n_days(stack: Stack, bound_days_ago: int,
                                                       expected: tuple[str, None]) -> None:
    services = stack.runtime.services  # the webhook's tenant settings and the commerce ones
    tenant = replace(stack.tenant(), commission=CommissionSettings(binding_validity_days=30))
    settings = replace(services.settings, tenants={**services.settings.tenants, "acme": tenant})
    # As if config.toml had said so at start (the container is frozen; a deployment edits
    # config and restarts): the relations service and commerce both read the new rules.
    object.__setattr__(services, "settings", settings)
    object.__setattr__(services.relations, "_settings", settings)
    services.commerce.settings = settings
    await services.commerce.record_rules()
    added_at = int(time.time()) - (bound_days_ago - 1) * DAY  # paid a day from now: the
    await _event(stack, "add_external_contact", "lina", "wmVAL", added_at)  # new rules apply
    paid_at = datetime.fromtimestamp(added_at + bound_days_ago * DAY, UTC)
    assert await _credit(stack, "O-VAL", customer="wmVAL", paid_at=paid_at) == expected
