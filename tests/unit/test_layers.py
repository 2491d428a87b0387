"""The layer rules in CONTRIBUTING.md, enforced: every import in every module, lazy ones included.

Read statically (the AST), so an import inside a function, which a runtime check would miss until that
function runs, breaks the rule just the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sevtool"

# layer -> the sevtool layers it may import (itself included). Top-level modules are layers of their own.
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "core": {"core", "errors"},
    "settings": {"core", "errors", "targets"},
    "gcpause": set(),
    "store": {"store", "core", "errors"},
    "targets": {"targets", "core", "errors"},
    "services": {"services", "store", "targets", "evidence", "describe", "core", "errors", "settings", "gcpause"},
    "evidence": {"evidence", "core", "errors"},
    "cli": {"cli", "services", "describe", "core", "errors", "settings", "tui", "demo", "gcpause"},
    "tui": {"tui", "services", "describe", "core", "errors", "settings"},
    "describe": {"core"},
    "pgtemp": {"errors"},
    "scenario": {"core"},
    "demo": {"demo", "services", "core", "errors", "settings", "pgtemp", "scenario", "tui"},
    "bench": {"bench", "pgtemp", "scenario", "services", "settings"},
    "__main__": {"cli"},
    "__init__": set(),
}

# layer -> third-party packages it must not import: the domain stays pure, the TUI never talks SQL or HTTP.
MUST_NOT_IMPORT: dict[str, set[str]] = {
    "core": {"textual", "rich", "sqlmodel", "sqlalchemy", "httpx", "psycopg", "typer"},
    "targets": {"textual", "rich", "sqlmodel", "sqlalchemy", "typer"},
    "store": {"textual", "rich", "httpx", "typer"},
    "services": {"textual", "typer"},
    "evidence": {"textual", "rich", "sqlmodel", "sqlalchemy", "typer"},
    "describe": {"textual", "rich", "sqlmodel", "sqlalchemy", "httpx", "psycopg", "typer"},
    "tui": {"sqlmodel", "sqlalchemy", "psycopg", "httpx", "typer"},
    "cli": {"sqlmodel", "sqlalchemy", "psycopg", "httpx"},
}


def _layer(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute module an import statement names, with its line."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append((node.lineno, node.module))
    return names


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_layer_has_a_rule():
    unknown = sorted({_layer(p) for p in MODULES} - MAY_IMPORT.keys())
    assert not unknown, f"add the layer(s) {unknown} to MAY_IMPORT here and to CONTRIBUTING.md"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_keeps_to_its_layer(path: Path):
    layer = _layer(path)
    broken = []
    for line, module in _imports(path):
        top, _, rest = module.partition(".")
        if top == "sevtool" and rest:
            target = rest.split(".")[0]
            if target not in MAY_IMPORT.get(layer, set()) | {layer}:
                broken.append(f"{line}: {layer} imports {module}")
        elif top in MUST_NOT_IMPORT.get(layer, set()):
            broken.append(f"{line}: {layer} imports {module}")
    assert not broken, f"{path.relative_to(PACKAGE.parent)} breaks the layer rules:\n" + "\n".join(broken)


def test_the_rules_can_fail(tmp_path):
    """A core module importing the store or Textual is caught (the rule is not vacuous)."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from sevtool.store import models\n    import textual\n")
    found = [module for _, module in _imports(bad)]
    assert found == ["sevtool.store", "textual"]
    assert "store" not in MAY_IMPORT["core"] and "textual" in MUST_NOT_IMPORT["core"]
