"""The dependency rules of DESIGN §3, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEB_BOUNDARY = ("guidebot/app.py", "guidebot/server.py", "guidebot/demo.py", "guidebot/cli.py",
                "guidebot/wecom/", "guidebot/web/", "guidebot/sandbox/",
                "guidebot/demo_commerce.py")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
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
