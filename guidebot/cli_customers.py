"""CLI: `guidebot customer erase --tenant T <external_userid>` erases one customer
(删除客户个人信息), as the admin API's POST /customers/{external_userid}/erase."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from guidebot.contacts import erasure
from guidebot.db.engine import Database
from guidebot.errors import Refusal, ValidationFailed
from guidebot.settings import Settings


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> dict[str, Any]:
    customer = command("customer", "one customer: erase their personal information")
    customer.add_argument("action", choices=["erase"])
    customer.add_argument("--tenant", required=True)
    customer.add_argument("external_userid")
    return {"customer": customer_command}


async def customer_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.tenant not in settings.tenants:
        raise ValidationFailed(f"unknown tenant {args.tenant!r}; known: "
                               + ", ".join(settings.tenants))
    db = Database(settings.database_url)
    try:
        done = await erasure.erase(db, args.tenant, args.external_userid, by="cli")
    except Refusal as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    print(json.dumps(done, ensure_ascii=False, indent=2))
    return 0
