"""`guidebot demo`: the demo brand end to end on SQLite and an in-process WeCom sandbox."""

from __future__ import annotations

import asyncio
import importlib
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from guidebot.app import RUNTIME, create_app
from guidebot.db.migrate import upgrade_async
from guidebot.db.repo import contacts as contacts_repo
from guidebot.sandbox import SANDBOX_KEY, create_sandbox_app
from guidebot.server import bound_socket, start, start_on
from guidebot.services import Services
from guidebot.settings import Settings

STORE_TAG = "门店扫码"
CAMPAIGN_TAG = "双11活动"
# The demo's own admin token: the demo runs against its sandbox only, so the printed commands
# work as shown and the config's real tokens are never printed.
DEMO_ADMIN_TOKEN = "demo-admin-token"
# and its SaaS operator's token, so the operator's usage page across tenants can be tried too
DEMO_OPERATOR_TOKEN = "demo-operator-token"


def _out(line: str = "") -> None:
    print(line, flush=True)


def _brand(settings: Settings) -> dict[str, Any]:
    return tomllib.loads((settings.content_library / "demo" / "brand.toml").read_text("utf-8"))


def _demo_settings(settings: Settings, db_url: str, sandbox_port: int,
                   bot_port: int) -> Settings:
    base = f"http://127.0.0.1:{sandbox_port}/cgi-bin/"
    tenants = {tid: replace(t, api_base=base, admin_token=DEMO_ADMIN_TOKEN)
               for tid, t in settings.tenants.items()}
    # the links guidebot sends (a guide's task page, the sidebar's card cover) name this
    # guidebot, not the config's public_url
    server = replace(settings.server, operator_token=DEMO_OPERATOR_TOKEN,
                     public_url=f"http://127.0.0.1:{bot_port}")
    return replace(settings, database_url=db_url, tenants=tenants, server=server,
                   database_url_source="the demo's workdir")


def demo_external_userid(index: int) -> str:
    """The demo's customers get the same ids on every run (the sandbox would draw random
    ones), so repeated runs print the same story."""
    return f"wmDemoCustomer{index:02d}"


def _directory(settings: Settings, tenant: str) -> dict[str, Any]:
    """The demo brand's stores and guides as the sandbox's address book: one department per
    store under the corp's root (content_library/stores.toml maps them to S01, S02)."""
    brand = _brand(settings)
    department = {s["id"]: s["department"] for s in brand["stores"]}
    return {"departments": [{"id": 1, "name": tenant, "parentid": 0}, *[
                {"id": s["department"], "name": s["name"], "parentid": 1}
                for s in brand["stores"]]],
            "members": [{"userid": g["userid"], "name": g["name"],
                         "department": [department[g["store"]]]} for g in brand["guides"]]}


async def _seed(services: Services, tenant: str, brand: dict[str, Any]) -> None:
    async with services.db.write() as s:
        for store in brand["stores"]:
            await contacts_repo.ensure_store(s, tenant=tenant, store_id=store["id"],
                                             name=store["name"])
        for guide in brand["guides"]:
            await contacts_repo.ensure_guide(s, tenant=tenant, userid=guide["userid"],
                                             store_id=guide["store"], name=guide["name"])


async def _channel_codes(services: Services, tenant: str,
                         brand: dict[str, Any]) -> dict[tuple[str, str], Any]:
    await services.tags.sync(tenant)
    codes = {}
    for guide in brand["guides"]:
        codes[(guide["userid"], "")] = await services.channels.create(
            tenant, guide=guide["userid"], store=guide["store"], tags=[STORE_TAG])
    campaign_guides = {c["guide"] for c in brand["customers"] if c.get("campaign")}
    for userid in sorted(campaign_guides):
        guide = next(g for g in brand["guides"] if g["userid"] == userid)
        codes[(userid, "double11")] = await services.channels.create(
            tenant, guide=userid, store=guide["store"], campaign="double11",
            tags=[CAMPAIGN_TAG], welcome_message="welcome_double11")
    return codes


async def _customers_add(sandbox: Any, tenant: str, brand: dict[str, Any],
                         codes: dict[tuple[str, str], Any],
                         settle: Callable[[], Awaitable[None]]) -> list[dict[str, Any]]:
    """Each add is processed before the next (`settle`): the same order on every run."""
    added = []
    for index, customer in enumerate(brand["customers"], start=1):
        code = codes[(customer["guide"], customer.get("campaign", ""))]
        result = await sandbox.simulate_add_contact(
            tenant, config_id=code.config_id, name=customer["name"],
            external_userid=demo_external_userid(index))
        await settle()
        added.append({**customer, **result})
        if customer.get("also_adds"):
            second = codes[(customer["also_adds"], "")]
            await sandbox.simulate_add_contact(
                tenant, config_id=second.config_id, external_userid=result["external_userid"],
                name=customer["name"])
            await settle()
    return added


async def _get_json(url: str, token: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(
            url, headers={"Authorization": f"Bearer {token}"}) as resp:
        return await resp.json()


def _report(added: list[dict[str, Any]], state: dict[str, Any],
            views: dict[str, dict[str, Any]]) -> None:
    welcomes = {(w["external_userid"], w["userid"]): w for w in state["welcome_messages"]}
    _out("Customers who scanned a guide's channel code:")
    for customer in added:
        view = views[customer["external_userid"]]
        channel = view["channel"] or {}
        _out(f"  {customer['name']} ({customer['external_userid']}) scanned {customer['guide']}'s"
             f" code (state {customer['state']}, store {channel.get('store')}, campaign "
             f"{channel.get('campaign') or '-'})")
        for follow in view["guides"]:
            welcome = welcomes.get((customer["external_userid"], follow["userid"]), {})
            text = str(welcome.get("text") or "").splitlines()
            _out(f"    follows {follow['userid']} ({follow['status']}); welcome: "
                 f"{text[0] if text else '(none)'}")
        _out(f"    exclusive guide: {view['exclusive_guide']}; tags: "
             f"{', '.join(view['tags']) or '-'}")


async def run_demo(settings: Settings, *, workdir: str, serve: bool = False, port: int = 0,
                   sandbox_port: int = 0, again: str = "guidebot demo --serve") -> int:
    """The story; then, with `serve`, its guidebot (console included), sandbox and database
    stay up until Ctrl-C; without, it prints `again`: the command that does."""
    folder = Path(workdir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    db_file = folder / "demo.db"
    for stale in folder.glob("demo.db*"):
        stale.unlink()
    db_url = f"sqlite+aiosqlite:///{db_file}"
    await upgrade_async(db_url)
    tenant = "demo" if "demo" in settings.tenants else next(iter(settings.tenants))
    sandbox_app = create_sandbox_app(settings)
    sandbox_runner, sandbox_port = await start(sandbox_app, "127.0.0.1", sandbox_port)
    await sandbox_app[SANDBOX_KEY].set_directory(tenant, _directory(settings, tenant),
                                                 deliver=False)
    # the demo's files (pictures guides contribute) stay in its workdir
    bot_socket = bound_socket("127.0.0.1", port)
    bot_port = int(bot_socket.getsockname()[1])
    demo_settings = replace(_demo_settings(settings, db_url, sandbox_port, bot_port),
                            data_dir=folder / "data")
    try:
        app = create_app(demo_settings, start_jobs=False)
    except BaseException:
        bot_socket.close()
        raise
    bot_runner = await start_on(app, bot_socket)
    sandbox = sandbox_app[SANDBOX_KEY]
    sandbox.set_callback_base(f"http://127.0.0.1:{bot_port}")
    try:
        await _story(app, sandbox, tenant, demo_settings, bot_port, sandbox_port, db_file)
        if serve:
            guide = _brand(settings)["guides"][0]["userid"]
            _serving(tenant, guide, bot_port, sandbox_port, db_file)
            await asyncio.Event().wait()  # until Ctrl-C
        else:
            _hints(db_file, again)
    finally:
        await bot_runner.cleanup()
        await sandbox_runner.cleanup()
    return 0


@dataclass
class DemoContext:
    """What a later chapter of the story (SOP, commerce, …) gets to work with."""

    app: Any
    sandbox: Any
    tenant: str
    settings: Settings
    bot_url: str
    sandbox_url: str
    customers: list[dict[str, Any]]
    out: Callable[[str], None] = _out


# Modules with `async def story(ctx: DemoContext) -> None`, run in order after contacts.
CHAPTERS: tuple[str, ...] = ("guidebot.demo_commerce", "guidebot.demo_chat",
                              "guidebot.demo_sop", "guidebot.demo_materials",
                              "guidebot.demo_groups", "guidebot.demo_stats")


async def _chapters(ctx: DemoContext) -> None:
    for area in CHAPTERS:
        _out()
        await importlib.import_module(area).story(ctx)


async def _story(app: Any, sandbox: Any, tenant: str, settings: Settings, bot_port: int,
                 sandbox_port: int, db_file: Path) -> None:
    services: Services = app[RUNTIME].services
    brand = _brand(settings)
    _out(f"guidebot demo — tenant {tenant!r}, WeCom sandbox on :{sandbox_port}, "
         f"guidebot on :{bot_port}")
    await _seed(services, tenant, brand)
    _out(f"Seeded {len(brand['stores'])} stores and {len(brand['guides'])} guides.")
    codes = await _channel_codes(services, tenant, brand)
    _out(f"Created {len(codes)} channel codes (add_contact_way), e.g. state "
         f"{next(iter(codes.values())).state!r}.")
    added = await _customers_add(sandbox, tenant, brand, codes, app[RUNTIME].drain)
    admin = settings.tenant(tenant).admin_token
    base = f"http://127.0.0.1:{bot_port}/api/v1/{tenant}"
    views = {c["external_userid"]: await _get_json(f"{base}/customers/{c['external_userid']}",
                                                   admin) for c in added}
    state = await _get_json(f"http://127.0.0.1:{sandbox_port}/_sandbox/{tenant}/state", "")
    _out()
    _report(added, state, views)
    await _chapters(DemoContext(app, sandbox, tenant, settings, f"http://127.0.0.1:{bot_port}",
                                f"http://127.0.0.1:{sandbox_port}", added))
    calls = await _get_json(f"http://127.0.0.1:{sandbox_port}/_sandbox/calls", "")
    paths = [c["path"] for c in calls["calls"]]
    _out()
    _out(f"WeCom calls made: {len(paths)} — send_welcome_msg ×"
         f"{paths.count('externalcontact/send_welcome_msg')}, mark_tag ×"
         f"{paths.count('externalcontact/mark_tag')}, externalcontact/get ×"
         f"{paths.count('externalcontact/get')}")


def _hints(db_file: Path, again: str) -> None:
    _out()
    _out("Where to look next:")
    _out(f"  database:      {db_file}")
    _out(f"  the console on this story's data: {again}")
    _out("    (the same story, then its guidebot, sandbox and database stay up until Ctrl-C; "
         "it prints where to sign in)")
    _out("  content:       content_library/messages/*.toml (welcome texts), tags.toml")


def _serving(tenant: str, guide: str, bot_port: int, sandbox_port: int, db_file: Path) -> None:
    bot, sandbox = f"http://127.0.0.1:{bot_port}", f"http://127.0.0.1:{sandbox_port}"
    _out()
    _out("Serving until Ctrl-C:")
    _out(f"  guidebot:      {bot} (callback {bot}/wecom/{tenant}/callback)")
    _out(f"  sandbox:       {sandbox}/cgi-bin/")
    _out(f"  database:      {db_file}")
    _out(f"  console:       {bot}/console/login  (tenant {tenant}, admin token "
         f"{DEMO_ADMIN_TOKEN})")
    _out(f"  operator:      {bot}/operator/login  (operator token {DEMO_OPERATOR_TOKEN}: "
         "usage across tenants)")
    _out(f"  admin API:     curl -H 'Authorization: Bearer {DEMO_ADMIN_TOKEN}' "
         f"{bot}/api/v1/{tenant}/guides")
    _out(f"  a new add:     curl -X POST -d '{{\"userid\": \"{guide}\"}}' "
         f"{sandbox}/_sandbox/{tenant}/simulate/add_contact")
    _out(f"  what WeCom saw: curl {sandbox}/_sandbox/{tenant}/state")
    _out(f"  metrics:       curl {bot}/metrics")
