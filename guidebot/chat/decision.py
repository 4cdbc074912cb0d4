"""The contract between kf intake (sessions, sending, handoff) and reply routing (rules, FAQ,
catalog, LLM): intake builds an `Inbound`, the router returns a `Decision`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Route(StrEnum):
    OPT_OUT = "opt_out"      # 退订/TD…: tag the customer, stop SOP tasks, confirm once
    OPT_IN = "opt_in"        # an opted-out customer asks for messages again: undo, confirm
    REPLY = "reply"          # content_library/replies/*.toml keyword or intent
    FAQ = "faq"              # content_library/faq/*.toml
    CATALOG = "catalog"      # a product answered from catalog.toml, with a tracked card
    LLM = "llm"              # a grounded model answer (numbers checked against the grounding)
    HANDOFF = "handoff"      # asked for a person, a complaint, or nothing grounded to say
    IGNORED = "ignored"      # nothing to answer (e.g. an empty or non-text message)


@dataclass(frozen=True)
class CustomerContext:
    """What guidebot knows about the writer (empty when the kf customer is not a contact)."""

    external_userid: str
    name: str = ""
    exclusive_guide: str | None = None
    store_id: str | None = None
    tags: tuple[str, ...] = ()
    recent_skus: tuple[str, ...] = ()
    opted_out: bool = False  # opted out in 微信客服 (under this external_userid)


@dataclass(frozen=True)
class Inbound:
    tenant: str
    open_kfid: str
    msgid: str
    text: str
    customer: CustomerContext


@dataclass(frozen=True)
class Decision:
    route: Route
    reason: str                       # recorded with the message; never customer text
    text: str = ""                    # the reply to send (empty for handoff-only / ignored)
    card_sku: str | None = None       # a catalog product to send as a tracked card
    summary: str = ""                 # two lines for the guide on handoff
    facts: tuple[str, ...] = field(default=())  # ids of the FAQ entries / skus used


class ReplyRouter(Protocol):
    async def decide(self, inbound: Inbound) -> Decision: ...
