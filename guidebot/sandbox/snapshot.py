"""A tenant's whole simulated state as JSON, for GET /_sandbox/{tenant}/state."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from guidebot.sandbox import acquisition, group_welcome, massmsg, tagbook
from guidebot.sandbox.models import JSON, MsgTemplate
from guidebot.sandbox.tenant import TenantState


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def _with_iso(record: Any, key: str) -> JSON:
    data = asdict(record)
    data[key] = iso(data[key])
    return data


def _template(template: MsgTemplate) -> JSON:
    """The template and its tasks; a task's recipients are customers' external_userids, or
    chat_ids for a chat_type "group" template, each with its status."""
    tasks = [asdict(task) for task in template.tasks.values()]
    return {**massmsg.template_json(template), "chat_type": template.chat_type, "tasks": tasks}


def tenant_json(tenant: TenantState) -> JSON:
    return {
        "tenant": tenant.id,
        "members": list(tenant.members),
        "customers": [c.to_json() for c in tenant.customers.values()],
        "follows": [asdict(f) for f in tenant.follows.values()],
        "tag_groups": [tagbook.group_json(g, g.tags) for g in tenant.tag_groups.values()],
        "contact_ways": [
            {"config_id": w.config_id, **w.body, "qr_code": w.qr_code}
            for w in tenant.contact_ways.values()
        ],
        "welcome_codes": [_with_iso(w, "issued_at") for w in tenant.welcome_codes.values()],
        "welcome_messages": [_with_iso(w, "at") for w in tenant.welcomes_sent],
        "msg_templates": [_template(t) for t in tenant.templates.values()],
        "app_messages": [_with_iso(m, "at") for m in tenant.app_messages],
        "media": [{k: v for k, v in asdict(m).items() if k != "data"}
                  for m in tenant.media.values()],
        "directory": tenant.directory.to_json(),
        "transfers": tenant.transfers.to_json(),
        "groups": tenant.groups.to_json(),
        "join_ways": tenant.join_ways.to_json(),
        "group_welcome_templates": [
            group_welcome.to_json(t) for t in tenant.group_welcome_templates.values()
        ],
        "acquisition_links": [
            acquisition.to_json(link) for link in tenant.acquisition_links.values()
        ],
        "acquisition_quota": {"total": tenant.acquisition_quota.total,
                              "balance": tenant.acquisition_quota.balance,
                              "quota_list": tenant.acquisition_quota.batches},
    }
