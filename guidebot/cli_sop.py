"""`guidebot sop validate|preview`: check content_library and preview an SOP's schedule."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from guidebot.content.errors import ContentInvalid
from guidebot.content.library import Library, load_library
from guidebot.errors import ValidationFailed
from guidebot.settings import Settings
from guidebot.sop import timing
from guidebot.sop.views import parse_added_at

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> dict[str, Command]:
    sop = command("sop", "SOP sequences: validate content_library, preview a schedule")
    sop.add_argument("action", choices=["validate", "preview"])
    sop.add_argument("--library", help="content library folder (default: from the config)")
    sop.add_argument("--tenant", help="preview: tenant whose time zone and quota apply")
    sop.add_argument("--sop", dest="sop_id", help="preview: the SOP id")
    sop.add_argument("--added-at", help="preview: trigger time, ISO 8601 (default: now)")
    return {"sop": _sop}


def _load(settings: Settings, args: argparse.Namespace) -> Library | None:
    root = Path(args.library) if args.library else settings.content_library
    try:
        return load_library(root)
    except ContentInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {root}", file=sys.stderr)
        return None


async def _sop(settings: Settings, args: argparse.Namespace) -> int:
    library = _load(settings, args)
    if library is None:
        return 1
    if args.action == "validate":
        print(f"{library.root}: {len(library.sops)} SOPs, {len(library.drops)} drops, "
              f"{len(library.messages)} messages — all valid")
        return 0
    return _preview(settings, library, args)


def _preview(settings: Settings, library: Library, args: argparse.Namespace) -> int:
    tenant_id = args.tenant or next(iter(settings.tenants))
    if tenant_id not in settings.tenants:
        known = ", ".join(settings.tenants)
        raise ValidationFailed(f"unknown tenant {tenant_id!r}; known: {known}")
    spec = library.sops.get(args.sop_id or "")
    if spec is None:
        known = ", ".join(sorted(library.sops)) or "(none)"
        raise ValidationFailed(f"--sop: unknown SOP {args.sop_id!r}; known: {known}")
    tenant = settings.tenant(tenant_id)
    from guidebot.db.types import utcnow

    added_at = parse_added_at(args.added_at, tenant) if args.added_at else utcnow()
    steps = timing.preview(spec, added_at, tenant)
    print(f"{spec.id} ({spec.title}) for tenant {tenant_id}, added at "
          f"{added_at.astimezone(tenant.tz).isoformat()}, quiet hours {spec.quiet_hours}, "
          f"quota {tenant.quotas.mass_msg_per_customer}:")
    for step in steps:
        note = f"  ({step['note']})" if "note" in step else ""
        print(f"  {step['index']}  {step['at'] or 'skipped':<27} {step['channel']:<11} "
              f"{step['message']}{note}")
    return 0
