"""CLI commands beyond plan, validate and schema. Each module here defines ``register(app)``.

Modules are discovered, so adding a command touches only its own module.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer


def register_all(app: typer.Typer) -> None:
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        module.register(app)
