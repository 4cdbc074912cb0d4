"""获客助手 over HTTP against the sandbox: the paid link quota read (on demand, and again when
WeCom's customer_acquisition callback says it runs low or out), shown on the console's
渠道活码 page and in the admin API with a warning when it is low or exhausted while the tenant
has link codes; a link's clicks and new customers from WeCom beside guidebot's adds through
it on the code's page, a WeCom refusal worded; links WeCom says are unavailable or deleted
marked."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from guidebot.contacts.acquisition import LOW_BALANCE, level_of
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, known

QUOTA = "externalcontact/customer_acquisition_quota"
STATISTIC = "externalcontact/customer_acquisition/statistic"


async def _link(stack: Stack, campaign: str = "抖音") -> dict[str, Any]:
    await known(stack, guides=("lina",))
    status, code = await stack.admin("/channels", method="POST", json={
        "guide": "lina", "kind": "link", "campaign": campaign})
    assert status == 201, code
    return code


async def _set_quota(stack: Stack, body: dict[str, Any]) -> None:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/acquisition/quota",
                               json=body) as answer:
        assert answer.status == 200, await answer.text()


async def _sandbox(stack: Stack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/{path}",
                               json=body) as answer:
        assert answer.status == 200, await answer.text()
        return dict(await answer.json())


async def _signed_in(stack: Stack) -> Console:
    console = Console(stack)
    assert (await console.login("acme", "acme-admin-token")).status == 303
    return console


def test_the_low_mark_is_ten_percent_of_the_total_or_fifty() -> None:
    assert level_of(1000, 101) == "ok" and level_of(1000, 100) == "low"
    assert level_of(200, LOW_BALANCE + 1) == "ok" and level_of(200, LOW_BALANCE) == "low"
    assert level_of(1000, 0) == "exhausted" and level_of(0, 0) == "exhausted"


async def test_the_quota_is_read_shown_and_warned_of(stack: Stack) -> None:
    code = await _link(stack)
    status, unread = await stack.admin("/channels/acquisition")
    assert status == 200 and (unread["level"], unread["links"]) == ("unread", 1), unread
    assert stack.calls(QUOTA) == []  # nothing read before it is asked for

    now = int(time.time())
    soon, later, past = now + 10 * 86400, now + 40 * 86400, now - 5 * 86400
    await _set_quota(stack, {"total": 1000, "balance": 600, "quota_list": [
        {"expire_date": past, "balance": 0}, {"expire_date": later, "balance": 500},
        {"expire_date": soon, "balance": 100}]})
    zone = stack.tenant().tz
    soon_day = datetime.fromtimestamp(soon, UTC).astimezone(zone).date().isoformat()
    console = await _signed_in(stack)
    try:
        status, html, _ = await console.get("/console/acme/channels")
        assert status == 200 and 'id="quota-unread"' in html
        status, _, resp = await console.post("/console/acme/channels/quota",
                                             {"_csrf": csrf_in(html)})
        assert status == 303, status
        assert len(stack.calls(QUOTA)) == 1
        status, html, _ = await console.get(resp.headers["Location"])
        assert status == 200 and "已从企业微信读取获客助手额度" in html
        assert 'data-col="balance">600 / 1000<' in html, html
        assert f'data-col="expiry">{soon_day}，届时到期 100<' in html
        assert 'id="quota-warning"' not in html

        _, read = await stack.admin("/channels/acquisition")
        assert (read["total"], read["balance"], read["level"], read["warning"]) == (
            1000, 600, "ok", None)
        assert read["next_expiry"]["day"] == soon_day
        assert [b["balance"] for b in read["quota_list"]] == [0, 100, 500]  # soonest first

        await _set_quota(stack, {"total": 1000, "balance": 100})
        status, low = await stack.admin("/channels/acquisition?refresh=true")
        assert status == 200 and (low["balance"], low["warning"]) == (100, "low"), low
        status, html, _ = await console.get("/console/acme/channels")
        warning = re.search(r'<p[^>]*id="quota-warning"[^>]*>(.*?)</p>', html, re.S)
        assert warning and 'data-warning="low"' in warning.group(0), html
        assert "即将用完：剩余 100 / 1000" in warning.group(1)

        # WeCom says the balance ran out: guidebot reads it again at once.
        await _set_quota(stack, {"total": 1000, "balance": 0, "quota_list": []})
        calls = len(stack.calls(QUOTA))
        sent = await _sandbox(stack, "simulate/acquisition_event",
                              {"change_type": "balance_exhausted"})
        assert sent["delivery"]["status"] == 200, sent
        await stack.runtime.drain()
        assert len(stack.calls(QUOTA)) == calls + 1
        _, out = await stack.admin("/channels/acquisition")
        assert (out["balance"], out["level"], out["warning"]) == (0, "exhausted", "exhausted")
        assert out["next_expiry"] is None
        status, html, _ = await console.get("/console/acme/channels?lang=en")
        warning = re.search(r'<p[^>]*id="quota-warning"[^>]*>(.*?)</p>', html, re.S)
        assert warning and "used up (0 of 1000 left)" in warning.group(1), html

        # balance_low: read again too; a refused read keeps the last reading, worded.
        await _set_quota(stack, {"total": 1000, "balance": 30})
        await _sandbox(stack, "simulate/acquisition_event", {"change_type": "balance_low"})
        await stack.runtime.drain()
        _, again = await stack.admin("/channels/acquisition")
        assert (again["balance"], again["warning"]) == (30, "low")
        async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
                "tenant": "acme", "path": QUOTA, "errcode": 40001, "times": 1}) as answer:
            assert answer.status == 200
        status, html, _ = await console.get("/console/acme/channels?lang=zh-CN")
        status, refused, _ = await console.post("/console/acme/channels/quota",
                                                {"_csrf": csrf_in(html)})
        assert status == 400 and "企业微信拒绝读取获客助手额度（错误码 40001）" in refused
        _, kept = await stack.admin("/channels/acquisition")
        assert kept["balance"] == 30 and kept["read_at"] == again["read_at"]

        # No link codes left: the reading is shown, without the warning.
        status, _ = await stack.admin(f"/channels/{code['id']}", method="DELETE")
        assert status == 200
        _, quiet = await stack.admin("/channels/acquisition")
        assert (quiet["level"], quiet["links"], quiet["warning"]) == ("low", 0, None)
        status, html, _ = await console.get("/console/acme/channels")
        assert 'id="quota-warning"' not in html and 'data-col="balance">30 / 1000<' in html
    finally:
        await console.close()


async def test_a_links_figures_stand_beside_guidebots_adds(stack: Stack) -> None:
    code = await _link(stack)
    qr = await _link(stack, campaign="门店")  # a second link: its adds are not counted here
    for name in ("王芳", "李雷"):
        await _sandbox(stack, "simulate/acquisition_add", {"url": code["qr_code"],
                                                           "name": name})
    await _sandbox(stack, "simulate/acquisition_add", {"url": qr["qr_code"]})
    await _sandbox(stack, "simulate/acquisition_click", {"url": code["qr_code"]})
    await stack.runtime.drain()
    console = await _signed_in(stack)
    try:
        status, html, _ = await console.get(f"/console/acme/channels/{code['id']}")
        assert status == 200, html
        figures = re.search(r'id="code-figures".*?</section>', html, re.S)
        assert figures, html
        assert 'data-col="adds">2<' in figures.group(0)
        assert 'data-col="clicks">3<' in figures.group(0)  # two adds and a click
        assert 'data-col="new_customers">2<' in figures.group(0)
        assert 'id="figures-refused"' not in figures.group(0)
        [asked] = [c["body"] for c in stack.calls(STATISTIC)]
        zone = stack.tenant().tz
        today = datetime.now(zone).date()
        start = datetime.combine(today - timedelta(days=29), datetime.min.time(), zone)
        assert asked["link_id"] == code["config_id"]
        assert asked["start_time"] == int(start.timestamp())
        assert asked["start_time"] < asked["end_time"] <= int(time.time())

        status, html, _ = await console.get(f"/console/acme/channels/{code['id']}"
                                            "?from=2020-01-01&to=2020-01-10")
        figures = re.search(r'id="code-figures".*?</section>', html, re.S)
        assert status == 200 and figures
        assert 'data-col="adds">0<' in figures.group(0)
        assert 'data-col="clicks">0<' in figures.group(0)

        # A range WeCom refuses (the sandbox: over 30 days): worded, guidebot's count kept.
        long_from = (today - timedelta(days=89)).isoformat()
        status, html, _ = await console.get(f"/console/acme/channels/{code['id']}"
                                            f"?from={long_from}&to={today.isoformat()}")
        figures = re.search(r'id="code-figures".*?</section>', html, re.S)
        assert status == 200 and figures, html
        assert 'data-col="adds">2<' in figures.group(0)
        assert 'data-col="clicks"' not in figures.group(0)
        assert "企业微信未返回此链接的统计（错误码 40058）" in figures.group(0)
        status, html, _ = await console.get(f"/console/acme/channels/{code['id']}"
                                            f"?from={long_from}&lang=en")
        assert status == 200 and "WeCom gave no figures for this link (errcode 40058)" in html
    finally:
        await console.close()


async def test_wecom_saying_a_link_stopped_or_was_deleted_marks_it(stack: Stack) -> None:
    code = await _link(stack)
    other = await _link(stack, campaign="门店")
    for change, extra in (("link_unavailable", {"link_id": code["config_id"]}),
                          ("delete_link", {"link_id": other["config_id"]}),
                          ("delete_link", {}),  # no link id: nothing to mark
                          ("customer_start_chat", {"link_id": code["config_id"],
                                                   "userid": "lina",
                                                   "external_userid": "wmSTARTED"}),
                          ("friend_request", {"link_id": code["config_id"]}),
                          ("no_such_change", {"link_id": code["config_id"]})):
        sent = await _sandbox(stack, "simulate/acquisition_event",
                              {"change_type": change, **extra})
        assert sent["delivery"]["status"] == 200, (change, sent)
    await stack.runtime.drain()
    _, listed = await stack.admin("/channels")
    marks = {c["id"]: c["wecom_status"] for c in listed["channels"]}
    assert marks == {code["id"]: "unavailable", other["id"]: "deleted"}
    outcomes = sorted(r.outcome for r in await stack.inbox_rows())
    assert outcomes.count("unhandled") == 1, outcomes  # the unknown change type only
    assert not [o for o in outcomes if "fail" in o], outcomes
    console = await _signed_in(stack)
    try:
        _, html, _ = await console.get("/console/acme/channels")
        row = re.search(rf'data-channel="{code["id"]}".*?</tr>', html, re.S)
        assert row and "企业微信：链接不可用" in row.group(0), html
        row = re.search(rf'data-channel="{other["id"]}".*?</tr>', html, re.S)
        assert row and "企业微信：链接已删除" in row.group(0)
        _, html, _ = await console.get(f"/console/acme/channels/{other['id']}")
        assert 'id="wecom-status" data-wecom="deleted"' in html
        assert stack.calls(STATISTIC) == []  # a link deleted in WeCom: no figures asked
    finally:
        await console.close()


async def test_the_daily_reading_is_for_tenants_with_links_once_a_day(stack: Stack) -> None:
    from guidebot.jobs import run_acquisition_quota

    services = stack.runtime.services
    await run_acquisition_quota(services, "acme")
    assert stack.calls(QUOTA) == []  # no link codes, never read: nothing to read
    await _link(stack)
    await run_acquisition_quota(services, "acme")
    assert len(stack.calls(QUOTA)) == 1
    await run_acquisition_quota(services, "acme")
    assert len(stack.calls(QUOTA)) == 1  # read today already
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    assert await services.acquisition.read_if_due("acme", now=later)
    assert len(stack.calls(QUOTA)) == 2
    _, read = await stack.admin("/channels/acquisition")
    assert (read["total"], read["balance"], read["level"]) == (1000, 1000, "ok")
