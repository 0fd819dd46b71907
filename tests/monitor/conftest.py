"""The gateway fixtures of tests/server (a real gateway on loopback), for the monitoring tests
that read what a running gateway audited."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))

from server_harness import policies, start_gateway, upstream  # noqa: F401
