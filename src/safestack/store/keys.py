"""API keys for the gateway: a public id, scopes, a per-key policy, model allowlist, rate limit
and limits on the work one request (or one minute) may ask for.

`store.keys.create` makes one and returns its secret once; only a hash of the secret is stored.
The server calls `store.keys.verify` on every request to turn a presented secret into an ApiKey.
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
from sqlalchemy import Select, Update, insert, select, update

from safestack.errors import InputError, StoreError
from safestack.store.database import Database
from safestack.store.tables import ApiKeyRow

Scope = Literal["moderate", "chat", "admin", "redteam", "review"]
"""What a key may call: /v1/moderations, /v1/chat/completions, the admin endpoints; in the
console (`safestack console`), `redteam` is an expert (their own engagements) and `review` a
lead who sees and reviews every engagement (as `admin` does, who also creates them)."""

SCOPES: tuple[Scope, ...] = ("moderate", "chat", "admin", "redteam", "review")

KEY_ID_PREFIX = "ssk_"
_KEY_ID = re.compile(r"ssk_[0-9a-f]{8}")
# token_urlsafe(32) is 43 characters; anything much longer is not a secret we issued.
_MAX_SECRET_PART = 128
# Compared against when the id is unknown, so that path does the same work as a wrong secret.
_NO_SUCH_HASH = "0" * 64
# Key ids are 32 random bits; a clash is rare, and creating draws again.
_KEY_ID_DRAWS = 10


class KeyLimits(BaseModel):
    """A key's own limits on work; each one unset falls back to the server's setting."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_messages: int | None = Field(default=None, gt=0, description="Messages per chat request.")
    max_inputs: int | None = Field(
        default=None, gt=0, description="Strings per /v1/moderations request."
    )
    max_chars: int | None = Field(default=None, gt=0, description="Characters judged per request.")
    chars_per_minute: int | None = Field(
        default=None, gt=0, description="Characters judged per minute."
    )

    def describe(self) -> list[str]:
        """The limits set, e.g. ['256 msgs', '100,000 chars']; [] when all are the server's."""
        return [
            f"{value:,} {unit}"
            for value, unit in (
                (self.max_messages, "msgs"),
                (self.max_inputs, "inputs"),
                (self.max_chars, "chars"),
                (self.chars_per_minute, "chars/min"),
            )
            if value is not None
        ]


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
    limits: KeyLimits = Field(default_factory=KeyLimits)
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
    limits: KeyLimits | dict[str, Any] | None = None,
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
                "limits": limits or {},
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


class ApiKeys:
    """The api_keys table: `store.keys`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def create(
        self,
        name: str,
        scopes: Iterable[Scope],
        *,
        policy: str | None = None,
        models: Iterable[str] = (),
        rate_per_minute: int | None = None,
        burst: int | None = None,
        limits: KeyLimits | dict[str, Any] | None = None,
    ) -> tuple[ApiKey, str]:
        """Store a new key; returns it and its secret, which is shown once and never stored.

        `limits` (a KeyLimits or its fields) caps the work of the key's requests; unset ones
        follow the server's settings. Raises InputError for an empty name or scope list, an
        unknown scope or a limit below 1.
        """
        scopes, models = list(scopes), list(models)
        with self._database.transaction("creating an API key", write_first=True) as session:
            for _ in range(_KEY_ID_DRAWS):
                key, secret = new_key(
                    name,
                    scopes,
                    policy=policy,
                    models=models,
                    rate_per_minute=rate_per_minute,
                    burst=burst,
                    limits=limits,
                )
                if session.get(ApiKeyRow, key.id) is None:
                    session.execute(insert(ApiKeyRow), [key_row(key, secret)])
                    return key, secret
        raise StoreError(
            f"{self._database.display_url}: no free API key id after {_KEY_ID_DRAWS} draws"
        )

    def verify(self, secret: str) -> ApiKey | None:
        """The live key `secret` belongs to; None if it is malformed, unknown, wrong or revoked.

        The key is found by the public id the secret starts with; the secret itself is compared
        by hash in constant time.
        """
        key_id = key_id_of(secret)
        if key_id is None:
            return None
        with self._database.transaction("checking an API key") as session:
            row = session.get(ApiKeyRow, key_id)
            if not secret_matches(secret, row) or row is None or row.revoked_at is not None:
                return None
            return ApiKey.from_row(row)

    def get(self, key_id: str) -> ApiKey | None:
        """The key with this public id, revoked or not; None if there is none."""
        with self._database.transaction("reading an API key") as session:
            row = session.get(ApiKeyRow, key_id)
            return None if row is None else ApiKey.from_row(row)

    def all(self, include_revoked: bool = False) -> list[ApiKey]:
        """Keys, oldest first; revoked ones only if `include_revoked`."""
        with self._database.transaction("listing API keys") as session:
            return [ApiKey.from_row(row) for row in session.scalars(select_keys(include_revoked))]

    def set_limits(self, key_id: str, changes: dict[str, int | None]) -> ApiKey | None:
        """Change a live key's rate (`rate_per_minute`, `burst`) and work limits (KeyLimits'
        fields): a number sets one, None returns it to the server's setting, a name not given is
        kept. None if there is no such live key; InputError for an unknown name or a number below 1.
        """
        rate_fields = {"rate_per_minute", "burst"}
        unknown = sorted(set(changes) - rate_fields - set(KeyLimits.model_fields))
        if unknown:
            allowed = ", ".join(sorted(rate_fields | set(KeyLimits.model_fields)))
            raise InputError(f"unknown key limit {unknown[0]!r}; the limits are {allowed}")
        for name, value in changes.items():
            if value is not None and value < 1:
                raise InputError(f"{name}: {value} is below 1; give a number of 1 or more")
        with self._database.transaction(
            "changing an API key's limits", write_first=True
        ) as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return None
            limits = {**(row.limits or {})}
            for name, value in changes.items():
                if name in rate_fields:
                    setattr(row, name, value)
                else:
                    limits[name] = value
            row.limits = KeyLimits(**limits).model_dump()
            return ApiKey.from_row(row)

    def revoke(self, key_id: str) -> bool:
        """Revoke a key from now on. False if there is no such key or it was already revoked."""
        now = datetime.now(UTC)
        with self._database.transaction("revoking an API key") as session:
            return session.connection().execute(revoke_update(key_id, now)).rowcount == 1
