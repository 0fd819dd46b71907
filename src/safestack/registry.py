"""One registry per extension axis (detectors, models, behaviour sources, converters, attacks,
scorers, corpus filters), the one `Plugin` base every axis' base class extends (name, version,
typed `Options`, `from_options`), and the one validation of an options block (`validate_options`).

Each axis keeps a `Registry` of classes registered by name with a decorator (`@model("openai")`);
built-in modules are imported on first lookup and third-party packages add theirs through an
entry-point group (`safestack.models`, `safestack.attacks`, ...).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, ClassVar, Generic, Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from safestack.errors import RegistryError, SafestackError
from safestack.yamlfile import line_of

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


def validate_options(
    model: type[M],
    options: Mapping[str, Any] | None,
    *,
    where: str = "options",
    source: str | None = None,
    root: yaml.Node | None = None,
    loc: Sequence[str] = (),
    error: type[SafestackError] = RegistryError,
) -> M:
    """Validate a plugin's options block against its `Options` model: the one path for every axis.

    From a YAML file, give `source` (the file name), `root` (its node tree, `yamlfile.read_yaml`)
    and `loc` (the path to the block): the error reads `file:line: loc.field: problem`. Otherwise
    it reads `where.field: problem`. Either way it lists the allowed options.
    """
    try:
        return model.model_validate(dict(options or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = [str(part) for part in first["loc"]]
        allowed = ", ".join(model.model_fields) or "none"
        problem = f"{first['msg']} (allowed options: {allowed})"
        if source is None:
            raise error(f"{where}.{'.'.join(field)}: {problem}") from None
        path = [*loc, *field]
        line = line_of(root, path)
        at = f"{source}:{line}" if line else source
        raise error(f"{at}: {'.'.join(path)}: {problem}") from None


def parse_options(model: type[M], options: Mapping[str, Any] | None, *, where: str) -> M:
    """`validate_options` without a file: errors read `where.field: problem`."""
    return validate_options(model, options, where=where)


class PluginOptions(BaseModel):
    """Base of every plugin's options block: typed, frozen, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Plugin:
    """What every plugin on every axis is: a registered `name`, a `version` recorded with what it
    produces, and typed `Options`. Axis bases add their context (a policy, an attacker model)."""

    name: ClassVar[str]
    # A class default; an instance may refine it (e.g. with the rubric or model it loaded).
    version: str = "1"
    Options: ClassVar[type[PluginOptions]] = PluginOptions
    # True for plugins that run the built-in judgement models: their constructor takes `models=`
    # (a `judge.builtin.BuiltinModels`), which `from_options` passes on from whoever builds them.
    uses_builtin_models: ClassVar[bool] = False

    def __init__(self, options: PluginOptions | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @classmethod
    def validate_options(
        cls,
        options: Mapping[str, Any] | None,
        *,
        where: str = "options",
        source: str | None = None,
        root: yaml.Node | None = None,
        loc: Sequence[str] = (),
        error: type[SafestackError] = RegistryError,
    ) -> PluginOptions:
        return validate_options(
            cls.Options, options, where=where, source=source, root=root, loc=loc, error=error
        )

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any] | None,
        *args: Any,
        where: str = "options",
        error: type[SafestackError] = RegistryError,
        models: object = None,
        **kwargs: Any,
    ) -> Self:
        """Build the plugin from a raw options block; `args` / `kwargs` are the axis' context.
        `models` (the caller's `BuiltinModels`) goes to plugins that use the built-in models."""
        parsed = cls.validate_options(options, where=where, error=error)
        if cls.uses_builtin_models:
            kwargs["models"] = models
        return cls(*args, options=parsed, **kwargs)  # type: ignore[misc]
