"""Tags a guide sets in the WeCom client: edit_external_contact carries no tag detail, so
guidebot reads the relation back, reconciles its tag mirror, and SOP triggers and exits see it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from guidebot.db.repo import sop_plan
from tests.support.stack import Stack


async def _edit_in_client(stack: Stack, customer: str, **change: list[str]) -> dict[str, Any]:
    # Two edits of one relation in one second are one payload, which the inbox dedupes
    # (FACTS §1.5); a person editing tags is slower than that, the test is not.
    stack.sandbox.advance_clock(1)
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/simulate/edit_tags",
                               json={"userid": "lina", "external_userid": customer,
                                     **change}) as resp:
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
    assert answer["delivery"]["status"] == 200  # the encrypted callback reached guidebot
    await stack.runtime.drain()
    return dict(answer)


async def _tags(stack: Stack, customer: str) -> list[str]:
    status, body = await stack.admin(f"/customers/{customer}")
    assert status == 200, body
    return list(body["tags"])


async def test_client_tags_enroll_through_tag_added_and_exit_an_sop(stack: Stack) -> None:
    # Added without a channel code, so 新客培育 (state_prefix "gb") does not enroll: its
    # "day 1 at 10:00" step would take the customer's 1/day quota on the day 沉睡唤醒's "+1d"
    # lands whenever the add falls in Shanghai daytime, and 沉睡唤醒 skips on quota.
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="吴昊")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    services = stack.runtime.services
    async with services.db.read() as s:
        others = [st.sop_id for st in await sop_plan.customer_steps(s, tenant="acme",
                                                                    external_userid=customer)]
    assert others == []
    await services.tags.sync("acme")  # the library as at start (tags.toml created)
    sop = services.sop
    await sop.singletons("acme")  # a first pass: nothing tagged yet

    await _edit_in_client(stack, customer, add=["沉睡客"])
    assert await _tags(stack, customer) == ["沉睡客"]
    await sop.singletons("acme")
    async with services.db.read() as s:
        enrollment = await sop_plan.find_enrollment(s, tenant="acme", sop_id="dormant_winback",
                                                    external_userid=customer, guide="lina")
    assert enrollment is not None and enrollment.status == "active"
    assert enrollment.id is not None
    # +1d, moved out of quiet hours by up to 12 h
    sop.clock = lambda: datetime.now(UTC) + timedelta(days=1, hours=13)
    await sop.plan("acme")  # the first 沉睡唤醒 step is materialised, not sent
    async with services.db.read() as s:
        steps = [st for st in await sop_plan.customer_steps(s, tenant="acme",
                                                             external_userid=customer)
                 if st.enrollment_id == enrollment.id]
    assert [st.status for st in steps] in (["planned"], ["queued"])

    await _edit_in_client(stack, customer, add=["复购客"])  # named in the SOP's exit
    assert await _tags(stack, customer) == ["复购客", "沉睡客"]
    await sop.singletons("acme")
    async with services.db.read() as s:
        ended = await sop_plan.get_enrollment(s, enrollment_id=enrollment.id)
        steps = [st for st in await sop_plan.customer_steps(s, tenant="acme",
                                                             external_userid=customer)
                 if st.enrollment_id == enrollment.id]
    assert ended is not None and (ended.status, ended.reason) == ("exited", "tag_added:复购客")
    assert [st.status for st in steps] == ["cancelled"]
    await sop.tick("acme")
    sends = stack.calls("externalcontact/add_msg_template")
    assert not any("好久不见" in c["body"].get("text", {}).get("content", "") for c in sends)

    await _edit_in_client(stack, customer, remove=["沉睡客"])
    assert await _tags(stack, customer) == ["复购客"]
    marks = stack.calls("externalcontact/mark_tag")
    assert [c for c in marks if c["body"]["external_userid"] == customer] == []  # read back,
    # never written again through the API; one externalcontact/get at the add, one per edit
    assert len(stack.calls("externalcontact/get")) == 4


async def test_an_edit_for_a_relation_wecom_no_longer_has_changes_nothing(stack: Stack) -> None:
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="郑佳怡")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_contact", "ChangeType": "del_external_contact",
        "UserID": "lina", "ExternalUserID": customer})
    await stack.runtime.drain()
    answer = await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_contact", "ChangeType": "edit_external_contact",
        "UserID": "lina", "ExternalUserID": customer})
    assert answer["delivery"]["status"] == 200
    await stack.runtime.drain()
    rows = [r for r in await stack.inbox_rows() if "edit_external_contact" in r.payload]
    assert [(r.outcome, r.last_error) for r in rows] == [("on_contact_edited", "")]
    assert await _tags(stack, customer) == []


async def _edit_unheard(stack: Stack, customer: str, **change: list[str]) -> None:
    """A client edit whose edit_external_contact never reaches guidebot."""
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/simulate/edit_tags",
                               json={"userid": "lina", "external_userid": customer,
                                     "deliver": False, **change}) as resp:
        assert resp.status == 200, await resp.text()


async def test_the_daily_sweep_makes_up_client_edits_whose_callback_was_lost(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from guidebot.contacts import tags as tags_module

    monkeypatch.setattr(tags_module, "SWEEP_PAGE", 2)  # three relations: two pages
    customers = []
    for name in ("冯佳", "韩雪", "邓琳"):
        added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name=name)
        customers.append(str(added["external_userid"]))
    await stack.runtime.drain()
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/seed", json={"follows": [
            {"userid": "lina", "external_userid": "wmONLYWECOM01"}]}) as resp:
        assert resp.status == 200  # a relation guidebot never heard of
    services = stack.runtime.services
    await services.tags.sync("acme")
    await services.sop.singletons("acme")  # a first pass: nothing tagged yet
    last = customers[-1]  # on the second page

    await _edit_unheard(stack, last, add=["沉睡客"])
    assert await _tags(stack, last) == []  # the mirror never heard of it
    assert await services.tags.sweep("acme") == 1
    assert await _tags(stack, last) == ["沉睡客"]
    assert [len(c["body"]["userid_list"]) for c in
            stack.calls("externalcontact/batch/get_by_user")] == [1, 1]  # two pages
    await services.sop.singletons("acme")
    async with services.db.read() as s:
        enrollment = await sop_plan.find_enrollment(s, tenant="acme", sop_id="dormant_winback",
                                                    external_userid=last, guide="lina")
    assert enrollment is not None and enrollment.status == "active"

    assert await services.tags.sweep("acme") == 0  # nothing left to change
    await _edit_unheard(stack, last, remove=["沉睡客"])
    assert await services.tags.sweep("acme") == 1
    assert await _tags(stack, last) == []
    assert [await _tags(stack, c) for c in customers[:2]] == [[], []]
    status, _ = await stack.admin("/customers/wmONLYWECOM01")
    assert status == 404  # left alone


async def test_the_sweep_runs_once_a_day_whatever_the_restarts(stack: Stack) -> None:
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="冯佳")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    tags = stack.runtime.services.tags
    await tags.sync("acme")
    start = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
    assert await tags.sweep_if_due("acme", now=start) == 0  # never swept: due
    await _edit_unheard(stack, customer, add=["沉睡客"])
    # the hourly job, in this process or a restarted one: the day is not over
    assert await tags.sweep_if_due("acme", now=start + timedelta(hours=23)) is None
    assert await _tags(stack, customer) == []
    assert await tags.sweep_if_due("acme", now=start + timedelta(hours=24)) == 1
    assert await _tags(stack, customer) == ["沉睡客"]
    assert len(stack.calls("externalcontact/batch/get_by_user")) == 2
