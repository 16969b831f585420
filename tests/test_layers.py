"""The layers of lpdeploy, as packages, and the one direction their imports run.

``lpdeploy/__init__.py`` says the layering in prose; this test is what keeps it
true. The core is also kept pure by ruff (``lpdeploy/core/ruff.toml`` bans
Buildbot, Twisted and subprocess there); this test checks the same without ruff,
so a deleted lint config cannot quietly lift the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lpdeploy"

# which lpdeploy layers each layer may import (besides itself); anything else is an arrow the wrong way
MAY_IMPORT = {
    "core": set(),
    "stores": {"core"},
    "git": {"core"},
    "facts": {"core", "git", "stores"},
    "master": {"core", "git", "stores", "facts"},
    "web": {"core", "git", "stores", "facts"},
    "configurator": {"core", "git", "stores", "facts", "master", "web"},
    "tools": {"core", "git"},  # the CLI and make run never load the master's code
}
PURE_BANNED = ("buildbot", "twisted", "subprocess")


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else path.stem


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [f"{node.module}.{a.name}" if node.module == "lpdeploy" else node.module for a in node.names]
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path: Path) -> None:
    layer = _layer(path)
    assert layer in MAY_IMPORT, f"{path}: a module outside the known layers; add its layer to the table and the docs"
    wrong = {m for m in _imports(path)
             if m.startswith("lpdeploy.") and m.split(".")[1] not in MAY_IMPORT[layer] | {layer, "__version__"}}
    assert not wrong, f"{layer} may import only {sorted(MAY_IMPORT[layer])}; {path.name} imports {sorted(wrong)}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_the_core_is_pure(path: Path) -> None:
    impure = {m for m in _imports(path) if m.split(".")[0] in PURE_BANNED}
    assert not impure, f"lpdeploy/core/{path.name} imports {sorted(impure)}"


def test_the_lint_rule_bans_the_same() -> None:
    config = (PACKAGE / "core" / "ruff.toml").read_text()
    assert "TID251" in config
    for name in PURE_BANNED:
        assert f'"{name}".msg' in config


def test_the_readmes_layout_names_every_module() -> None:
    """README.rst's Layout section is the map a newcomer reads: a module it does not name is a gap in it."""
    readme = (PACKAGE.parent / "README.rst").read_text()
    layout = readme[readme.index("\nLayout\n------\n"):]
    layout = layout[:layout.index("``bench/`` holds")]
    missing = sorted(str(p.relative_to(PACKAGE)) for p in MODULES
                     if p.name != "__init__.py" and p.name not in layout)
    assert not missing, f"README.rst's Layout section does not name {missing}"
