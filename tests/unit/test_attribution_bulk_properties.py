"""Property: the bulk path records exactly what the per-order path records when it is given the
same orders one by one in paid_at order — rule, guide, evidence, lines, commission, ledger,
tracking touches, learned identities and claimed touches — for any mix of customers known by
external_userid, unionid or openid, touches tied in time, window edges, bindings, tracking
tokens (known or not) and repeated order numbers. Real database, SQLite and PostgreSQL; the
bulk path in this process (one chunk, or chunks of two orders) and through two decision worker
processes taking pieces in turn (chunks of three, pieces of two after a first piece of one),
so chunk and piece boundaries fall everywhere."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from guidebot.commerce import bulk
from guidebot.commerce.attribution import Item
from guidebot.commerce.links import LinkRequest, sign_visit
from guidebot.commerce.schema import CustomerRef, PaidOrder
from guidebot.commerce.statements import order_view
from guidebot.db.engine import Database
from guidebot.db.models import Binding
from guidebot.db.models_commerce import Identity, Touch
from guidebot.db.repo import commerce_ledger
from guidebot.db.repo import commerce_links as links_repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.errors import NotFound
from guidebot.services import Services, build_services
from guidebot.settings import load_settings
from tests.support import commerce as commerce_support
from tests.support.commerce import DB_PROPERTIES
from tests.support.stack import write_config

PAID = datetime(2026, 11, 10, tzinfo=UTC)
WINDOW = timedelta(days=7)
# Few distinct instants, so that ties in time and the exact window edge come up often.
INSTANTS = [PAID - WINDOW - timedelta(seconds=1), PAID - WINDOW, PAID - timedelta(days=3),
            PAID - timedelta(hours=1), PAID, PAID + timedelta(hours=5)]
GUIDES = ("g1", "g2", "g3")
CUSTOMERS = ("wmA", "wmB", "wmC")
# uA is wmA's (a stored identity); uB and oB are learned from orders; uX is no one's.
RUN = itertools.count()
WAYS: dict[str, dict[str, Any]] = {
    "in_process": {"worker": False},
    "in_process_chunks_of_2": {"worker": False, "sizes": bulk.Sizes(chunk=2)},
    "two_workers": {"worker": True,
                    "sizes": bulk.Sizes(chunk=3, piece=2, first_piece=1, workers=2)},
}

who = st.sampled_from([("wmA", None, None), ("wmB", None, None), ("wmC", None, None),
                       (None, "uA", None), (None, "uB", None), ("wmB", "uB", None),
                       (None, None, "oB"), ("wmB", None, "oB"), (None, "uX", None),
                       (None, None, None)])


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    visits = draw(st.lists(st.tuples(st.integers(0, len(GUIDES) - 1), who,
                                     st.sampled_from(INSTANTS)), max_size=8))
    bindings = draw(st.lists(st.tuples(st.sampled_from(CUSTOMERS),
                                       st.integers(0, len(GUIDES) - 1),
                                       st.sampled_from(INSTANTS[:4]),
                                       st.sampled_from([None, *INSTANTS[2:]])), max_size=3))
    orders = draw(st.lists(st.tuples(
        st.sampled_from(["N1", "N2", "N3", "N4", "N5", "N6"]), who,
        st.sampled_from(INSTANTS[1:]), st.sampled_from([None, 0, 1, "unknown"]),
        st.sampled_from(["S01", None]), st.integers(0, 30_000)), min_size=1, max_size=7))
    return {"visits": visits, "bindings": bindings, "orders": orders}


def _who(p: str, ids: tuple[str | None, ...]) -> tuple[str | None, ...]:
    """Identifiers of this example only (examples share a PostgreSQL database)."""
    return tuple(f"{p}{i}" if i else None for i in ids)


async def _seed(services: Services, tenant: Any, scenario: dict[str, Any], p: str) -> list[str]:
    tokens = []
    for guide in GUIDES:
        link = await services.commerce.links.create(tenant, LinkRequest(guide=guide, title="t"))
        tokens.append(str(link["token"]))
    async with services.db.write() as s:
        await links_repo.remember_identity(s, tenant=tenant.id, kind="unionid", value=f"{p}uA",
                                           external_userid=f"{p}wmA", source="test")
        for customer, guide, start, end in scenario["bindings"]:
            s.add(Binding(tenant=tenant.id, external_userid=f"{p}{customer}",
                          guide=GUIDES[guide], started_at=start,
                          ended_at=end if end and end > start else None,
                          end_reason="customer_deleted" if end and end > start else ""))
    for guide, ids, at in scenario["visits"]:
        query = {k: v for k, v in zip(("external_userid", "unionid", "openid"),
                                      _who(p, ids), strict=True) if v}
        query["ts"] = str(int(at.timestamp()))  # signed by the store backend: a touch
        query["sig"] = sign_visit(tenant.order_secret, tokens[guide], query)
        await services.commerce.links.visit(tokens[guide], query, at)
    return tokens


def _orders(scenario: dict[str, Any], tokens: list[str], p: str) -> list[PaidOrder]:
    out = []
    for number, ids, paid_at, tracking, store, amount in scenario["orders"]:
        token = "" if tracking is None else "nosuchtoken" if tracking == "unknown" \
            else tokens[tracking]
        out.append(PaidOrder(f"{p}{number}", paid_at, CustomerRef(*_who(p, ids)), token, store,
                             (Item("SKU1", "beauty", amount), Item("SKU2", "", 999))))
    return out


async def _record(url: str, folder: Path, tenant_id: str, scenario: dict[str, Any],
                  bulk_way: dict[str, Any] | None, p: str) -> dict[str, Any]:
    settings = load_settings(write_config(folder, url))
    tenant = replace(settings.tenant(tenant_id), order_secret="props-order-secret")
    settings = replace(settings, tenants={**settings.tenants, tenant_id: tenant})  # signs visits
    db = Database(url)
    services = build_services(settings, db)
    try:
        tokens = await _seed(services, tenant, scenario, p)
        orders = _orders(scenario, tokens, p)
        if bulk_way is not None:
            await bulk.record_many(db, tenant, orders, services.commerce.clock, **bulk_way)
        else:
            for order in sorted(orders, key=lambda o: o.paid_at):  # stable: input order on ties
                await services.commerce.orders.paid(tenant, order, resolve_remote=False)
        return await _state(services, tenant, tokens, p)
    finally:
        await services.close()
        await db.dispose()


def _named(value: Any, names: dict[str, str], p: str) -> Any:
    """Evidence with database ids left out, tokens named by their guide's position and
    identifiers without the example's prefix (so the two tenants' records compare)."""
    if isinstance(value, dict):
        return {k: _named(v, names, p) for k, v in value.items() if k != "id"}
    if isinstance(value, list | tuple):
        return type(value)(_named(v, names, p) for v in value)
    if isinstance(value, str):
        return names.get(value, value.removeprefix(p))
    return value


async def _state(services: Services, tenant: Any, tokens: list[str], p: str) -> dict[str, Any]:
    names = {t: f"link{n}" for n, t in enumerate(tokens)}
    orders = {}
    for number in ("N1", "N2", "N3", "N4", "N5", "N6"):
        try:
            view = await order_view(services.db, tenant, f"{p}{number}")
        except NotFound:
            continue
        view["attribution"]["evidence"].pop("rule_version")
        orders[number] = {k: _named(view[k], names, p) for k in (
            "customer", "attribution", "lines", "commission_fen", "amount_fen", "tracking")}
        orders[number]["ledger"] = [(e["kind"], e["amount_fen"]) for e in view["ledger"]]
    async with services.db.read() as s:
        touches = sorted(_named((t.token, t.kind, t.external_userid or "", t.unionid or "",
                                 t.openid or "", t.at.isoformat()), names, p)
                         for t in (await s.execute(select(Touch).where(
                             Touch.tenant == tenant.id, Touch.token.in_(tokens)))).scalars())
        identities = sorted(_named((i.kind, i.value, i.external_userid), names, p)
                            for i in (await s.execute(select(Identity).where(
                                Identity.tenant == tenant.id,
                                Identity.value.startswith(p)))).scalars())
        entries = [e for e in await commerce_ledger.entries(s, tenant=tenant.id)
                   if (e.order_no or "").startswith(p)]
        customers = [c for c in CUSTOMERS if await contacts_repo.get_customer(
            s, tenant=tenant.id, external_userid=f"{p}{c}")]
    return {"orders": orders, "touches": touches, "identities": identities,
            "entries": len(entries), "customers": customers}


async def _compare(url: str, folder: Path, scenario: dict[str, Any], way: str) -> None:
    run = next(RUN)
    (folder / f"one{run}").mkdir()
    (folder / f"bulk{run}").mkdir()
    one = await _record(url, folder / f"one{run}", "acme", scenario, None, f"r{run}-")
    many = await _record(url, folder / f"bulk{run}", "beta", scenario, WAYS[way], f"r{run}-")
    assert many["orders"] == one["orders"]
    assert many == one


migrated = commerce_support.migrated  # the fixture


@pytest.mark.parametrize("way", sorted(WAYS))
@DB_PROPERTIES
@given(scenario=scenarios())
def test_bulk_records_what_the_per_order_path_records(migrated: str, tmp_path: Path, way: str,
                                                      scenario: dict[str, Any]) -> None:
    asyncio.run(_compare(migrated, tmp_path, scenario, way))
