"""Fixtures for tests/guard; the shared code lives in guard_harness.py (imported by name, never as `conftest`)."""

from guard_harness import guard, pattern_guard  # noqa: F401
