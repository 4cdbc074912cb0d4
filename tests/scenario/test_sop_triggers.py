"""SOP triggers and exits from tags and deletions (the singleton scans), and content drops."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from guidebot.db.models import InboxItem
from guidebot.db.repo import sop_plan
from guidebot.events import TagsMarked, decode_internal
from tests.support.stack import Stack
from tests.support.wecom import contact_event_xml


async def _customer(stack: Stack, guide: str, store: str, name: str) -> str:
    status, code = await stack.admin("/channels", method="POST", json={
        "guide": guide, "store": store, "tags": ["门店扫码"]})
    assert status == 201, code
    added = await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"],
                                                     name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _enrollment(stack: Stack, sop_id: str, customer: str, guide: str) -> object:
    async with stack.runtime.services.db.read() as s:
        return await sop_plan.find_enrollment(s, tenant="acme", sop_id=sop_id,
                                              external_userid=customer, guide=guide)


async def test_tag_added_enrolls_and_another_tag_exits(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "S01", "吴昊")
    sop = stack.runtime.services.sop
    await sop.singletons("acme")  # a first pass: nothing tagged yet
    assert await _enrollment(stack, "dormant_winback", customer, "lina") is None
    status, _ = await stack.admin(f"/customers/{customer}/tags", method="POST",
                                  json={"guide": "lina", "add": ["沉睡客"]})
    assert status == 200
    assert await sop.singletons("acme") is True
    enrollment = await _enrollment(stack, "dormant_winback", customer, "lina")
    assert enrollment is not None and enrollment.status == "active"  # type: ignore[attr-defined]

    status, _ = await stack.admin(f"/customers/{customer}/tags", method="POST",
                                  json={"guide": "lina", "add": ["复购客"]})
    assert status == 200
    await sop.singletons("acme")
    enrollment = await _enrollment(stack, "dormant_winback", customer, "lina")
    assert enrollment.status == "exited"  # type: ignore[attr-defined]
    assert enrollment.reason == "tag_added:复购客"  # type: ignore[attr-defined]


async def _tags_marked(stack: Stack) -> list[tuple[TagsMarked, str | None]]:
    async with stack.runtime.services.db.read() as s:
        rows = list((await s.execute(select(InboxItem))).scalars())
    found = []
    for row in rows:
        if row.payload.startswith('{"internal":') \
                and json.loads(row.payload)["internal"] == "TagsMarked":
            event = decode_internal(row.payload)
            assert isinstance(event, TagsMarked)
            found.append((event, row.outcome))
    return found


async def test_an_api_tag_edit_is_an_inbox_event_handled_at_once_and_once(stack: Stack) -> None:
    """A tag guidebot marks raises no WeCom callback: the mirror's commit stages an internal
    TagsMarked event, which the inbox processor hands to the SOP triggers without waiting
    for the tag scan; the mark run again (an outbox retry) stages nothing new."""
    customer = await _customer(stack, "lina", "S01", "周密")
    before = len(await _tags_marked(stack))  # the channel code's own tag (门店扫码)
    status, _ = await stack.admin(f"/customers/{customer}/tags", method="POST",
                                  json={"guide": "lina", "add": ["沉睡客"]})
    assert status == 200
    await stack.runtime.drain()  # no sop.singletons(): the scan does not run
    enrollment = await _enrollment(stack, "dormant_winback", customer, "lina")
    assert enrollment is not None and enrollment.status == "active"  # type: ignore[attr-defined]
    marked = await _tags_marked(stack)
    assert len(marked) == before + 1
    event, outcome = marked[-1]
    assert (event.external_userid, event.guide, event.tags) == (customer, "lina", ("沉睡客",))
    assert outcome == "on_tags_marked"  # the handler that took it

    tags = stack.runtime.services.tags
    call = tags.executors()["mark_tag"]
    tag_id = (await tags.resolve("acme", ["沉睡客"]))[0]
    payload = {"userid": "lina", "external_userid": customer, "add_tag": [tag_id],
               "remove_tag": [], "ref": event.ref}
    await call("acme", payload)  # the same mark again, as a retry would
    await stack.runtime.drain()
    assert len(await _tags_marked(stack)) == before + 1


async def test_customer_deleting_the_guide_exits_and_cancels(stack: Stack) -> None:
    customer = await _customer(stack, "wangfang", "S01", "郑佳怡")
    sop = stack.runtime.services.sop
    trigger = datetime.now(UTC)
    sop.clock = lambda: trigger + timedelta(days=1, hours=12)
    await sop.plan("acme")  # day 1's step is materialised (planned or due)
    xml = contact_event_xml("del_follow_user", corp_id=stack.tenant().corp_id,
                            guide="wangfang", external_userid=customer,
                            create_time=int(trigger.timestamp()) + 60)
    assert await stack.post_callback(xml) == 200
    await stack.runtime.drain()
    await sop.singletons("acme")
    enrollment = await _enrollment(stack, "new_customer_nurture", customer, "wangfang")
    assert enrollment.status == "exited"  # type: ignore[attr-defined]
    assert enrollment.reason == "contact_deleted"  # type: ignore[attr-defined]
    await sop.tick("acme")
    assert stack.calls("externalcontact/add_msg_template") == []
    async with stack.runtime.services.db.read() as s:
        steps = await sop_plan.customer_steps(s, tenant="acme", external_userid=customer)
    assert [st.status for st in steps] == ["sent", "cancelled"]


async def test_content_drops_fire_once_per_guide(stack: Stack) -> None:
    lina = await _customer(stack, "lina", "S01", "张晓雨")
    zhaolei = await _customer(stack, "zhaolei", "S02", "周婷")
    sop = stack.runtime.services.sop
    # double12_warmup: at 2026-12-10T10:00+08:00, stores S01 and S02
    sop.clock = lambda: datetime(2026, 12, 10, 2, 30, tzinfo=UTC)
    await sop.singletons("acme")
    await sop.singletons("acme")
    await sop.tick("acme")
    sends = [c for c in stack.calls("externalcontact/add_msg_template")
             if "双12" in c["body"]["text"]["content"]]  # (新客培育 steps are due too by now)
    assert sorted((c["body"]["sender"], tuple(c["body"]["external_userid"])) for c in sends) \
        == [("lina", (lina,)), ("zhaolei", (zhaolei,))]
    # weekly_new_arrivals: cron "0 10 * * 5"; first seen Thursday, fires Friday 10:00 once
    sop.clock = lambda: datetime(2026, 12, 10, 3, 0, tzinfo=UTC)  # Thursday 11:00
    await sop.singletons("acme")
    assert stack.calls("externalcontact/add_moment_task") == []
    sop.clock = lambda: datetime(2026, 12, 11, 2, 5, tzinfo=UTC)  # Friday 10:05
    await sop.singletons("acme")
    await sop.singletons("acme")
    await sop.tick("acme")
    moments = stack.calls("externalcontact/add_moment_task")
    assert sorted(c["body"]["visible_range"]["sender_list"]["user_list"][0] for c in moments) \
        == ["lina", "zhaolei"]
    _, body = await stack.admin("/tasks?status=sent")
    assert {t["source"] for t in body["tasks"]} >= {"drop:double12_warmup",
                                                     "drop:weekly_new_arrivals"}
