"""Who a request is for: accounts (`key:<key id>`, `user:<key id>:<end user>`) and the hashed end
user, from OpenAI's `safety_identifier` field (else the legacy `user` field).

The raw identifier is an application's user id (often an email address): it is hashed with
HMAC-SHA256 under the deployment's secret (SAFESTACK_MONITOR_SECRET, else a random key kept in
the store) before anything keeps it, so the store holds a stable pseudonym nobody can reverse by
hashing guesses without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from safestack.errors import EnforcementError
from safestack.records import ACCOUNT_PATTERN

# OpenAI's own limit on safety_identifier is 64 characters; longer ids are still accepted up to
# this many (an email address, a UUID with a prefix) and refused beyond it.
MAX_IDENTIFIER_CHARS = 256
# The fields, in order of preference: OpenAI's current one, then the legacy one.
IDENTITY_FIELDS = ("safety_identifier", "user")

_ACCOUNT = re.compile(ACCOUNT_PATTERN)


def hash_end_user(identifier: str, secret: str) -> str:
    """The end user's pseudonym: hex HMAC-SHA256 of the identifier (UTF-8) under `secret`."""
    return hmac.new(secret.encode(), identifier.encode(), hashlib.sha256).hexdigest()


def key_account(key_id: str) -> str:
    return f"key:{key_id}"


def user_account(key_id: str, end_user: str) -> str:
    """The account of one end user of a key (`end_user` already hashed)."""
    return f"user:{key_id}:{end_user}"


def check_account(account: str) -> str:
    """`account` if it is well formed; an EnforcementError saying the two forms otherwise."""
    if not _ACCOUNT.match(account):
        shown = account if len(account) <= 100 else account[:100] + "..."
        raise EnforcementError(
            f"account {shown!r} is not 'key:<key id>' (e.g. key:ssk_1a2b3c4d) or "
            "'user:<key id>:<end user>' with the end user's 64-hex hash; "
            "`safestack monitor account KEY_ID --end-user ID` prints it"
        )
    return account


def parent_key_account(account: str) -> str:
    """The key account an account belongs to (itself for a key account)."""
    return key_account(account.split(":")[1])
