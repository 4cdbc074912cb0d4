"""微信客服 (kf) APIs on top of WeComClient.call (FACTS-next §A; wechatpy 1.8.18 has none)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from guidebot.wecom.client import WeComClient

# Error codes of kf/send_msg and kf/service_state/trans (FACTS-next §A.4, §A.6).
SEND_COUNT_LIMIT = 95001  # more than 5 messages since the customer last wrote
SEND_TIME_LIMIT = 95002  # more than 48 h since the customer last wrote
NOT_SERVICER = 95014
BAD_TRANSITION = 95016
STATE_FORBIDS_SEND = 95018  # session not in state 0/1 (or past 48 h)
SERVICER_STOPPED = 95019
REFUSED_SEND = frozenset({SEND_COUNT_LIMIT, SEND_TIME_LIMIT, STATE_FORBIDS_SEND})


class KfApi:
    """One tenant's kf calls; errors raise like every WeComClient call (WeComApiError…)."""

    def __init__(self, client: WeComClient) -> None:
        self._client = client

    async def sync_msg(self, *, cursor: str, token: str, open_kfid: str,
                       limit: int = 1000) -> dict[str, Any]:
        body: dict[str, Any] = {"limit": limit, "voice_format": 0}
        if cursor:
            body["cursor"] = cursor
        if token:
            body["token"] = token
        if open_kfid:
            body["open_kfid"] = open_kfid
        return await self._client.call("POST", "kf/sync_msg", json=body)

    async def send_msg(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._client.call("POST", "kf/send_msg", json=body)

    async def send_msg_on_event(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._client.call("POST", "kf/send_msg_on_event", json=body)

    async def service_state(self, *, open_kfid: str, external_userid: str) -> tuple[int, str]:
        result = await self._client.call("POST", "kf/service_state/get", json={
            "open_kfid": open_kfid, "external_userid": external_userid})
        return int(result.get("service_state", 0)), str(result.get("servicer_userid", ""))

    async def trans(self, *, open_kfid: str, external_userid: str, state: int,
                    servicer: str = "") -> str:
        """Move the session; WeCom's msg_code when it gives one, else ""."""
        body: dict[str, Any] = {"open_kfid": open_kfid, "external_userid": external_userid,
                                "service_state": state}
        if servicer:
            body["servicer_userid"] = servicer
        result = await self._client.call("POST", "kf/service_state/trans", json=body)
        return str(result.get("msg_code", ""))

    async def customers(self, external_userids: Sequence[str]) -> list[dict[str, Any]]:
        result = await self._client.call("POST", "kf/customer/batchget", json={
            "external_userid_list": list(external_userids)[:100],
            "need_enter_session_context": 0})
        return list(result.get("customer_list") or [])

    async def add_contact_way(self, *, open_kfid: str, scene: str) -> str:
        result = await self._client.call("POST", "kf/add_contact_way", json={
            "open_kfid": open_kfid, "scene": scene})
        return str(result["url"])
