"""The page a guide's task card opens: the textcard's url is a signed link to the task, over
HTTP; it shows the 群发 task a notification is about (text, customers, confirmation) or a
reminder's text and customers; any other link answers 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from tests.support.stack import Stack

NOON = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: no quiet hours near


async def _enroll(stack: Stack, sop_id: str, guide: str, name: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name)
    await stack.runtime.drain()
    stack.runtime.services.sop.clock = lambda: NOON
    status, body = await stack.admin(f"/sops/{sop_id}/enroll", method="POST", json={
        "external_userid": added["external_userid"], "guide": guide})
    assert status == 201, body
    return str(added["external_userid"])


def _card_links(stack: Stack) -> list[str]:
    cards = [c["body"]["textcard"] for c in stack.calls("message/send")
             if c["body"].get("msgtype") == "textcard"]
    return [urlsplit(c["url"]).path + "?" + urlsplit(c["url"]).query for c in cards]


async def _get(stack: Stack, link: str) -> tuple[int, str]:
    async with stack.http.get(f"{stack.bot_url}{link}") as resp:
        return resp.status, await resp.text()


async def test_a_notification_opens_its_mass_send_with_text_count_and_confirmation(
        flash_stack: Stack) -> None:
    stack = flash_stack
    customer = await _enroll(stack, "flash", "lina", "陈思")
    sop = stack.runtime.services.sop
    sop.clock = lambda: NOON + timedelta(minutes=2)
    await sop.tick("acme")
    await sop.tick("acme")
    [link] = _card_links(stack)  # the notification of flash step 1's 群发 task
    assert link.startswith("/g/acme/tasks/") and "sig=" in link
    status, html = await _get(stack, link)
    assert status == 200
    assert "闪购提醒" in html  # the SOP's title
    assert "双12预热开始啦" in html  # the 群发 text as sent, rendered for the guide
    assert "发给 1 位客户" in html and "待确认" in html and "群发助手" in html

    [send] = stack.calls("externalcontact/add_msg_template")
    _, body = await stack.admin("/tasks?guide=lina&status=sent")
    [task] = [t for t in body["tasks"] if t["kind"] == "guide_task"]
    stack.sandbox.confirm_groupmsg("acme", task["msgid"], "lina")
    sop.clock = lambda: NOON + timedelta(hours=1)
    await sop.track("acme")
    status, html = await _get(stack, link)
    assert status == 200 and "已确认" in html and "已有 1 位客户收到" in html
    assert send["body"]["external_userid"] == [customer]


async def test_a_reminder_opens_its_text_and_customers_escaped(stack: Stack) -> None:
    await _enroll(stack, "repurchase_care", "chenjing", "<b>周婷</b>")
    sop = stack.runtime.services.sop
    sop.clock = lambda: NOON + timedelta(hours=2, minutes=1)
    await sop.tick("acme")
    [link] = _card_links(stack)
    status, html = await _get(stack, link)
    assert status == 200
    assert "复购关怀" in html and "跟进提醒" in html and "请发一句私人感谢" in html
    assert "&lt;b&gt;周婷&lt;/b&gt;" in html and "<b>周婷</b>" not in html


async def test_any_other_link_is_not_found(flash_stack: Stack) -> None:
    stack = flash_stack
    await _enroll(stack, "flash", "lina", "陈思")
    sop = stack.runtime.services.sop
    sop.clock = lambda: NOON + timedelta(minutes=2)
    await sop.tick("acme")
    await sop.tick("acme")
    [link] = _card_links(stack)
    path, sig = link.split("?sig=")
    task_id = int(path.rsplit("/", 1)[1])
    assert (await _get(stack, link))[0] == 200
    for wrong in (path, f"{path}?sig=", f"{path}?sig={'0' * len(sig)}",
                  f"/g/acme/tasks/{task_id + 1}?sig={sig}",  # another task, this signature
                  f"/g/beta/tasks/{task_id}?sig={sig}",  # another tenant
                  f"/g/nope/tasks/{task_id}?sig={sig}", f"/g/acme/tasks/x{task_id}?sig={sig}"):
        assert (await _get(stack, wrong))[0] == 404, wrong
