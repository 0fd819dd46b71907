"""A SQLite store holding the harness run `r1`, for every align test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from align_harness import store_run

from safestack.store import Store


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store/safestack.db"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        store_run(opened)
        yield opened
