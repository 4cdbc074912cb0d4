"""Message text templates: jinja2, sandboxed, only whitelisted placeholders."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

# The fixed list of placeholders a message may use (DESIGN §5.5).
PLACEHOLDERS: Mapping[str, frozenset[str]] = {
    "customer": frozenset({"name"}),
    "guide": frozenset({"name", "userid"}),
    "store": frozenset({"name"}),
    # A guide task or reminder (SOP steps and drops): what the guide is asked to confirm.
    "task": frozenset({"title", "count", "customers"}),
}

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                            keep_trailing_newline=False)


def unknown_placeholders(text: str) -> list[str]:
    """Placeholders in `text` outside the whitelist; raises TemplateSyntaxError on bad syntax."""
    tree = _env.parse(text)
    bad: list[str] = []
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in PLACEHOLDERS:
            bad.append(node.name)
    for attr in tree.find_all(nodes.Getattr):
        if isinstance(attr.node, nodes.Name) and attr.node.name in PLACEHOLDERS \
                and attr.attr not in PLACEHOLDERS[attr.node.name]:
            bad.append(f"{attr.node.name}.{attr.attr}")
    return sorted(set(bad))


@functools.lru_cache(maxsize=512)
def _compiled(text: str) -> Template:
    return _env.from_string(text)


def render(text: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """Render with every whitelisted placeholder defined (empty string when unknown)."""
    context = {name: {field: values.get(name, {}).get(field, "") for field in fields}
               for name, fields in PLACEHOLDERS.items()}
    return _compiled(text).render(**context).strip()


__all__ = ["PLACEHOLDERS", "TemplateSyntaxError", "render", "unknown_placeholders"]
