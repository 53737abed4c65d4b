"""The web layer uses only the public API of clipbranches (as the terminal UI does): the package's
top level and its public subpackage ``clipbranches.learn`` (the model registry), besides itself."""

from __future__ import annotations

import ast
from pathlib import Path

import clipbranches

WEB = Path(clipbranches.__file__).parent / "web"
ALLOWED = ("clipbranches", "clipbranches.learn")


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [m for m in found if m == "clipbranches" or m.startswith("clipbranches.")]


def test_web_modules_import_only_the_public_api() -> None:
    modules = sorted(WEB.glob("*.py"))
    assert len(modules) >= 8
    for module in modules:
        for name in _imports(module):
            assert name in ALLOWED or name.startswith("clipbranches.web"), f"{module.name} imports {name}"


def test_what_they_import_from_the_top_level_is_public() -> None:
    for module in sorted(WEB.glob("*.py")):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "clipbranches":
                for alias in node.names:
                    assert alias.name in clipbranches.__all__, f"{module.name} imports {alias.name}"
