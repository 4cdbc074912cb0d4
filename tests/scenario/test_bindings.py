"""Exclusive-guide binding (DESIGN §5.4) driven by real callbacks at their CreateTime."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.stack import Stack
from tests.support.wecom import contact_event_xml

DAY = 86_400


async def _event(stack: Stack, change_type: str, guide: str, customer: str, at: int,
                 **extra: str) -> None:
    xml = contact_event_xml(change_type, corp_id=stack.tenant().corp_id, guide=guide,
                            external_userid=customer, create_time=at, **extra)
    assert await stack.post_callback(xml) == 200
    await stack.runtime.drain()


async def _exclusive(stack: Stack, customer: str) -> str | None:
    status, view = await stack.admin(f"/customers/{customer}")
    assert status == 200, view
    return view["exclusive_guide"]


@pytest.mark.parametrize(("first_add_days_ago", "expected"), [
    (29, "lina"),        # inside the 30-day protection: the first guide keeps the customer
    (30, "wangfang"),    # exactly 30 days: protection is over
    (31, "wangfang"),
])
async def test_second_guide_takes_over_only_after_protection(
        stack: Stack, first_add_days_ago: int, expected: str) -> None:
    now = int(time.time())
    await _event(stack, "add_external_contact", "lina", "wmBIND1", now - first_add_days_ago * DAY)
    await _event(stack, "add_external_contact", "wangfang", "wmBIND1", now)
    assert await _exclusive(stack, "wmBIND1") == expected


async def test_customer_deleting_the_guide_ends_the_binding(stack: Stack) -> None:
    now = int(time.time())
    await _event(stack, "add_external_contact", "lina", "wmBIND2", now - 10 * DAY)
    await _event(stack, "del_follow_user", "lina", "wmBIND2", now - 5 * DAY)
    assert await _exclusive(stack, "wmBIND2") is None
    await _event(stack, "add_external_contact", "wangfang", "wmBIND2", now - DAY)
    assert await _exclusive(stack, "wmBIND2") == "wangfang"
    _, view = await stack.admin("/customers/wmBIND2")
    statuses = {g["userid"]: g["status"] for g in view["guides"]}
    assert statuses == {"lina": "deleted_by_customer", "wangfang": "active"}


async def test_completed_transfer_moves_the_binding(stack: Stack) -> None:
    now = int(time.time())
    await _event(stack, "add_external_contact", "lina", "wmBIND3", now - 10 * DAY)
    await _event(stack, "add_external_contact", "zhaolei", "wmBIND3", now - 3600)
    assert await _exclusive(stack, "wmBIND3") == "lina"
    await _event(stack, "del_external_contact", "lina", "wmBIND3", now - 60,
                 Source="DELETE_BY_TRANSFER")
    assert await _exclusive(stack, "wmBIND3") == "zhaolei"
    _, view = await stack.admin("/customers/wmBIND3")
    assert {g["userid"]: g["status"] for g in view["guides"]}["lina"] == "transferred"


async def test_transfer_before_takeover_add_moves_binding_on_the_add(stack: Stack) -> None:
    now = int(time.time())
    await _event(stack, "add_external_contact", "lina", "wmBIND4", now - 3 * DAY)
    await _event(stack, "del_external_contact", "lina", "wmBIND4", now - 120,
                 Source="DELETE_BY_TRANSFER")
    await _event(stack, "add_external_contact", "chenjing", "wmBIND4", now - 60)
    assert await _exclusive(stack, "wmBIND4") == "chenjing"


async def test_guide_deleting_the_customer_keeps_history(stack: Stack) -> None:
    now = int(time.time())
    await _event(stack, "add_external_contact", "lina", "wmBIND5", now - DAY)
    await _event(stack, "del_external_contact", "lina", "wmBIND5", now - 60)
    _, view = await stack.admin("/customers/wmBIND5")
    assert [(g["userid"], g["status"]) for g in view["guides"]] == [
        ("lina", "deleted_by_guide")]
    assert view["guides"][0]["ended_at"] is not None


async def test_a_burst_of_adds_records_each_binding_as_one_at_a_time_would(stack: Stack) -> None:
    """Adds arriving together are recorded in shared transactions: the binding rules still
    see each customer's earlier adds, including ones in the same burst."""
    now = int(time.time())
    xmls = []
    for i in range(40):
        customer = f"wmBURST{i:02d}"
        # every customer adds lina a day ago and wangfang now (inside the protection)
        xmls.append(contact_event_xml("add_external_contact", corp_id=stack.tenant().corp_id,
                                      guide="lina", external_userid=customer,
                                      create_time=now - DAY))
        xmls.append(contact_event_xml("add_external_contact", corp_id=stack.tenant().corp_id,
                                      guide="wangfang", external_userid=customer,
                                      create_time=now))
    assert await asyncio.gather(*(stack.post_callback(x) for x in xmls)) == [200] * len(xmls)
    await stack.runtime.drain()
    for i in range(40):
        customer = f"wmBURST{i:02d}"
        assert await _exclusive(stack, customer) == "lina", customer
        _, view = await stack.admin(f"/customers/{customer}")
        assert {g["userid"]: g["status"] for g in view["guides"]} == {
            "lina": "active", "wangfang": "active"}
