"""The console: a web app where external experts red-team models and their findings become data
(`safestack console`). Pages from other stages plug in through `ConsolePage` (docs/console.md)."""

from safestack.console.app import create_app
from safestack.console.pages import ENTRY_POINT_GROUP, ConsolePage, load_pages
from safestack.console.targets import ConsoleTargets, read_targets

__all__ = [
    "ENTRY_POINT_GROUP",
    "ConsolePage",
    "ConsoleTargets",
    "create_app",
    "load_pages",
    "read_targets",
]
