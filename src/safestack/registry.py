"""One registry per extension axis: targets, attacks, converters, scorers, behaviour sets, filters.

Each axis keeps a `Registry` of classes registered by name with a decorator (`@target("openai")`);
built-in modules are imported on first lookup and third-party packages add theirs through an
entry-point group (`safestack.targets`, `safestack.attacks`, ...).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from safestack.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes (or callables) registered under a name, loaded lazily.

    `kind` names the axis in error messages ("attack", "converter"); `builtin_modules` are imported
    on first lookup so their decorators run; `group` is the entry-point group for plugins.
    """

    def __init__(self, kind: str, builtin_modules: tuple[str, ...], group: str) -> None:
        self.kind = kind
        self.group = group
        self._builtin_modules = builtin_modules
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register `obj` under `name` (and set `obj.name` when it is a class)."""

        def decorate(obj: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing is not obj:
                raise RegistryError(
                    f"{self.kind} '{name}' is registered twice ({existing!r}, {obj!r})"
                )
            if isinstance(obj, type):
                obj.name = name  # type: ignore[attr-defined]
            self._entries[name] = obj
            return obj

        return decorate

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._builtin_modules:
            importlib.import_module(module)
        for entry in entry_points(group=self.group):
            entry.load()

    def get(self, name: str, *, where: str | None = None) -> T:
        """The entry called `name`; a RegistryError lists what exists (prefixed by `where`)."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            prefix = f"{where}: " if where else ""
            raise RegistryError(
                f"{prefix}unknown {self.kind} '{name}'; available: {', '.join(sorted(self._entries))}"
            ) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        yield from sorted(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries


M = TypeVar("M", bound=BaseModel)


def parse_options(model: type[M], options: Mapping[str, Any] | None, *, where: str) -> M:
    """Validate an options block; the error names the path (`where.field`) and the allowed fields."""
    try:
        return model.model_validate(dict(options or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        allowed = ", ".join(model.model_fields) or "none"
        raise RegistryError(
            f"{where}.{field}: {first['msg']} (allowed options: {allowed})"
        ) from None
