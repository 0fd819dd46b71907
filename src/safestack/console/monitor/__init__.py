"""The console's monitoring pages (docs/monitor.md, Console pages), registered when the
`monitor` extra (Polars, scikit-learn) is installed: the console itself needs none of it."""

from __future__ import annotations

from importlib.util import find_spec

from safestack.console.pages import ConsolePage

REQUIRED = ("polars", "sklearn", "py3langid")


def monitor_pages() -> list[ConsolePage]:
    """The monitoring pages, or none without the `monitor` extra."""
    if any(find_spec(name) is None for name in REQUIRED):
        return []
    from safestack.console.monitor.views import monitor_page

    return [monitor_page()]
