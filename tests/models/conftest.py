"""Fixtures for tests/models: the gateway harness of tests/server, imported by name.

tests/server is on sys.path only once its own conftest has loaded; adding it here keeps one
`server_harness` module (and one session's loaded policy) whichever folders run.
"""

import sys
from pathlib import Path

SERVER_TESTS = str(Path(__file__).resolve().parents[1] / "server")
if SERVER_TESTS not in sys.path:
    sys.path.insert(0, SERVER_TESTS)

from server_harness import policies, start_gateway, upstream  # noqa: E402, F401
