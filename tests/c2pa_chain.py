"""Test-only certificate chains, made at test time by scripts/make_test_certs.py (nothing private
is committed). Imported by name from the test folders."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_test_certs.py"


def certs_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_test_certs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_chain(out: Path, **options: object) -> dict[str, Path]:
    """root.pem, chain.pem, signer.key (and expired-* with expired=True) in `out`."""
    paths: dict[str, Path] = certs_script().make_chain(out, **options)
    return paths
