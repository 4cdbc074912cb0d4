"""After a crash mid-call: find the 群发 task WeCom may already have created for our task."""

from __future__ import annotations

import logging
from datetime import timedelta

from guidebot.db.models_sop import SopTask
from guidebot.db.types import utcnow
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

SLACK = timedelta(minutes=2)  # clock skew between us and WeCom's create_time
MAX_PAGES = 20


async def find_template(client: WeComClient, task: SopTask, text: str,
                        recipients: list[str], *, chat_type: str = "single") -> str | None:
    """The msgid of a template by this guide, created since we started calling, with our text
    and recipients (customers, or for chat_type "group" chat ids) among ours; None when WeCom
    has none (then it is safe to call again)."""
    assert task.calling_at is not None
    body = {"chat_type": chat_type, "creator": task.guide, "filter_type": 2, "limit": 100,
            "start_time": int((task.calling_at - SLACK).timestamp()),
            "end_time": int((utcnow() + SLACK).timestamp())}
    wanted = set(recipients)
    key = "chat_id" if chat_type == "group" else "external_userid"
    cursor = ""
    for _ in range(MAX_PAGES):
        page = await client.call("POST", "externalcontact/get_groupmsg_list_v2",
                                 json={**body, "cursor": cursor})
        for item in page.get("group_msg_list", []):
            if (item.get("text") or {}).get("content", "") != text:
                continue
            if await _recipients(client, str(item["msgid"]), task.guide, key) <= wanted:
                log.info("task %s: adopting group message created before a crash", task.id)
                return str(item["msgid"])
        cursor = str(page.get("next_cursor") or "")
        if not cursor:
            break
    return None


async def _recipients(client: WeComClient, msgid: str, guide: str, key: str) -> set[str]:
    found: set[str] = set()
    cursor = ""
    for _ in range(MAX_PAGES * 10):
        page = await client.call("POST", "externalcontact/get_groupmsg_send_result",
                                 json={"msgid": msgid, "userid": guide, "limit": 1000,
                                       "cursor": cursor})
        found |= {str(r.get(key) or "") for r in page.get("send_list", [])}
        cursor = str(page.get("next_cursor") or "")
        if not cursor:
            break
    return found
