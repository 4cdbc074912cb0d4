"""换人不换码 for a 获客助手 link over HTTP against the sandbox: HQ changes the link's guides
(and so its name, the campaign) through the admin API or the console's code page; WeCom is
asked first with customer_acquisition/update_link (its body past link_id is assumed to be
create_link's link_name and range: tests/data/acquisition/update_link.json), the sandbox's
link names the new members and a customer adding through the same url is given to a new
guide; WeCom refusing (a member who left the corp) answers 502 and stores nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, known

UPDATE = "externalcontact/customer_acquisition/update_link"
FACTS = Path(__file__).parents[1] / "data" / "acquisition" / "update_link.json"


async def _create(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    status, code = await stack.admin("/channels", method="POST", json=body)
    assert status == 201, code
    return code


def _range(stack: Stack, link_id: str) -> list[str]:
    return list(stack.sandbox.tenant("acme").acquisition_links[link_id].user_list)


async def _listed(stack: Stack, code_id: int) -> dict[str, Any]:
    _, listed = await stack.admin("/channels")
    [code] = [c for c in listed["channels"] if c["id"] == code_id]
    return dict(code)


async def _a_member_left_unseen(stack: Stack, userid: str) -> None:
    """The address book says `userid` left, but guidebot was not told (no callback)."""
    await stack.sandbox.set_directory("acme", {
        "departments": [{"id": 1, "name": "acme", "parentid": 0}],
        "members": [{"userid": userid, "name": "离职", "department": [1], "status": 5}]},
        deliver=False)


async def _added_through(stack: Stack, url: str, name: str) -> tuple[str, dict[str, Any]]:
    added = await stack.sandbox.simulate_acquisition_add("acme", url, name=name)
    assert added["delivery"]["status"] == 200, added
    await stack.runtime.drain()
    status, customer = await stack.admin(f"/customers/{added['external_userid']}")
    assert status == 200, customer
    return str(added["userid"]), customer


async def test_the_api_changes_a_links_guides_and_name(stack: Stack) -> None:
    await known(stack, guides=("lina", "wang", "zhou"))
    link = await _create(stack, {"guides": ["lina", "wang"], "kind": "link",
                                 "campaign": "抖音"})
    assert _range(stack, link["config_id"]) == ["lina", "wang"]
    status, changed = await stack.admin(f"/channels/{link['id']}", method="PATCH",
                                        json={"guides": ["zhou"]})
    assert status == 200, changed
    assert (changed["guides"], changed["state"], changed["qr_code"]) == (
        ["zhou"], link["state"], link["qr_code"])  # the same link
    [asked] = stack.calls(UPDATE)
    # skip_verify rides along (自动通过好友: whether update_link resets it when left out is
    # not known)
    assert asked["body"] == {"link_id": link["config_id"], "link_name": "抖音",
                             "range": {"user_list": ["zhou"]}, "skip_verify": True}
    facts = json.loads(FACTS.read_text(encoding="utf-8"))
    assert set(asked["body"]) == {*facts["assumed"]["update_link_body"]}
    assert set(asked["body"]) - {"link_id"} <= set(facts["known"]["create_link"]["body"])
    assert _range(stack, link["config_id"]) == ["zhou"]

    guide, customer = await _added_through(stack, link["qr_code"], "王芳")
    assert guide == "zhou"
    assert customer["exclusive_guide"] == "zhou"
    assert customer["channel"] == {"store": None, "guide": "zhou", "campaign": "抖音"}

    status, renamed = await stack.admin(f"/channels/{link['id']}", method="PATCH",
                                        json={"campaign": "快手"})
    assert status == 200 and renamed["campaign"] == "快手", renamed
    assert stack.calls(UPDATE)[-1]["body"] == {
        "link_id": link["config_id"], "link_name": "快手", "range": {"user_list": ["zhou"]},
        "skip_verify": True}
    assert stack.sandbox.tenant("acme").acquisition_links[link["config_id"]].link_name == "快手"
    status, _ = await stack.admin(f"/channels/{link['id']}", method="PATCH",
                                  json={"welcome_message": "welcome_double11"})
    assert status == 200 and len(stack.calls(UPDATE)) == 2  # guidebot's own field only

    status, refused = await stack.admin(f"/channels/{link['id']}", method="PATCH",
                                        json={"daily_limit": 1, "backup_guides": ["lina"]})
    assert status == 400 and refused["field"] == "daily_limit", refused  # QR codes only
    assert len(stack.calls(UPDATE)) == 2


async def test_wecom_refusing_a_links_guides_stores_nothing(stack: Stack) -> None:
    await known(stack, guides=("lina", "wang"))
    link = await _create(stack, {"guide": "lina", "kind": "link", "campaign": "抖音"})
    await _a_member_left_unseen(stack, "gone")
    status, failed = await stack.admin(f"/channels/{link['id']}", method="PATCH",
                                       json={"guides": ["wang", "gone"], "campaign": "快手"})
    assert status == 502, failed
    assert [c["body"]["range"] for c in stack.calls(UPDATE)] == [
        {"user_list": ["wang", "gone"]}]
    now = await _listed(stack, link["id"])
    assert (now["guides"], now["campaign"]) == (["lina"], "抖音")  # nothing stored
    assert _range(stack, link["config_id"]) == ["lina"]
    _, guides = await stack.admin("/guides")
    assert "gone" not in {g["userid"] for g in guides["guides"]}
    guide, _ = await _added_through(stack, link["qr_code"], "李雷")
    assert guide == "lina"


async def test_the_console_changes_a_links_guides(stack: Stack) -> None:
    await known(stack, guides=("lina", "wang", "zhou", "gone"))
    link = await _create(stack, {"guides": ["lina", "wang"], "kind": "link"})
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get(f"/console/acme/channels/{link['id']}")
        assert status == 200 and 'id="edit-channel"' in html, html
        assert "不能修改导购" not in html and 'id="ed-limit"' not in html  # no limit for links
        form = {"_csrf": csrf_in(html), "guide": "zhou", "store": "", "campaign": "",
                "welcome": ""}
        status, _, resp = await console.post(f"/console/acme/channels/{link['id']}", form)
        assert status == 303, status
        status, html, _ = await console.get(resp.headers["Location"])
        assert "已保存修改" in html
        facts = re.search(r'data-col="guides">(.*?)</dd>', html, re.S)
        assert facts and "zhou" in facts.group(1) and "lina" not in facts.group(1)
        assert _range(stack, link["config_id"]) == ["zhou"]
        assert stack.calls(UPDATE)[-1]["body"]["link_name"] == "guidebot"  # no campaign

        await _a_member_left_unseen(stack, "gone")
        status, refused, _ = await console.post(f"/console/acme/channels/{link['id']}",
                                                {**form, "guide": "gone"})
        assert status == 400 and "40058" in refused, refused
        assert (await _listed(stack, link["id"]))["guides"] == ["zhou"]
        assert _range(stack, link["config_id"]) == ["zhou"]
    finally:
        await console.close()

    guide, customer = await _added_through(stack, link["qr_code"], "韩梅")
    assert guide == "zhou" and customer["exclusive_guide"] == "zhou"
