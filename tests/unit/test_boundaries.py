"""The boundaries the design promises, checked on the source itself.

- The engine imports nothing but the standard library and `assistant.engine…`.
- No channel imports `assistant.booking`: channels reach the world through run_turn.
- docs/flows.md is the diagram generated from the flow table, not drawn by hand.

Imports are read with `ast`, so an import inside a function counts as much as one at
the top, and nothing is executed to find them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from assistant.engine import flow

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "assistant" / "engine"
CHANNELS = ROOT / "assistant" / "channels"
FLOWS_DOC = ROOT / "docs" / "flows.md"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in `source`, relative ones resolved.
    `from a import b` also yields "a.b", since b may be a module."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and _is_dynamic_import(node.func)):
            found.append((node.lineno, node.args[0].value))
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def is_stdlib(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names


def engine_violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    bad = []
    for line, name in imported_modules(source, module, is_package=is_package):
        if is_stdlib(name) or name == "assistant.engine" or name.startswith("assistant.engine."):
            continue
        # `from assistant import engine` names the engine package itself.
        if name == "assistant":
            continue
        bad.append(f"{module}:{line} imports {name}")
    return bad


def booking_imports(source: str, module: str, *, is_package: bool = False) -> list[str]:
    return [f"{module}:{line} imports {name}"
            for line, name in imported_modules(source, module, is_package=is_package)
            if name == "assistant.booking" or name.startswith("assistant.booking.")]


def python_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
    assert files, f"no Python files under {folder}"
    return files


@pytest.mark.parametrize("path", python_files(ENGINE), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_imports_only_the_standard_library_and_itself(path):
    source = path.read_text(encoding="utf-8")
    assert engine_violations(source, module_name(path), is_package=path.name == "__init__.py") == []


@pytest.mark.parametrize("path", python_files(CHANNELS), ids=lambda p: str(p.relative_to(ROOT)))
def test_channels_do_not_import_booking(path):
    source = path.read_text(encoding="utf-8")
    assert booking_imports(source, module_name(path), is_package=path.name == "__init__.py") == []


def test_engine_covers_every_engine_module():
    names = {module_name(p) for p in python_files(ENGINE)}
    assert {"assistant.engine", "assistant.engine.flow", "assistant.engine.parse",
            "assistant.engine.steps", "assistant.engine.steps.book"} <= names


@pytest.mark.parametrize("source", [
    "import sqlalchemy",
    "from babel import dates",
    "from assistant.booking import service",
    "from assistant import config",
    "import assistant.i18n",
    "def f():\n    from flask import request\n",
    "from ...i18n import Catalogs",
    "from ... import bootstrap",
    "import importlib\nimportlib.import_module('twilio.rest')",
    "__import__('telegram')",
])
def test_engine_check_catches_an_outside_import(source):
    assert engine_violations(source, "assistant.engine.steps.book")


@pytest.mark.parametrize("source", [
    "import json, re\nfrom datetime import date",
    "from zoneinfo import ZoneInfo",
    "from assistant.engine.flow import Step",
    "from . import flow",
    "from .base import Go",
    "from ..messages import msg",
    "from assistant.engine import ports",
    "from __future__ import annotations",
])
def test_engine_check_allows_stdlib_and_engine_imports(source):
    assert engine_violations(source, "assistant.engine.steps.book") == []


@pytest.mark.parametrize("source", [
    "import assistant.booking",
    "import assistant.booking.service as service",
    "from assistant.booking.models import Slot",
    "from assistant import booking",
    "from ..booking import service",
    "from ..booking.uow import UnitOfWork",
    "def f():\n    from assistant.booking import service\n",
])
def test_channel_check_catches_a_booking_import(source):
    assert booking_imports(source, "assistant.channels.sms")


def test_channel_check_allows_the_engine_and_i18n():
    source = ("from assistant.engine.messages import Ask\nfrom assistant.i18n import Catalogs\n"
              "from assistant.channels.base import Rendered\nfrom .render import Renderer\n")
    assert booking_imports(source, "assistant.channels.sms") == []


def test_flow_diagram_in_docs_is_generated_from_the_table():
    assert FLOWS_DOC.is_file(), "run: python -m assistant.engine.flow > docs/flows.md"
    assert FLOWS_DOC.read_text(encoding="utf-8") == flow.mermaid()


def test_flow_diagram_names_every_step_and_move():
    diagram = flow.mermaid()
    for step, spec in flow.TRANSITIONS.items():
        assert f'    {step}["{step}: {spec.purpose}"]' in diagram
        for target in spec.next:
            assert f"    {step} --> {target}" in diagram
