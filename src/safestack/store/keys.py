"""API keys for the gateway: a public id, scopes, a per-key policy, model allowlist and rate limit.

`Store.create_key` makes one and returns its secret once; only a hash of the secret is stored.
The server calls `Store.verify_key` on every request to turn a presented secret into an ApiKey.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Select, Update, select, update

from safestack.errors import InputError
from safestack.store.tables import ApiKeyRow

Scope = Literal["moderate", "chat", "admin"]
"""What a key may call: /v1/moderations, /v1/chat/completions, the admin endpoints."""

SCOPES: tuple[Scope, ...] = ("moderate", "chat", "admin")

KEY_ID_PREFIX = "ssk_"
_KEY_ID = re.compile(r"ssk_[0-9a-f]{8}")
# token_urlsafe(32) is 43 characters; anything much longer is not a secret we issued.
_MAX_SECRET_PART = 128
# Compared against when the id is unknown, so that path does the same work as a wrong secret.
_NO_SUCH_HASH = "0" * 64


class ApiKey(BaseModel):
    """An API key as the store knows it: everything but the secret."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Public id, 'ssk_' + 8 hex digits; the secret starts with it.")
    name: str = Field(min_length=1, description="Who or what the key is for.")
    scopes: list[Scope] = Field(min_length=1)
    policy: str | None = Field(default=None, description="Policy file this key's requests use.")
    models: list[str] = Field(
        default_factory=list, description="Models the key may call; empty means all."
    )
    rate_per_minute: int | None = Field(default=None, gt=0)
    burst: int | None = Field(default=None, gt=0)
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows_model(self, model: str) -> bool:
        """True if the key's allowlist is empty (all models) or names `model`."""
        return not self.models or model in self.models

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> ApiKey:
        return cls.model_validate({name: getattr(row, name) for name in cls.model_fields})


def new_key(
    name: str,
    scopes: Iterable[str],
    *,
    policy: str | None,
    models: Iterable[str],
    rate_per_minute: int | None,
    burst: int | None,
) -> tuple[ApiKey, str]:
    """A fresh key and its secret, f"{id}.{43 urlsafe characters}"; raises InputError if invalid."""
    try:
        key = ApiKey.model_validate(
            {
                "id": KEY_ID_PREFIX + secrets.token_hex(4),
                "name": name,
                "scopes": list(dict.fromkeys(scopes)),
                "policy": policy,
                "models": list(dict.fromkeys(models)),
                "rate_per_minute": rate_per_minute,
                "burst": burst,
                "created_at": datetime.now(UTC),
            }
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise InputError(f"{error['msg']} (got {error['input']!r})", field=field) from None
    return key, f"{key.id}.{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> str:
    # A plain sha256 is enough here, unlike for passwords: the secret holds 256 random bits, so
    # even a fast hash cannot be brute-forced from a leaked row, and a slow one (bcrypt, argon2)
    # would only add milliseconds to every request the gateway checks.
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def key_row(key: ApiKey, secret: str) -> dict[str, Any]:
    """The column values of one api_keys row: the key's fields and the secret's hash only."""
    return {**key.model_dump(), "secret_hash": hash_secret(secret)}


def key_id_of(secret: str) -> str | None:
    """The public id a presented secret claims, or None if it is not shaped like one of ours."""
    key_id, dot, rest = secret.partition(".")
    if not dot or not rest or len(rest) > _MAX_SECRET_PART or not _KEY_ID.fullmatch(key_id):
        return None
    return key_id


def secret_matches(secret: str, row: ApiKeyRow | None) -> bool:
    """Compare hashes in constant time, and do the same work when there is no row."""
    expected = row.secret_hash if row is not None else _NO_SUCH_HASH
    return hmac.compare_digest(hash_secret(secret), expected) and row is not None


def select_keys(include_revoked: bool) -> Select[ApiKeyRow]:
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
    return query if include_revoked else query.where(ApiKeyRow.revoked_at.is_(None))


def revoke_update(key_id: str, when: datetime) -> Update:
    return (
        update(ApiKeyRow)
        .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
        .values(revoked_at=when)
    )
