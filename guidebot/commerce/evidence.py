"""What an order row stores about its attribution and lines, and the explanation read back.

An order stores only the facts that decided it (the touch, binding or store, and whether its
tracking token was unknown) next to its rule version id; the rules skipped and the version's
hash and start are derived from that version when the order is shown, so they are not copied
into every row. Lines are stored as compact arrays. Rows written in the older, expanded form
(objects, with `skipped` and `rule_version` inside) read back the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from guidebot.commerce.attribution import Attribution, Line, skipped
from guidebot.commerce.rules import RuleSet

if TYPE_CHECKING:  # the bulk worker process imports this module without the ORM
    from guidebot.db.models_commerce import RuleVersion


def _compact_encoder() -> Callable[[Any], str]:
    """json.dumps(obj, separators=(",", ":")) for plain dicts, lists, strings and numbers. It
    keeps one C encoder instead of building one per call (the bulk path encodes two values
    per order); where the C accelerator is missing, the standard encoder is used."""
    standard = json.JSONEncoder(separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return standard.encode
    one_shot = make(None, standard.default, json.encoder.encode_basestring_ascii, None, ":",
                    ",", False, False, True)
    return lambda obj: "".join(one_shot(obj, 0))


_compact = _compact_encoder()


def encode_evidence(decided: Attribution, *, unknown_tracking: bool) -> str:
    facts = {**decided.evidence, "unknown_tracking": True} if unknown_tracking else \
        decided.evidence
    return _compact(facts)


def explain(stored: str, rule: str, version: RuleVersion | None) -> dict[str, Any]:
    """The full evidence: what decided, the rules skipped before it, the rule version."""
    facts = json.loads(stored)
    if version is None:
        return dict(facts)
    derived = {"skipped": skipped(RuleSet.from_json(version.rules), rule),
               "rule_version": {"id": version.id, "config_hash": version.config_hash,
                                "effective_at": version.effective_at.isoformat()}}
    return {**derived, **facts}


def encode_lines(lines: Sequence[Line]) -> str:
    return _compact(lines)  # a Line is a tuple: one array per line


def decode_lines(stored: str) -> list[Line]:
    return [Line(**x) if isinstance(x, dict) else Line(*x) for x in json.loads(stored)]


def lines_view(stored: str) -> list[dict[str, Any]]:
    return [line._asdict() for line in decode_lines(stored)]
