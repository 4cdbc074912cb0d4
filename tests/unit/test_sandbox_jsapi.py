"""The sandbox's JS-SDK emulation: ticket fetch limits, one-use OAuth codes, the signature
check the WeCom client makes on agentConfig."""

from __future__ import annotations

import pytest

from guidebot.sandbox.errors import RATE_LIMITED, ApiError
from guidebot.sandbox.jsapi import INVALID_CODE, INVALID_TICKET_TYPE, JsapiState
from guidebot.sidebar.tickets import signature


def test_ticket_fetches_are_limited_per_app_per_hour() -> None:
    state = JsapiState()
    tickets = {state.agent_ticket("agent_config", 1000.0 + i).ticket for i in range(100)}
    assert len(tickets) == 100
    with pytest.raises(ApiError) as caught:
        state.agent_ticket("agent_config", 1100.0)
    assert caught.value.errcode == RATE_LIMITED
    assert state.agent_ticket("agent_config", 1000.0 + 3600.5).ticket  # the first hour ended
    with pytest.raises(ApiError) as caught:
        state.agent_ticket("jsapi", 5000.0)
    assert caught.value.errcode == INVALID_TICKET_TYPE


def test_an_oauth_code_works_once_and_for_five_minutes() -> None:
    state = JsapiState()
    code = state.issue_code("lina", 0.0)
    assert state.redeem(code, 299.0) == "lina"
    late = state.issue_code("lina", 0.0)
    for used, at in ((code, 10.0), (late, 300.0), ("never-issued", 1.0)):
        with pytest.raises(ApiError) as caught:
            state.redeem(used, at)
        assert caught.value.errcode == INVALID_CODE


def test_the_client_check_accepts_live_tickets_only() -> None:
    state = JsapiState()
    ticket = state.agent_ticket("agent_config", 0.0).ticket
    url = "https://guide.example.com/sidebar/acme?x=1"
    sig = signature(ticket=ticket, noncestr="n0nce", timestamp=7, url=url)
    assert state.verify(url=url + "#frag", timestamp="7", nonce="n0nce", signature=sig, now=1.0)
    assert not state.verify(url=url, timestamp="8", nonce="n0nce", signature=sig, now=1.0)
    assert not state.verify(url=url, timestamp="7", nonce="n0nce", signature=sig, now=7200.0)
