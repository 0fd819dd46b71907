"""Process-wide settings, built once at the edge (CLI, server) and handed down.

Values come from `SAFESTACK_*` environment variables; nothing below the edge reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".safestack"


class Settings(BaseSettings):
    """Where safestack keeps its state and which policy it applies."""

    model_config = SettingsConfigDict(env_prefix="SAFESTACK_", extra="ignore")

    home: Path = Field(
        default_factory=_default_home,
        description="Directory for the default SQLite file and caches.",
    )
    db_url: str | None = Field(
        default=None, description="SQLAlchemy URL; a SQLite file under `home` when unset."
    )
    policy: Path | None = Field(
        default=None, description="Policy YAML; the built-in default when unset."
    )

    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.home / 'safestack.db'}"
