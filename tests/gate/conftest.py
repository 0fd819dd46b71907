"""Gate fixtures: an empty SQLite store per test, and signing keys for the three roles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from safestack.gate.decisions import create_key
from safestack.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path}/gate.db") as opened:
        yield opened


@pytest.fixture
def keys(store: Store, tmp_path: Path) -> dict[str, Path]:
    """ana (advisory), lee (leadership), bo (board): their private key files."""
    files = {}
    for person, role in (("ana", "advisory"), ("lee", "leadership"), ("bo", "board")):
        files[person] = tmp_path / "keys" / f"{person}.key"
        create_key(store, person, role, files[person])
    return files
