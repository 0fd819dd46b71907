"""The console's page registry: what another stage adds to the web app (monitoring, the gate,
media case review) is a `ConsolePage`, an APIRouter with a nav entry and the scopes that see it.

Pages come from the built-in list and from the `safestack.console.pages` entry point group: each
entry point names a `ConsolePage` or a function returning one (docs/console.md has an example).
The app mounts each router behind the sign-in: a page's routes answer 403 to a key without one
of its scopes, and its nav entry is shown only to keys that have one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from fastapi import APIRouter

from safestack.errors import RegistryError

ENTRY_POINT_GROUP = "safestack.console.pages"
CONSOLE_SCOPES = frozenset({"redteam", "review", "admin"})


@dataclass(frozen=True)
class ConsolePage:
    """One page (or family of pages) of the console.

    `router`'s routes are mounted as they are (give them a prefix of your own, e.g. /gate);
    `nav_path` is where the nav entry `title` links; `scopes` are the key scopes that see it (a
    key needs one). Templates render with `request.app.state.templates` (the console's Jinja2
    environment: extend "base.html" for the header, nav and CSRF token).
    """

    name: str
    title: str
    nav_path: str
    router: APIRouter
    scopes: frozenset[str] = field(default=CONSOLE_SCOPES)

    def visible_to(self, scopes: Iterable[str]) -> bool:
        return not self.scopes.isdisjoint(scopes)


PageSource = ConsolePage | Callable[[], ConsolePage]


def load_pages(builtin: Iterable[ConsolePage], *, plugins: bool = True) -> list[ConsolePage]:
    """The built-in pages, then those the installed packages register; names must be unique."""
    pages = list(builtin)
    if plugins:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            loaded = entry.load()
            page = loaded if isinstance(loaded, ConsolePage) else loaded()
            if not isinstance(page, ConsolePage):
                raise RegistryError(
                    f"entry point {ENTRY_POINT_GROUP}:{entry.name} ({entry.value}) gave "
                    f"{type(page).__name__}, not a ConsolePage"
                )
            pages.append(page)
    seen: set[str] = set()
    for page in pages:
        if page.name in seen:
            raise RegistryError(f"two console pages are called '{page.name}'; rename one")
        seen.add(page.name)
    return pages
