"""API keys in the store: shown once, stored hashed, found by id prefix, revoked for good."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from safestack.errors import InputError
from safestack.store import ApiKey, KeyLimits, Store


def test_a_created_key_verifies_with_its_secret(store: Store) -> None:
    before = datetime.now(UTC)
    key, secret = store.keys.create(
        "ci-bot",
        ["chat", "moderate"],
        policy="/etc/safestack/strict.yaml",
        models=["llama-3-8b", "qwen-2"],
        rate_per_minute=60,
        burst=10,
    )

    assert re.fullmatch(r"ssk_[0-9a-f]{8}", key.id)
    key_part, random_part = secret.split(".")
    assert key_part == key.id
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", random_part)  # 32 random bytes, urlsafe base64
    assert key.name == "ci-bot"
    assert key.scopes == ["chat", "moderate"]
    assert key.policy == "/etc/safestack/strict.yaml"
    assert key.models == ["llama-3-8b", "qwen-2"]
    assert (key.rate_per_minute, key.burst) == (60, 10)
    assert key.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= key.created_at <= datetime.now(UTC)
    assert not key.revoked

    verified = store.keys.verify(secret)
    assert verified == key
    assert store.keys.get(key.id) == key


def test_a_keys_own_work_limits_are_stored_and_default_to_none(store: Store) -> None:
    limited, secret = store.keys.create(
        "batch",
        ["chat", "moderate"],
        limits=KeyLimits(
            max_messages=1000, max_inputs=64, max_chars=500_000, chars_per_minute=10**7
        ),
    )
    plain, _ = store.keys.create("plain", ["chat"])

    assert store.keys.verify(secret) == limited
    assert store.keys.get(limited.id).limits == KeyLimits(  # type: ignore[union-attr]
        max_messages=1000, max_inputs=64, max_chars=500_000, chars_per_minute=10**7
    )
    assert plain.limits == KeyLimits()
    assert store.keys.get(plain.id).limits.describe() == []  # type: ignore[union-attr]
    assert limited.limits.describe() == [
        "1,000 msgs",
        "64 inputs",
        "500,000 chars",
        "10,000,000 chars/min",
    ]


def test_the_secret_is_never_stored_in_clear(store: Store) -> None:
    key, secret = store.keys.create("svc", ["moderate"])
    random_part = secret.split(".", 1)[1]

    with store.engine.connect() as connection:
        row = (
            connection.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": key.id})
            .mappings()
            .one()
        )
        # Nor anywhere else in the database, as a value or part of one.
        dumps = [
            str(dict(r))
            for table in ("api_keys", "judgements", "audit_events")
            for r in connection.execute(text(f"SELECT * FROM {table}")).mappings()
        ]
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(random_part not in str(value) for value in row.values())
    assert all(random_part not in dump for dump in dumps)


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "ssk_",
        "no-dot-at-all",
        "ssk_0000000.short-id",
        "ssk_zzzzzzzz.not-hex-id",
        "SSK_ABCDEF01.upper-case",
        "ssk_00000000.",
        "ssk_00000000." + "x" * 500,
        "Bearer ssk_00000000.abc",
    ],
)
def test_malformed_secrets_verify_to_none(store: Store, presented: str) -> None:
    store.keys.create("k", ["chat"])
    assert store.keys.verify(presented) is None


def test_a_wrong_or_unknown_secret_verifies_to_none(store: Store) -> None:
    key, secret = store.keys.create("k", ["chat"])
    other, other_secret = store.keys.create("other", ["chat"])
    random_part = secret.split(".", 1)[1]
    flipped = random_part[:-1] + ("A" if random_part[-1] != "A" else "B")

    assert store.keys.verify(f"{key.id}.{flipped}") is None
    # One key's random part presented under another key's id.
    assert store.keys.verify(f"{other.id}.{random_part}") is None
    assert store.keys.verify(f"ssk_ffffffff.{random_part}") is None
    assert store.keys.verify(secret + "x") is None
    assert store.keys.verify(secret) == key
    assert store.keys.verify(other_secret) == other


def test_a_revoked_key_no_longer_verifies(store: Store) -> None:
    key, secret = store.keys.create("leaked", ["chat", "admin"])
    kept, kept_secret = store.keys.create("kept", ["chat"])

    assert store.keys.revoke(key.id) is True
    assert store.keys.revoke(key.id) is False  # already revoked: nothing changes
    assert store.keys.revoke("ssk_00000000") is False

    assert store.keys.verify(secret) is None
    assert store.keys.verify(kept_secret) == kept
    revoked = store.keys.get(key.id)
    assert revoked is not None and revoked.revoked
    assert revoked.revoked_at is not None and revoked.revoked_at.utcoffset() == timedelta(0)
    assert revoked.revoked_at >= key.created_at


def test_list_hides_revoked_keys_unless_asked(store: Store) -> None:
    first, _ = store.keys.create("first", ["chat"])
    second, _ = store.keys.create("second", ["moderate"])
    third, _ = store.keys.create("third", ["admin"])
    store.keys.revoke(second.id)

    assert [k.id for k in store.keys.all()] == [first.id, third.id]
    listed = store.keys.all(include_revoked=True)
    assert {k.id for k in listed} == {first.id, second.id, third.id}
    assert [k.revoked for k in listed if k.id == second.id] == [True]
    assert store.keys.get("ssk_00000000") is None


def test_key_ids_are_unique(store: Store) -> None:
    ids = {store.keys.create(f"k{n}", ["chat"])[0].id for n in range(50)}
    assert len(ids) == 50


def test_an_empty_model_list_allows_every_model(store: Store) -> None:
    open_key, _ = store.keys.create("open", ["chat"])
    narrow, _ = store.keys.create("narrow", ["chat"], models=["llama-3-8b"])
    assert open_key.allows_model("anything")
    assert narrow.allows_model("llama-3-8b")
    assert not narrow.allows_model("gpt-4o")


def test_repeated_scopes_and_models_are_stored_once(store: Store) -> None:
    key, _ = store.keys.create("k", ["chat", "chat", "moderate"], models=["m", "m"])
    assert key.scopes == ["chat", "moderate"]
    assert key.models == ["m"]
    assert store.keys.get(key.id) == key


@pytest.mark.parametrize(
    ("name", "scopes", "limits", "field"),
    [
        ("", ["chat"], {}, "name"),
        ("k", [], {}, "scopes"),
        ("k", ["root"], {}, "scopes.0"),
        ("k", ["chat"], {"rate_per_minute": 0}, "rate_per_minute"),
        ("k", ["chat"], {"burst": -1}, "burst"),
        ("k", ["chat"], {"limits": {"max_messages": 0}}, "limits.max_messages"),
        ("k", ["chat"], {"limits": {"chars_per_minute": -5}}, "limits.chars_per_minute"),
        ("k", ["chat"], {"limits": {"max_tokens": 5}}, "limits.max_tokens"),
    ],
)
def test_invalid_keys_are_refused_and_not_stored(
    store: Store, name: str, scopes: list[str], limits: dict[str, int], field: str
) -> None:
    with pytest.raises(InputError) as caught:
        store.keys.create(name, scopes, **limits)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert store.keys.all(include_revoked=True) == []


def test_api_key_records_are_frozen(store: Store) -> None:
    key, _ = store.keys.create("k", ["chat"])
    assert isinstance(key, ApiKey)
    with pytest.raises(ValueError, match="frozen"):
        key.name = "renamed"  # type: ignore[misc]
