"""Usage per tenant and month (tenant time zone), for billing per account or per transaction.

Definitions (every figure is read from what guidebot already records; nothing is estimated):
- active_guides: guides with a customer relation open at some time in the month;
- customers_added / relations_added: distinct customers, and guide↔customer relations,
  added in the month (the add's CreateTime);
- messages: WeCom calls that finished in the month, from the outbox's done rows, by kind.
  welcome = send_welcome_msg; mass_task = one 群发 task (add_msg_template) to one guide,
  however many customers it reaches; moment = a 朋友圈 task; kf_reply = a 微信客服 message
  to a customer (kf/send_msg: answers, cards, confirmations; send_msg_on_event: the
  greeting when a customer enters a session); app_message = an
  app message to a guide (SOP reminders and task notifications, a handoff's summary, answers
  to the guide's commands, a contributed material's receipt and review, a notice that a
  customer deleted the guide, a takeover guide's new customers, a reminder that a handed-off
  微信客服 customer waits for a reply). Outbox kinds that are not
  messages (mark_tag, customer_transfer, group_transfer, group_welcome) are not counted; a
  kind this table does not know is listed under messages_other, never dropped;
- llm_tokens: prompt plus completion tokens of the LLM calls made in the month, as the
  endpoint reported them (llm_calls, kept since migration 0027; calls before it were not
  recorded), with llm_calls, llm_prompt_tokens and llm_completion_tokens beside it;
  llm_metered = true says the figure is a measurement;
- attributed_orders / attributed_gmv_fen: orders paid in the month and credited to a guide
  (share_link or exclusive_guide), and their paid amount in fen before refunds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

from guidebot.commerce import periods
from guidebot.db.engine import Database
from guidebot.db.repo import usage as repo
from guidebot.settings import TenantSettings

MESSAGE_KINDS: Mapping[str, tuple[str, ...]] = {
    "welcome": ("welcome",),
    "mass_task": ("sop_guide_task", "sop_group_task"),  # 群发 to customers or to groups
    "moment": ("sop_moment",),
    "kf_reply": ("kf_send", "kf_welcome"),
    "app_message": ("sop_reminder", "sop_notify", "kf_notify", "app_text", "material_review",
                    "churn_notify", "radar_notify", "transfer_notify", "morning_digest",
                    "handoff_remind", "watch_notify", "guide_deleted_notify",
                    "manager_weekly"),
}
NOT_MESSAGES = frozenset({"mark_tag", "customer_transfer", "group_transfer",
                          "group_welcome", "channel_serving", "channel_verify",
                          "sop_cancel"})
CSV_FIELDS = ("period", "tenant", "active_guides", "customers_added", "relations_added",
              *(f"messages_{k}" for k in MESSAGE_KINDS), "messages_other", "llm_tokens",
              "llm_calls", "llm_prompt_tokens", "llm_completion_tokens",
              "attributed_orders", "attributed_gmv_fen", "attributed_gmv_yuan")


async def tenant_usage(db: Database, tenant: TenantSettings, period: str) -> dict[str, Any]:
    """One tenant's usage in `period` (YYYY-MM, its own time zone); ValidationFailed on a
    malformed period."""
    start, end = periods.bounds(period, tenant.tz)
    async with db.read() as s:
        guides = await repo.active_guides(s, tenant=tenant.id, start=start, end=end)
        customers, relations = await repo.adds(s, tenant=tenant.id, start=start, end=end)
        calls = await repo.done_calls_by_kind(s, tenant=tenant.id, start=start, end=end)
        orders, gmv = await repo.attributed_orders(s, tenant=tenant.id, start=start, end=end)
        llm_calls, prompt, completion = await repo.llm_tokens(s, tenant=tenant.id, start=start,
                                                              end=end)
    known = {kind for kinds in MESSAGE_KINDS.values() for kind in kinds} | NOT_MESSAGES
    return {
        "tenant": tenant.id, "period": period, "timezone": tenant.timezone,
        "from": start.isoformat(), "to": end.isoformat(),
        "active_guides": guides, "customers_added": customers, "relations_added": relations,
        "messages": {name: sum(calls.get(k, 0) for k in kinds)
                     for name, kinds in MESSAGE_KINDS.items()},
        "messages_other": {k: n for k, n in sorted(calls.items()) if k not in known},
        "llm_tokens": prompt + completion, "llm_metered": True, "llm_calls": llm_calls,
        "llm_prompt_tokens": prompt, "llm_completion_tokens": completion,
        "attributed_orders": orders, "attributed_gmv_fen": gmv,
    }


async def usage_report(db: Database, tenants: Iterable[TenantSettings],
                       period: str) -> list[dict[str, Any]]:
    return [await tenant_usage(db, tenant, period) for tenant in tenants]


def yuan(fen: int) -> str:
    """Fen as yuan with two decimals, exactly (no float)."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def csv_rows(report: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for u in report:
        row = {k: u[k] for k in CSV_FIELDS if k in u}
        row.update({f"messages_{k}": n for k, n in u["messages"].items()})
        row["messages_other"] = sum(u["messages_other"].values())
        row["attributed_gmv_yuan"] = yuan(u["attributed_gmv_fen"])
        rows.append(row)
    return rows


def to_csv(report: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(report))
    return out.getvalue()
