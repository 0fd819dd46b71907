"""Console fixtures: a SQLite file store per test and the four kinds of console key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from console_harness import Keys, make_keys

from safestack.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'console.db'}")
    yield opened
    opened.close()


@pytest.fixture
def keys(store: Store) -> Keys:
    return make_keys(store)
