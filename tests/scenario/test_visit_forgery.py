"""Money-safe touches: a visit beacon moves commission only when the store backend signed the
visitor's identity; anything else is an anonymous click."""

from __future__ import annotations

import time

from guidebot.commerce.links import sign_visit
from tests.scenario.test_orders_attribution import _event, _link
from tests.support.commerce import paid, post_settled, signed_visit
from tests.support.stack import Stack


async def _bind(stack: Stack, guide: str, customer: str) -> None:
    await _event(stack, "add_external_contact", guide, customer, int(time.time()) - 86_400)


async def _visit(stack: Stack, token: str, query: dict[str, str]) -> None:
    async with stack.http.get(f"{stack.bot_url}/t/{token}", params=query) as resp:
        assert resp.status == 204  # the beacon never tells a forger what happened


async def _kinds(stack: Stack, token: str) -> list[tuple[str, str | None]]:
    from sqlalchemy import select

    from guidebot.db.models_commerce import Touch

    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(Touch).where(Touch.token == token)
                                .order_by(Touch.id))).scalars()  # type: ignore[arg-type]
        return [(t.kind, t.external_userid) for t in rows]


async def test_beacon_forgery_cannot_change_an_orders_guide(stack: Stack) -> None:
    await _bind(stack, "lina", "wmBOUND")
    mine, theirs = await _link(stack, "zhaolei"), await _link(stack, "lina")
    now = str(int(time.time()))
    forgeries = [
        {"external_userid": "wmBOUND"},  # the attack as reported: no signature at all
        {"external_userid": "wmBOUND", "ts": now,
         "sig": sign_visit("guessed-secret", mine, {"external_userid": "wmBOUND", "ts": now})},
        {"external_userid": "wmBOUND", "ts": now,  # a real signature, for lina's card
         "sig": signed_visit(stack, theirs, external_userid="wmBOUND", ts=now)["sig"]},
        signed_visit(stack, mine, external_userid="wmBOUND",
                     ts=str(int(time.time()) - 3600)),  # signed an hour ago: replayed
        {**signed_visit(stack, mine, external_userid="wmOTHER"),
         "external_userid": "wmBOUND"},  # a signed visit with the customer swapped
    ]
    for query in forgeries:
        await _visit(stack, mine, query)
    status, body = await post_settled(stack, paid("O-FORGED-VISIT", customer="wmBOUND"))
    assert (status, body["rule"], body["guide"]) == (200, "exclusive_guide", "lina")
    assert await _kinds(stack, mine) == [("click", None)] * len(forgeries)

    await _visit(stack, mine, signed_visit(stack, mine, external_userid="wmBOUND"))
    status, body = await post_settled(stack, paid("O-SIGNED-VISIT", customer="wmBOUND"))
    assert (body["rule"], body["guide"]) == ("share_link", "zhaolei")  # the control


async def test_the_orders_own_tracking_token_outranks_a_signed_visit(stack: Stack) -> None:
    await _bind(stack, "lina", "wmTRACK")
    visited, ordered = await _link(stack, "zhaolei"), await _link(stack, "wangfang")
    await _visit(stack, visited, signed_visit(stack, visited, external_userid="wmTRACK"))
    status, body = await post_settled(stack, paid("O-OWN-TOKEN", customer="wmTRACK",
                                                  tracking=ordered))
    assert (body["rule"], body["guide"]) == ("share_link", "wangfang")
