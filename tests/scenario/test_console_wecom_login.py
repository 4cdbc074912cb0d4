"""企业微信登录 over HTTP against the sandbox's OAuth: a member signs in as themselves and their
changes are logged under their userid; a viewer sees pages but every form is refused (403,
nothing changed, nothing logged as a success); a userid not listed and a reused code sign
nobody in; the token sign-in keeps working."""

from __future__ import annotations

from typing import Any

import pytest

from guidebot.web.pages.console import catalog
from guidebot.web.pages.console_auth import COOKIE
from tests.support.audit import (
    entries,
    start_team,
    start_wecom,
    wecom_callback,
    wecom_sign_in,
)
from tests.support.console import Console, csrf_in
from tests.support.sidebar import OAUTH_AUTHORIZE, oauth_code
from tests.support.stack import Stack

SOP = "repurchase_care"
ZH = catalog("zh-CN")


@pytest.fixture
async def team(aiohttp_server: Any, tmp_path: Any, db_url: str) -> Any:
    s = await start_team(aiohttp_server, tmp_path, db_url)
    yield s
    await s.http.close()


def _signed_in(console: Console) -> bool:
    return COOKIE in {c.key for c in console.http.cookie_jar}


async def _sop(stack: Stack) -> dict[str, Any]:
    _, body = await stack.admin("/sops")
    return dict(next(s for s in body["sops"] if s["id"] == SOP))


async def test_the_console_sends_wecom_members_through_oauth(team: Stack) -> None:
    console = Console(team)
    try:
        status, html, _ = await console.get("/console/login")
        assert status == 200 and 'action="/console/login/wecom"' in html
        assert ZH["login.wecom"] in html
        status, _, resp = await console.get("/console/login/wecom?tenant=acme")
        location = resp.headers["Location"]
        assert status == 302 and location.startswith(OAUTH_AUTHORIZE + "?")
        assert location.endswith("#wechat_redirect")
        query = await start_wecom(console)
        tenant = team.tenant()
        assert query["appid"] == tenant.corp_id and query["agentid"] == str(tenant.agent_id)
        assert query["scope"] == "snsapi_base" and query["response_type"] == "code"
        assert query["redirect_uri"] == (f"{team.settings.server.public_url}"
                                         "/console/login/wecom?tenant=acme")
        assert (await console.get("/console/login/wecom?tenant=nosuch"))[0] == 404
    finally:
        await console.close()


async def test_a_member_signs_in_and_their_change_is_logged_under_their_userid(
        team: Stack) -> None:
    name = (await team.runtime.services.stats.records.guide_names("acme"))["lina"]
    assert name == "李娜"
    lina = await wecom_sign_in(team, "lina")
    try:
        status, html, _ = await lina.get(f"/console/acme/sops/{SOP}")
        assert status == 200 and f'data-role="member">{name}' in html
        status, _, _ = await lina.post(f"/console/acme/sops/{SOP}/switch",
                                       {"enabled": "0", "_csrf": csrf_in(html)})
        assert status == 303
        assert (await _sop(team))["switched_off"] is True
        listed = [(e["actor"], e["action"], e["params"], e["status"])
                  for e in reversed(await entries(team))]
        assert listed == [
            ("lina", "sign_in", {"method": "wecom", "role": "member"}, 303),
            ("lina", "POST /console/{tenant}/sops/{sop_id}/switch", {"sop_id": SOP}, 303)]
        status, html, _ = await lina.get("/console/acme/audit?actor=lina")
        assert status == 200 and html.count('<tr data-actor="lina"') == 2
        assert f"{name} <small>lina</small>" in html
        status, page, _ = await lina.get("/console/acme/")
        status, _, _ = await lina.post("/console/logout",
                                       {"tenant": "acme", "_csrf": csrf_in(page)})
        assert status == 303
        assert (await entries(team))[0]["action"] == "sign_out"
        assert (await entries(team))[0]["actor"] == "lina"
    finally:
        await lina.close()


async def test_a_viewer_reads_pages_and_every_form_is_refused(team: Stack) -> None:
    viewer = await wecom_sign_in(team, "wangfang")
    try:
        for path in ("/", f"/sops/{SOP}", "/tags", "/audit"):
            status, html, _ = await viewer.get(f"/console/acme{path}")
            assert status == 200, path
        assert 'data-role="viewer"' in html and ZH["login.viewer"] in html
        csrf = csrf_in(html)
        for path, form in ((f"/sops/{SOP}/switch", {"enabled": "0"}),
                           ("/tags", {"group_name": "只读组", "names": "只读标签"})):
            status, html, _ = await viewer.post(f"/console/acme{path}", {**form, "_csrf": csrf})
            assert status == 403 and ZH["err.viewer"] in html, path
        assert (await _sop(team))["switched_off"] is False
        # 查阅复制 hands personal data out: a member's act, not a viewer's
        await team.sandbox.simulate_add_contact("acme", userid="lina",
                                                external_userid="wmVIEWED", name="只读可见")
        await team.runtime.drain()
        status, html, _ = await viewer.get("/console/acme/customers/wmVIEWED")
        assert status == 200 and "只读可见" in html
        status, html, _ = await viewer.post("/console/acme/customers/wmVIEWED/personal-data",
                                            {"_csrf": csrf_in(html)})
        assert status == 403 and ZH["err.viewer"] in html and "只读可见" not in html
        assert [c for c in team.calls("externalcontact/add_corp_tag")
                if c["body"].get("group_name") == "只读组"] == []
        assert [e["action"] for e in await entries(team)] == ["sign_in"]
    finally:
        await viewer.close()


async def test_a_userid_not_listed_and_a_reused_code_sign_nobody_in(team: Stack) -> None:
    stranger = Console(team)
    again = Console(team)
    try:
        state = (await start_wecom(stranger))["state"]
        status, html, _ = await wecom_callback(stranger, state,
                                               await oauth_code(team, "chenjing"))
        assert status == 403 and ZH["login.wecom_not_listed"] in html
        assert not _signed_in(stranger)
        assert (await stranger.get("/console/acme/"))[0] == 303  # to the sign-in page
        code = await oauth_code(team, "lina")
        state = (await start_wecom(again))["state"]
        assert (await wecom_callback(again, state, code))[0] == 303
        again.http.cookie_jar.clear()
        state = (await start_wecom(again))["state"]
        status, html, _ = await wecom_callback(again, state, code)
        assert status == 403 and ZH["login.wecom_code"] in html and not _signed_in(again)
        state = (await start_wecom(again))["state"]
        status, html, _ = await wecom_callback(again, "0" * 32, await oauth_code(team, "lina"))
        assert status == 403 and ZH["login.wecom_state"] in html and not _signed_in(again)
        # a state this browser was not given (any page can make a browser send one) is not
        # a sign-in attempt: neither recorded nor counted against the address
        for _ in range(team.settings.server.signin_failures):
            status, _, _ = await wecom_callback(again, "0" * 32, "forged")
            assert status == 403
        state = (await start_wecom(again))["state"]
        assert (await wecom_callback(again, state, await oauth_code(team, "lina")))[0] == 303
        listed = [(e["actor"], e["action"], e["params"].get("why"), e["status"])
                  for e in reversed(await entries(team))]
        assert listed == [("chenjing", "sign_in_refused", "not_listed", 403),
                          ("lina", "sign_in", None, 303),
                          ("", "sign_in_refused", "code", 403),
                          ("lina", "sign_in", None, 303)]
    finally:
        await stranger.close()
        await again.close()


async def test_the_token_sign_in_keeps_full_access_and_a_wrong_token_is_logged(
        team: Stack) -> None:
    console = Console(team)
    try:
        assert (await console.login("acme", "wrong-token")).status == 401
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get(f"/console/acme/sops/{SOP}")
        assert status == 200 and f'data-role="member">{ZH["audit.token_actor"]}' in html
        status, _, _ = await console.post(f"/console/acme/sops/{SOP}/switch",
                                          {"enabled": "0", "_csrf": csrf_in(html)})
        assert status == 303 and (await _sop(team))["switched_off"] is True
        listed = [(e["actor"], e["action"], e["status"]) for e in reversed(await entries(team))]
        assert listed == [("admin token", "sign_in_refused", 401),
                          ("admin token", "sign_in", 303),
                          ("admin token", "POST /console/{tenant}/sops/{sop_id}/switch", 303)]
        assert "wrong-token" not in repr(await entries(team))
    finally:
        await console.close()
