"""查阅复制 (PIPL's right to access and copy): everything guidebot holds about one customer, as
one JSON document grouped by section, each with its Chinese title (and English): the profile,
the guides they added, the exclusive-guide history, tags, 客户资料, birthday, follow-up notes,
the opt-out, 微信客服 messages, groups, orders, card visits and pre-tags.

Reads only, in one read transaction. Bounded: the latest MESSAGES 微信客服 messages (with the
count of the older ones left out) and the latest ROWS notes, orders and visits. Times are
given in UTC and in the tenant's zone. The sections and the tables they read are
guidebot/db/repo/personal_data.py's SECTIONS, checked against the erasure's inventory."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import date, datetime
from importlib import resources
from typing import Any

from guidebot.contacts.profile_fields import decoded
from guidebot.content.catalog import Catalog
from guidebot.content.profile_fields import ProfileField
from guidebot.db.engine import Database
from guidebot.db.repo import personal_data as repo
from guidebot.errors import NotFound
from guidebot.settings import TenantSettings

log = logging.getLogger(__name__)

MESSAGES = 5_000
ROWS = 10_000
ORIGINS = {3: "customer", 4: "system", 5: "servicer"}  # kf_messages.origin


def titles() -> dict[str, dict[str, str]]:
    text = resources.files("guidebot").joinpath("templates/personal_data/sections.json")
    return dict(json.loads(text.read_text(encoding="utf-8")))


class _Times:
    def __init__(self, tenant: TenantSettings) -> None:
        self.tz = tenant.tz

    def __call__(self, at: datetime | None) -> str | None:
        return None if at is None else at.astimezone(self.tz).isoformat()


def _field_value(field: ProfileField | None, text: str) -> Any:
    return decoded(field, text) if field is not None else text


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


async def export(db: Database, tenant: TenantSettings, external_userid: str, *,
                 fields: Sequence[ProfileField], catalog: Catalog) -> dict[str, Any]:
    """The document; NotFound for a customer this tenant does not know (or erased)."""
    at = _Times(tenant)
    async with db.read() as s:
        profile = await repo.customer(s, tenant.id, external_userid)
        if profile is None:
            raise NotFound(f"external_userid: no customer {external_userid} in this tenant",
                           code="customer.unknown", external_userid=external_userid)
        ids = await repo.linked_ids(s, tenant.id, external_userid)
        unionids = {i["value"] for i in ids if i["kind"] == "unionid"}
        unionids |= {profile["unionid"]} if profile["unionid"] else set()
        openids = {i["value"] for i in ids if i["kind"] == "openid"}
        relations = await repo.relations(s, tenant.id, external_userid)
        bindings = await repo.bindings(s, tenant.id, external_userid)
        tags = await repo.tags(s, tenant.id, external_userid)
        values = await repo.field_values(s, tenant.id, external_userid)
        birthday = await repo.birthday(s, tenant.id, external_userid)
        notes = await repo.notes(s, tenant.id, external_userid, ROWS)
        opt_out = await repo.opt_out(s, tenant.id, external_userid)
        messages, total = await repo.kf_messages(s, tenant.id, external_userid, MESSAGES)
        sessions = await repo.kf_sessions(s, tenant.id, external_userid)
        groups = await repo.groups(s, tenant.id, external_userid)
        orders = await repo.orders(s, tenant.id, external_userid, unionids=unionids,
                                   openids=openids, limit=ROWS)
        touches = await repo.touches(s, tenant.id, external_userid, unionids=unionids,
                                     openids=openids, limit=ROWS)
        pretags = await repo.pretags(s, tenant.id, external_userid, unionids=unionids)
    by_id = {f.id: f for f in fields}
    names = {r["guide"]: r["guide_name"] or "" for r in relations}
    data: dict[str, Any] = {
        "profile": {**profile, "created_at": at(profile["created_at"]),
                    "profile_fetched_at": at(profile["profile_fetched_at"]),
                    "linked_ids": ids},
        "relations": [{**r, "guide_name": r["guide_name"] or "", "added_at": at(r["added_at"]),
                       "ended_at": at(r["ended_at"])} for r in relations],
        "bindings": [{**b, "guide_name": names.get(b["guide"], ""),
                      "started_at": at(b["started_at"]), "ended_at": at(b["ended_at"])}
                     for b in bindings],
        "tags": [{"tag": t["name"], "group": t["group_name"], "guide": t["guide"],
                  "added_at": at(t["added_at"])} for t in tags],
        "fields": [{"field": v["field"],
                    "label": by_id[v["field"]].label if v["field"] in by_id else v["field"],
                    "value": _field_value(by_id.get(v["field"]), v["value"]),
                    "set_by": v["set_by"], "set_at": at(v["set_at"])} for v in values],
        "birthday": birthday,
        "notes": [{"text": n["text"], "writer": n["guide"],
                   "writer_name": names.get(n["guide"], ""), "at": at(n["created_at"]),
                   "day": n["created_at"].astimezone(tenant.tz).date().isoformat(),
                   "follow_up_on": _day(n["follow_up_on"])} for n in notes],
        "opt_out": None if opt_out is None else {"opted_out_at": at(opt_out["opted_out_at"])},
        "kf_messages": {
            "messages": [{"at": at(m["send_time"]), "from": ORIGINS.get(m["origin"], "other"),
                          "servicer": m["servicer_userid"], "type": m["msgtype"],
                          "event": m["event_type"], "text": m["text"],
                          "removed": m["msgtype"] == "text" and not m["text"]}
                         for m in messages],
            "total": total, "left_out": max(total - len(messages), 0),
            "sessions": [{"open_kfid": x["open_kfid"],
                          "last_customer_at": at(x["last_customer_at"])} for x in sessions]},
        "groups": [{"chat_id": g["chat_id"], "name": g["name"] or "",
                    "joined_at": at(g["joined_at"]), "left_at": at(g["left_at"])}
                   for g in groups],
        "orders": [{"order_no": o["order_no"], "paid_at": at(o["paid_at"]),
                    "amount_fen": o["amount_fen"], "amount_yuan": _yuan(o["amount_fen"]),
                    "guide": o["guide"], "items": _items(o["lines"])} for o in orders],
        "card_visits": [{"at": at(t["at"]), "kind": t["kind"], "sku": t["sku"],
                         "product": _product(catalog, t["sku"]), "category": t["category"],
                         "guide": t["guide"], "seconds": t["dur_s"]} for t in touches],
        "pretags": [{"tag": p["name"] or "", "unionid": p["unionid"],
                     "created_at": at(p["created_at"]), "applied_at": at(p["applied_at"])}
                    for p in pretags],
    }
    words = titles()
    log.info("personal data exported tenant=%s", tenant.id)
    return {"tenant": tenant.id, "external_userid": external_userid,
            "exported_at": at(datetime.now(tenant.tz)), "time_zone": str(tenant.tz),
            "sections": [{"key": key, "title": words[key]["zh-CN"],
                          "title_en": words[key]["en"], "data": data[key]}
                         for key in repo.SECTIONS]}


def _day(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


ITEM = ("sku", "category", "quantity", "amount_fen")  # commerce_orders.lines: one array a line


def _items(lines: str) -> list[dict[str, Any]]:
    """The order's items (what was bought; the commission columns are the brand's)."""
    try:
        stored = json.loads(lines or "[]")
    except json.JSONDecodeError:
        return []
    items = [dict(zip(ITEM, line, strict=False)) for line in stored
             if isinstance(line, list)] if isinstance(stored, list) else []
    return [{**i, "amount_yuan": _yuan(int(i.get("amount_fen", 0)))} for i in items]


def _product(catalog: Catalog, sku: str) -> str:
    found = catalog.get(sku) if sku else None
    return found.name if found is not None else ""
