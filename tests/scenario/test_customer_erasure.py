"""删除客户个人信息 over the real stack: a customer built through real flows (a channel-code
add callback, a pre-tag by unionid, profile fields, a note, a birthday, a 微信客服 message, a
credited order, a card visit) is refused while they follow a guide, then, once they deleted
the guide, erased: no marker of theirs is left in any text column of any table (the schema
reflected), orders, ledger and overview figures are unchanged, a second erase is a 404, and a
re-add is a new customer. The console's form (CSRF, ticked box, refusal worded), the CLI and
tenant isolation too."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, select

from guidebot.cli import main
from guidebot.db.models import OutboxItem
from guidebot.db.models_audit import AuditEntry
from guidebot.db.models_commerce import LedgerEntry, Order
from guidebot.db.models_erasures import CustomerErasure
from tests.support.console import Console, csrf_in
from tests.support.customer_build import FIELD, KF_TEXT, NAME, NOTE, UNIONID
from tests.support.customer_build import build as _build
from tests.support.customer_build import guide_deletes as _guide_deleted_by
from tests.support.kf import customer_writes
from tests.support.stack import Stack


async def _bystander(stack: Stack) -> str:
    """Another customer of the same name who wrote the same words: nothing of theirs changes."""
    await stack.sandbox.simulate_add_contact("acme", userid="chenjing",
                                             external_userid="wmSAMENAME", name=NAME)
    await stack.runtime.drain()
    await customer_writes(stack, "wmSAMENAME", KF_TEXT)
    return "wmSAMENAME"


async def _outbox_since(stack: Stack, after: int) -> list[tuple[Any, ...]]:
    """The outbox rows written after row `after`, and everything in them."""
    async with stack.runtime.services.db.read() as s:
        rows = await s.execute(select(OutboxItem.id, OutboxItem.key, OutboxItem.status,
                                      OutboxItem.payload, OutboxItem.result)
                               .where(OutboxItem.id > after).order_by(OutboxItem.id))
        return [tuple(r) for r in rows]


def _text_columns(sync: sa.Connection) -> list[tuple[str, str]]:
    found = []
    inspector = sa.inspect(sync)
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            if isinstance(column["type"], sa.String | sa.Text):
                found.append((table, str(column["name"])))
    return found


async def _where(stack: Stack, markers: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, marker) for each marker found in any text column of the schema; each
    marker also in its JSON-escaped form."""
    wanted = sorted({m for marker in markers
                     for m in (marker, json.dumps(marker)[1:-1])})
    hits = []
    async with stack.runtime.services.db.read() as s:
        columns = await (await s.connection()).run_sync(_text_columns)
        assert len({t for t, _ in columns}) > 60  # the whole schema, reflected
        for table, column in columns:
            t = sa.table(table, sa.column(column, sa.Text))
            for marker in wanted:
                n = (await s.execute(select(func.count()).select_from(t).where(
                    t.c[column].contains(marker, autoescape=True)))).scalar_one()
                if n:
                    hits.append((table, column, marker))
    return hits


async def _money(stack: Stack) -> tuple[Any, ...]:
    async with stack.runtime.services.db.read() as s:
        orders = (await s.execute(select(func.count(), func.sum(Order.amount_fen),
                                         func.sum(Order.commission_fen)))).one()
        ledger = (await s.execute(select(func.count(), func.sum(LedgerEntry.amount_fen)))).one()
        credit = (await s.execute(select(Order.order_no, Order.guide, Order.paid_at)
                                  .order_by(Order.order_no))).all()
    return tuple(orders), tuple(ledger), [tuple(r) for r in credit]


async def _figures(stack: Stack) -> Any:
    today = datetime.now(stack.tenant().tz).date().isoformat()
    status, body = await stack.admin(f"/metrics/overview?from={today}&to={today}")
    assert status == 200, body
    return body


def test_every_table_of_the_schema_is_in_the_erasure_inventory() -> None:
    """A table added later holds data about customers or not: it must say which, in
    guidebot/db/repo/erasure.py, before an erasure can be trusted to reach it."""
    from sqlmodel import SQLModel

    from guidebot.db import load_models
    from guidebot.db.repo import erasure

    load_models()
    tables = set(SQLModel.metadata.tables) - {"alembic_version"}
    assert tables - erasure.classified_tables() == set()
    assert erasure.classified_tables() - tables == set()  # no stale name either


async def test_an_erased_customer_leaves_no_trace_and_figures_stay(stack: Stack) -> None:
    customer = await _build(stack)
    last = max(row[0] for row in await _outbox_since(stack, 0))
    bystander = await _bystander(stack)
    # their welcome and the 微信客服 handoff notice name them without their id
    theirs = await _outbox_since(stack, last)
    escaped = json.dumps(NAME)[1:-1]
    assert len([row for row in theirs if escaped in str(row[3])]) >= 2, theirs
    status, refused = await stack.admin(f"/customers/{customer}/erase", method="POST")
    assert status == 409 and refused["code"] == "customer.still_following", refused
    assert (await stack.admin(f"/customers/{customer}"))[1]["name"] == NAME  # nothing changed

    await _guide_deleted_by(stack, customer)
    markers = [NAME, UNIONID, customer, NOTE, FIELD, KF_TEXT]
    assert {m for _, _, m in await _where(stack, markers)} >= {NAME, UNIONID, customer, NOTE,
                                                               FIELD, KF_TEXT}
    await stack.runtime.services.stats.backfill("acme")
    money, figures = await _money(stack), await _figures(stack)

    inbox_ids = [row.id for row in await stack.inbox_rows()]
    status, done = await stack.admin(f"/customers/{customer}/erase", method="POST")
    assert status == 200, done
    assert done["tombstone"].startswith("erased-") and done["erased_at"]
    # the callbacks keep their rows (ids key other records), their payloads emptied
    assert [row.id for row in await stack.inbox_rows()] == inbox_ids
    assert done["counts"]["inbox"] >= 3
    for table in ("customers", "customer_notes", "customer_field_values",
                  "customer_birthdays", "pretags", "commerce_orders", "follows"):
        assert done["counts"].get(table, 0) >= 1, (table, done["counts"])
    left = await _where(stack, markers)
    # what is left is the bystander's: their name, and the words they wrote themselves
    theirs_words = {w for m in (NAME, KF_TEXT) for w in (m, json.dumps(m)[1:-1])}
    assert {m for _, _, m in left} <= theirs_words and left, left
    assert [row for row in await _outbox_since(stack, last)
            if row[0] in {r[0] for r in theirs}] == theirs
    assert (await stack.admin(f"/customers/{bystander}"))[1]["name"] == NAME
    async with stack.runtime.services.db.write() as s:
        await s.execute(sa.delete(sa.table("customers", sa.column("external_userid"))).where(
            sa.column("external_userid") == bystander))
        await s.execute(sa.delete(sa.table("kf_messages", sa.column("external_userid"))).where(
            sa.column("external_userid") == bystander))
        await s.execute(sa.delete(sa.table("outbox", sa.column("id"))).where(
            sa.column("id").in_([row[0] for row in theirs])))
    assert await _where(stack, markers) == []  # and nothing else
    assert await _money(stack) == money
    assert await _figures(stack) == figures
    await stack.runtime.services.stats.backfill("acme")  # rebuilt from what is kept: the same
    assert await _figures(stack) == figures
    async with stack.runtime.services.db.read() as s:
        [order_customer] = (await s.execute(select(Order.external_userid))).scalars()
        [record] = (await s.execute(select(CustomerErasure))).scalars()
    assert order_customer == done["tombstone"]
    assert (record.tenant, record.tombstone, record.by) == ("acme", done["tombstone"], "admin")
    assert json.loads(record.counts) == done["counts"]

    status, again = await stack.admin(f"/customers/{customer}/erase", method="POST")
    assert status == 404 and again["code"] == "customer.unknown", again

    # the same person adds a guide again: a new customer, knowing nothing of the old one
    await stack.sandbox.simulate_add_contact("acme", userid="chenjing", external_userid=customer,
                                             name="新客户", unionid=UNIONID)
    await stack.runtime.drain()
    status, card = await stack.admin(f"/customers/{customer}")
    assert status == 200 and card["name"] == "新客户", card
    assert card["orders"] == [] and card["birthday"] is None
    assert (await stack.admin(f"/customers/{customer}/notes"))[1]["notes"] == []
    fields = (await stack.admin(f"/customers/{customer}/fields"))[1]["fields"]
    assert all(f["value"] in (None, [], "") for f in fields), fields


async def test_another_tenant_cannot_erase(stack: Stack) -> None:
    customer = await _build(stack)
    await _guide_deleted_by(stack, customer)
    status, body = await stack.admin(f"/customers/{customer}/erase", tenant="beta",
                                     method="POST")
    assert status == 404, body
    status, _ = await stack.admin(f"/customers/{customer}/erase", method="POST",
                                  token=stack.tenant("beta").admin_token)
    assert status in (401, 403)  # acme's API refuses beta's token
    assert (await stack.admin(f"/customers/{customer}"))[1]["name"] == NAME


async def test_the_console_form_and_the_cli(stack: Stack, tmp_path: Any) -> None:
    customer = await _build(stack)
    console = Console(stack)
    page = f"/console/acme/customers/{customer}"
    try:
        await console.login("acme", "acme-admin-token")
        _, html, _ = await console.get(page)
        assert 'id="erase-form"' in html and "删除客户个人信息" in html
        form = {"_csrf": csrf_in(html)}
        status, _, _ = await console.post(f"{page}/erase", {"confirm": "yes"})
        assert status == 403  # no CSRF token
        status, refused, _ = await console.post(f"{page}/erase", form)
        assert status == 400 and "请勾选确认框" in refused
        status, refused, _ = await console.post(f"{page}/erase", {**form, "confirm": "yes"})
        assert status == 409 and "仍是导购" in refused and "未删除任何内容" in refused
        assert (await stack.admin(f"/customers/{customer}"))[1]["name"] == NAME

        await _guide_deleted_by(stack, customer)
        status, html, _ = await console.post(f"{page}/erase", {**form, "confirm": "yes"})
        assert status == 200 and "客户个人信息已删除" in html, html
        assert 'data-table="customers"' in html and "erased-" in html
        assert (await stack.admin(f"/customers/{customer}"))[0] == 404
        status, _, _ = await console.get(page)
        assert status == 404
    finally:
        await console.close()
    assert await _where(stack, [NAME, UNIONID, customer, NOTE, FIELD]) == []

    # the CLI: another customer, with no relation left
    await stack.sandbox.simulate_add_contact("acme", userid="lina", external_userid="wmCLIERASE",
                                             name="命令行客户")
    await stack.runtime.drain()
    await _guide_deleted_by(stack, "wmCLIERASE")
    config = str(tmp_path / "config.toml")
    code = await asyncio.to_thread(main, ["--config", config, "customer", "erase",
                                          "--tenant", "acme", "wmCLIERASE"])
    assert code == 0
    assert (await stack.admin("/customers/wmCLIERASE"))[0] == 404
    code = await asyncio.to_thread(main, ["--config", config, "customer", "erase",
                                          "--tenant", "acme", "wmCLIERASE"])
    assert code == 2
    async with stack.runtime.services.db.read() as s:
        bys = sorted((await s.execute(select(CustomerErasure.by))).scalars())
        cli = (await s.execute(select(CustomerErasure.tombstone).where(
            CustomerErasure.by == "cli"))).scalar_one()
        logged = (await s.execute(select(AuditEntry.params).where(
            AuditEntry.action == "customer erase", AuditEntry.actor == "cli"))).scalars().all()
    assert bys == ["cli", "console"]
    assert [json.loads(p) for p in logged] == [{"external_userid": cli}]


async def _occurrences(stack: Stack, value: str) -> dict[tuple[str, str], int]:
    """How often `value` is written in each text column of the schema."""
    found: dict[tuple[str, str], int] = {}
    async with stack.runtime.services.db.read() as s:
        for table, column in await (await s.connection()).run_sync(_text_columns):
            t = sa.table(table, sa.column(column, sa.Text))
            texts = (await s.execute(select(t.c[column]).where(
                t.c[column].contains(value, autoescape=True)))).scalars()
            n = sum(str(text).count(value) for text in texts)
            if n:
                found[(table, column)] = n
    return found


async def test_an_id_inside_a_longer_id_and_a_shared_word_are_left_alone(stack: Stack) -> None:
    """Erasing "wmShort" leaves "wmShortB88" whole, and the erased customer's "88" is not
    taken out of anything but the messages made for them."""
    from guidebot.db.repo.erasure import whole_ids
    from tests.support.commerce import paid, post_settled

    for customer, name in (("wmShort", "短号客户"), ("wmShortB88", "长号客户")):
        await stack.sandbox.simulate_add_contact("acme", userid="lina", external_userid=customer,
                                                 name=name)
    await stack.runtime.drain()
    await customer_writes(stack, "wmShort", "88")
    await customer_writes(stack, "wmShortB88", "88 号还有货吗")
    for order_no, customer in (("PFX-1", "wmShort"), ("PFX-2", "wmShortB88")):
        status, order = await post_settled(stack, paid(order_no, customer=customer))
        assert status == 200 and order["guide"] == "lina", order
    await _guide_deleted_by(stack, "wmShort")
    theirs = await _occurrences(stack, "wmShortB88")
    assert len(theirs) >= 4, theirs  # relations, orders, 微信客服, the outbox …
    said = await _occurrences(stack, "88 号还有货吗")

    status, done = await stack.admin("/customers/wmShort/erase", method="POST")
    assert status == 200, done
    assert await _occurrences(stack, "wmShortB88") == theirs
    assert await _occurrences(stack, "88 号还有货吗") == said
    assert (await stack.admin("/customers/wmShortB88"))[1]["name"] == "长号客户"
    pattern = whole_ids(["wmShort"])
    async with stack.runtime.services.db.read() as s:
        for table, column in await (await s.connection()).run_sync(_text_columns):
            t = sa.table(table, sa.column(column, sa.Text))
            texts = (await s.execute(select(t.c[column]).where(
                t.c[column].contains("wmShort", autoescape=True)))).scalars()
            assert not [x for x in texts if pattern.search(str(x))], (table, column)


async def test_a_customer_still_in_a_group_is_not_erased_until_they_leave(stack: Stack) -> None:
    """The next group sync would store a member again: they leave the group first."""
    await stack.sandbox.simulate_add_contact("acme", userid="lina", external_userid="wmINGROUP",
                                             name="群里的客户")
    await stack.runtime.drain()
    created = await stack.sandbox.create_group("acme", "lina", name="会员福利群",
                                               members=["wmINGROUP"])
    await stack.runtime.drain()
    await _guide_deleted_by(stack, "wmINGROUP")
    status, refused = await stack.admin("/customers/wmINGROUP/erase", method="POST")
    assert status == 409 and refused["code"] == "customer.still_in_groups", refused
    assert "会员福利群" in refused["error"], refused
    assert (await stack.admin("/customers/wmINGROUP"))[1]["name"] == "群里的客户"

    await stack.sandbox.quit_group("acme", str(created["chat_id"]), ["wmINGROUP"])
    await stack.runtime.drain()
    status, done = await stack.admin("/customers/wmINGROUP/erase", method="POST")
    assert status == 200, done
    assert done["counts"].get("group_members") == 1, done
