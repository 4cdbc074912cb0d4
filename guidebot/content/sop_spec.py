"""The SOP and content-drop file schema (DESIGN §5.5): keys, values and the parsed specs."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from guidebot.content import sop_planner as planner

SOP_KEYS = {"id", "title", "enabled", "trigger", "exit", "steps", "quiet_hours", "on_quota"}
TRIGGER_KEYS = {"on", "state_prefix", "campaigns", "stores", "tags_any", "tags_all", "tags_none",
                "group_names", "days_before", "reach", "days", "since"}
STEP_KEYS = {"at", "channel", "message", "material", "add_tags", "remove_tags"}
DROP_KEYS = {"id", "title", "enabled", "cron", "at", "audience", "channel", "message",
             "material"}
MATERIAL_MESSAGE = "material:"  # `material = "<id>"` sends the message "material:<id>"
MATERIAL_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")  # a material's id (library or database)
RESERVED_MATERIAL_IDS = frozenset({"search", "contributors", "review"})  # API paths


def is_material_id(value: object) -> bool:
    """A well-formed material id (whether such a material exists is another question)."""
    return (isinstance(value, str) and MATERIAL_ID.fullmatch(value) is not None
            and value not in RESERVED_MATERIAL_IDS)
AUDIENCE_KEYS = {"tags_any", "tags_all", "tags_none", "stores", "guides"}
# A group_task drop (群发 to customer groups) chooses groups by their owner, the owner's store
# and words of the group's name; groups have no customer tags.
GROUP_AUDIENCE_KEYS = {"stores", "guides", "group_names"}
TRIGGERS = ("contact_added", "tag_added", "order_paid", "manual", "group_created", "birthday",
            "no_purchase")
# 生日关怀: customers whose birthday is `days_before` days after today (the tenant's day) are
# enrolled at that day's 00:00, again every year.
BIRTHDAY_TRIGGER = "birthday"
MAX_DAYS_BEFORE = 30
# 沉睡唤醒 / 新客未转化: customers whose `since` moment (their last paid order not fully
# refunded, or with "added" the relation's start for customers who never bought) is `days` days
# before today (the tenant's day) are enrolled at that day's 00:00, once per such moment: the
# round is the moment's day, so a customer who buys again and lapses again enrolls again.
NO_PURCHASE_TRIGGER = "no_purchase"
NO_PURCHASE_SINCE = ("last_order", "added")
MAX_NO_PURCHASE_DAYS = 730
# Whom a trigger enrolls (`reach`): "relation" (the default) each follow relation on its own,
# so a customer of two guides runs the SOP through both; "customer" the customer once, through
# the first relation a trigger enrolls, never again through another guide while any enrollment
# of the SOP for the customer exists (whatever its status). Only the triggers that enroll one
# relation at a time take it: a birthday or an audience already reaches each customer once.
REACHES = ("relation", "customer")
REACH_TRIGGERS = ("contact_added", "tag_added", "order_paid", "manual", "no_purchase")
CHANNELS = ("welcome", "guide_task", "reminder", "moment", "group_task")
# A group SOP (群SOP): a customer group enrolls when it is created, and every step is a 群发 to
# that group by its owner; it ends when the group is dismissed.
GROUP_TRIGGER, GROUP_EXIT = "group_created", "group_dismissed"
DROP_CHANNELS = ("guide_task", "moment", "group_task")
GROUP_CHANNEL = "group_task"
# Drops HQ creates in the console or the admin API (新建群发) are named hq-<n>; a drop file
# may not take such a name.
CONSOLE_DROP_PREFIX = "hq-"
STORED_MATERIAL_CHANNELS = CHANNELS  # every channel may send a database material
EXITS = ("order_paid", "contact_deleted", "group_dismissed")
DEFAULT_QUIET = "21:00-09:00"
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


@dataclass(frozen=True)
class Audience:
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    tags_none: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()
    guides: tuple[str, ...] = ()
    # A saved customer segment (客户分群) of the tenant, resolved when the audience is used;
    # only HQ's own drops and enrolments name one (a drop file does not).
    segment: int | None = field(default=None, kw_only=True)

    def admits(self, tags: set[str], store: str | None = None, guide: str = "") -> bool:
        return ((not self.tags_any or bool(tags & set(self.tags_any)))
                and set(self.tags_all) <= tags and not tags & set(self.tags_none)
                and (not self.stores or store in self.stores)
                and (not self.guides or guide in self.guides))


@dataclass(frozen=True)
class Trigger:
    on: str
    state_prefix: str = ""
    campaigns: tuple[str, ...] = ()
    audience: Audience = Audience()
    group_names: tuple[str, ...] = ()  # group_created: a group whose name holds any
    days_before: int = 0  # birthday: enroll this many days before the birthday
    reach: str = "relation"  # REACHES: each relation, or each customer once
    days: int = 0  # no_purchase: days since the `since` moment
    since: str = ""  # no_purchase: NO_PURCHASE_SINCE ("last_order" when not given)

    @property
    def once_per_customer(self) -> bool:
        return self.reach == "customer"

    def admits_group(self, name: str, owner_store: str | None) -> bool:
        """A group_created trigger: the owner's store and words of the group's name."""
        return (self.audience.admits(set(), owner_store)
                and (not self.group_names or any(w in name for w in self.group_names)))


@dataclass(frozen=True)
class Step:
    at: str
    channel: str
    message: str
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()

    @property
    def rule(self) -> planner.StepRule:
        return planner.StepRule(planner.parse_offset(self.at), self.channel)


@dataclass(frozen=True)
class SopSpec:
    id: str
    title: str
    enabled: bool
    trigger: Trigger
    exits: tuple[str, ...]
    steps: tuple[Step, ...]
    quiet_hours: str = DEFAULT_QUIET
    on_quota: str = "defer"
    file: Path = field(default=Path(), compare=False)

    def digest(self) -> str:
        """What makes a version: the content, not where the file lives. A trigger's
        group_names, added later, counts only when given (a customer SOP's digest is what
        it was before group SOPs existed, so no SOP becomes a new version by the upgrade);
        so does a birthday trigger's days_before, and a trigger's reach other than the
        default "relation", and a no_purchase trigger's days and since."""
        body = {k: v for k, v in asdict(self).items() if k != "file"}
        if not self.trigger.group_names:
            del body["trigger"]["group_names"]
        if not self.trigger.days_before:
            del body["trigger"]["days_before"]
        if self.trigger.reach == "relation":
            del body["trigger"]["reach"]
        if not self.trigger.days:
            del body["trigger"]["days"]
        if not self.trigger.since:
            del body["trigger"]["since"]
        if self.trigger.audience.segment is None:  # never in a file: digests as before
            del body["trigger"]["audience"]["segment"]
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False,
                                         default=str).encode()).hexdigest()[:32]

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "file"},
                          ensure_ascii=False, default=str)

    @property
    def for_groups(self) -> bool:
        return self.trigger.on == GROUP_TRIGGER

    @property
    def exit_tags(self) -> tuple[str, ...]:
        return tuple(e.split(":", 1)[1] for e in self.exits if e.startswith("tag_added:"))


@dataclass(frozen=True)
class DropSpec:
    id: str
    title: str
    enabled: bool
    cron: str
    at: str
    audience: Audience
    channel: str
    message: str
    file: Path = field(default=Path(), compare=False)
    group_names: tuple[str, ...] = ()  # group_task: a group whose name holds any of these

    def admits_group(self, name: str, owner_store: str | None, owner: str) -> bool:
        """A group_task drop's audience: the owner's store and userid, words of the name."""
        return (self.audience.admits(set(), owner_store, owner)
                and (not self.group_names or any(w in name for w in self.group_names)))


def sop_from_json(raw: str) -> SopSpec:
    data = json.loads(raw)
    trig = data["trigger"]
    return SopSpec(
        id=data["id"], title=data["title"], enabled=data["enabled"],
        trigger=Trigger(trig["on"], trig["state_prefix"], tuple(trig["campaigns"]),
                        _audience_from(trig["audience"]),
                        tuple(trig.get("group_names", ())), int(trig.get("days_before", 0)),
                        str(trig.get("reach", "relation")), int(trig.get("days", 0)),
                        str(trig.get("since", ""))),
        exits=tuple(data["exits"]),
        steps=tuple(Step(s["at"], s["channel"], s["message"], tuple(s["add_tags"]),
                         tuple(s["remove_tags"])) for s in data["steps"]),
        quiet_hours=data["quiet_hours"], on_quota=data["on_quota"])


def _audience_from(data: dict[str, Any]) -> Audience:
    lists: dict[str, Any] = {k: tuple(v) for k, v in data.items() if k != "segment"}
    return Audience(**lists, segment=data.get("segment"))
