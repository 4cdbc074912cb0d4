"""The dependency rules of DESIGN §3, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEB_BOUNDARY = ("guidebot/app.py", "guidebot/server.py", "guidebot/demo.py", "guidebot/cli.py",
                "guidebot/wecom/", "guidebot/web/", "guidebot/sandbox/",
                "guidebot/demo_commerce.py", "guidebot/demo_chat.py", "guidebot/demo_sop.py",
                "guidebot/demo_stats.py", "guidebot/demo_materials.py")


def _imports(path: Path, *, members: bool = False) -> set[str]:
    """The modules a file imports; with `members`, `from m import x` counts as `m.x`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if members:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
    return names


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _uses(names: set[str], package: str) -> bool:
    return any(n == package or n.startswith(package + ".") for n in names)


def test_only_wecom_imports_wechatpy() -> None:
    offenders = [_rel(p) for p in _sources("guidebot") + _sources("handlers")
                 if _uses(_imports(p), "wechatpy") and not _rel(p).startswith("guidebot/wecom/")]
    assert offenders == []


def test_only_llm_imports_openai() -> None:
    offenders = [_rel(p) for p in _sources("guidebot") + _sources("handlers")
                 if _uses(_imports(p), "openai") and not _rel(p).startswith("guidebot/llm/")]
    assert offenders == []


def test_services_import_no_aiohttp() -> None:
    offenders = [_rel(p) for p in _sources("guidebot")
                 if _uses(_imports(p), "aiohttp") and not _rel(p).startswith(WEB_BOUNDARY)]
    assert offenders == []


def test_handlers_contain_no_sql_and_see_no_platform() -> None:
    for path in _sources("handlers"):
        names = _imports(path)
        assert not _uses(names, "sqlalchemy") and not _uses(names, "sqlmodel"), _rel(path)
        assert not _uses(names, "guidebot.db"), _rel(path)
        assert not _uses(names, "guidebot.wecom"), _rel(path)
        assert not _uses(names, "aiohttp"), _rel(path)


def test_sql_lives_in_the_repo_layer() -> None:
    """Services may name the session type (they own transactions) but build no SQL."""

    def builds_sql(names: set[str]) -> bool:
        return any(_uses({n}, "sqlalchemy") and n != "sqlalchemy.ext.asyncio" for n in names)

    offenders = [_rel(p) for p in _sources("guidebot")
                 if builds_sql(_imports(p)) and not _rel(p).startswith("guidebot/db/")]
    assert offenders == []


def test_only_the_app_factory_loads_handlers() -> None:
    offenders = [_rel(p) for p in _sources("guidebot")
                 if _uses(_imports(p), "handlers") and _rel(p) != "guidebot/app.py"]
    assert offenders == []


def test_every_handler_file_has_one_router_listed_in_order() -> None:
    import handlers

    files = {p.stem for p in (ROOT / "handlers").glob("*.py") if p.stem != "__init__"}
    assert {r.name for r in handlers.ROUTERS} == files


def _package(module: str) -> str:
    """guidebot.sop.engine → guidebot.sop; guidebot.app → guidebot.app."""
    return ".".join(module.split(".")[:2])


def _runtime_imports(path: Path) -> set[str]:
    """Imports that run (those under `if TYPE_CHECKING:` only name types)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _sources("guidebot"):
        if "migrations" in path.parts:
            continue
        source = _package(".".join(path.relative_to(ROOT).with_suffix("").parts))
        targets = {_package(n) for n in _runtime_imports(path) if n.startswith("guidebot.")}
        known = {t for t in targets if (ROOT / t.replace(".", "/")).exists()
                 or (ROOT / (t.replace(".", "/") + ".py")).exists()}
        graph.setdefault(source, set()).update(known - {source})
    return graph


def test_no_package_import_cycles() -> None:
    graph = _package_graph()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for nxt in graph.get(node, ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    cycles = sorted(f"{a} → {b}" for a, targets in graph.items() for b in targets
                    if reaches(b, a))
    assert cycles == []


def test_web_reaches_the_engine_only_through_services() -> None:
    """Views call services; they build no SQL, touch no repo and speak no WeCom."""
    for path in _sources("guidebot/web"):
        names = _imports(path)
        assert not _uses(names, "guidebot.db"), _rel(path)
        assert not _uses(names, "guidebot.wecom"), _rel(path)
        assert not _uses(names, "sqlalchemy"), _rel(path)


def test_the_composition_root_builds_the_graph_without_mutation() -> None:
    """build_services assigns no attribute of anything it built (no wiring afterwards), and
    the container is frozen."""
    import dataclasses

    from guidebot.services import Services

    tree = ast.parse((ROOT / "guidebot/services.py").read_text(encoding="utf-8"))
    build = next(n for n in ast.walk(tree)
                 if isinstance(n, ast.FunctionDef) and n.name == "build_services")
    assigned = [ast.unparse(t) for n in ast.walk(build)
                if isinstance(n, ast.Assign | ast.AugAssign)
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                if isinstance(t, ast.Attribute | ast.Subscript)]
    updates = [ast.unparse(n) for n in ast.walk(build) if isinstance(n, ast.Call)
               and isinstance(n.func, ast.Attribute) and n.func.attr in ("update", "append")]
    assert (assigned, updates) == ([], [])
    assert Services.__dataclass_params__.frozen  # type: ignore[attr-defined]
    optional = [f.name for f in dataclasses.fields(Services) if "None" in str(f.type)]
    assert optional == []


def test_wecom_error_codes_stay_inside_the_adapter() -> None:
    """Outside guidebot/wecom/ (and the sandbox, which plays WeCom) errors are types, not
    numbers: no `errcode` compared with a literal."""
    offenders = []
    for path in _sources("guidebot") + _sources("handlers"):
        rel = _rel(path)
        if rel.startswith(("guidebot/wecom/", "guidebot/sandbox/")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and "errcode" in ast.unparse(node) and any(
                    isinstance(c, ast.Constant) and isinstance(c.value, int)
                    for c in [node.left, *node.comparators]):
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


def test_an_add_is_traced_from_http_to_the_database_in_six_files() -> None:
    """webhook → app (accept, process) → inbox → handler → relations service → repo."""
    story = (ROOT / "handlers/contacts.py").read_text(encoding="utf-8")
    assert "relations.record_add" in story and "welcome.greet" in story
    relations = _imports(ROOT / "guidebot/contacts/relations.py")
    assert "guidebot.db.repo" in relations or any(n.startswith("guidebot.db.repo")
                                                  for n in relations)
    app = (ROOT / "guidebot/app.py").read_text(encoding="utf-8")
    assert "CallbackViews" in app and "InboxProcessor" in app and "router.dispatch" in app


def test_the_lanes_are_a_leaf_every_layer_may_use() -> None:
    """guidebot/lanes.py (who goes first: the writer lock's lanes, the loop's turns) is used
    by the database, the WeCom adapter and the inbox alike, so it imports none of them."""
    names = _imports(ROOT / "guidebot/lanes.py")
    assert not _uses(names, "guidebot"), sorted(names)
    assert not _uses(names, "handlers"), sorted(names)


def test_burst_detection_is_a_leaf_noted_by_the_webhooks_and_read_by_the_statistics() -> None:
    """guidebot/bursts.py counts arrivals; it imports nothing of guidebot. The callback and
    order webhooks note arrivals and the statistics service holds the counter (its job waits
    out a burst); nothing else reaches into it."""
    assert not _uses(_imports(ROOT / "guidebot/bursts.py"), "guidebot")
    noting = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "guidebot").rglob("*.py")
                    if "arrivals.note()" in p.read_text(encoding="utf-8"))
    assert noting == ["guidebot/app.py", "guidebot/web/webhooks/orders.py"], noting
    holders = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "guidebot").rglob("*.py")
                     if "guidebot.bursts" in p.read_text(encoding="utf-8"))
    assert holders == ["guidebot/stats/service.py"], holders


def test_which_requests_work_on_the_loop_is_decided_by_the_web_layer_alone() -> None:
    """guidebot/web/request_lanes.py sorts requests by route into the lanes; it knows no
    service, repository or database, only the lanes and aiohttp, and the app is its one
    user (with the hot routes named where the graph is built)."""
    taken = _imports(ROOT / "guidebot/web/request_lanes.py", members=True)
    assert {n for n in taken if _uses({n}, "guidebot")} == {"guidebot.lanes"}, sorted(taken)
    users = [p for p in (ROOT / "guidebot").rglob("*.py")
             if "request_lanes" in p.read_text(encoding="utf-8")
             and p.name != "request_lanes.py"]
    assert [p.relative_to(ROOT).as_posix() for p in users] == ["guidebot/app.py"]
    assert "HOT_ROUTES" in (ROOT / "guidebot/app.py").read_text(encoding="utf-8")
