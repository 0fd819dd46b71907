"""Fixtures for tests/server; the shared code lives in server_harness.py (imported by name, never as `conftest`)."""

from server_harness import gateway, policies, start_gateway, upstream  # noqa: F401
