"""Storage: SQLModel tables (models*.py), the engine and the query functions in repo/."""

from __future__ import annotations

import importlib
import pkgutil


def load_models() -> None:
    """Import guidebot.db.models and every guidebot.db.models_<area> module."""
    for module in pkgutil.iter_modules(__path__):
        if module.name == "models" or module.name.startswith("models_"):
            importlib.import_module(f"{__name__}.{module.name}")
