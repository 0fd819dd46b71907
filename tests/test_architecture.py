"""The architecture doc's rules that import-linter cannot express, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import safestack

ROOT = Path(safestack.__file__).parent


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def private_imports(module: str, source: str) -> list[str]:
    """`from safestack.<other package>... import _name` statements in one module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("safestack"):
            continue
        assert node.module is not None
        if _package(node.module) == _package(module):
            continue
        found += [
            f"{node.module}.{alias.name}"
            for alias in node.names
            if alias.name.startswith("_") and not alias.name.startswith("__")
        ]
    return found


def test_no_module_imports_a_private_name_from_another_package() -> None:
    offences = []
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        offences += [f"{module}: {name}" for name in private_imports(module, path.read_text())]
    assert offences == []


def test_private_imports_are_found() -> None:
    source = "from safestack.judge.detectors.rules import _PII, PII_PATTERNS\n"
    assert private_imports("safestack.data.filters.redact", source) == [
        "safestack.judge.detectors.rules._PII"
    ]
    # Inside one package, private helpers are the package's own business.
    assert private_imports("safestack.judge.judge", source) == []
