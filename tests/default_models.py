"""A process default registry that refuses to load anything.

`judge.builtin.default_models()` serves only Python-API callers that pass no `BuiltinModels`. A
test that swaps in `RefusingModels` proves that the code under test (the gateway, a CLI command,
a red-team run) runs on the registry it owns: a fallback to the default fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest

from safestack.judge.builtin import BuiltinModels
from safestack.judge.builtin import models as builtin_models

M = TypeVar("M")


class RefusingModels(BuiltinModels):
    def _once(self, key: str, load: Callable[[], M]) -> M:
        raise AssertionError(f"'{key}' was loaded into the process default registry")


@contextmanager
def refusing_default_models() -> Iterator[RefusingModels]:
    with pytest.MonkeyPatch.context() as patch:
        refusing = RefusingModels()
        patch.setattr(builtin_models, "_default", refusing)
        yield refusing


@pytest.fixture
def no_default_models() -> Iterator[RefusingModels]:
    with refusing_default_models() as refusing:
        yield refusing
