"""The quarantine: images that matched a bank, kept encrypted for the legal report.

US law (18 U.S.C. § 2258A(h)) asks a provider to preserve what it reported; the gateway keeps a
matched image here only when the deployment sets a key (`SAFESTACK_MEDIA_QUARANTINE_KEY`),
otherwise never. Each image is one file named by its SHA-256, encrypted with Fernet (AES-128-CBC
with an HMAC-SHA256, `cryptography`'s audited recipe): readable only with the key, and a file that
was altered fails to decrypt instead of yielding other bytes. The key is never logged or shown.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from safestack.errors import MediaError

_SHA256 = re.compile(r"[0-9a-f]{64}")
SUFFIX = ".fernet"


def new_key() -> str:
    """A fresh random Fernet key (32 bytes, URL-safe base64): what the setting takes."""
    return Fernet.generate_key().decode("ascii")


class Quarantine:
    """Encrypted image files in `directory`, under one key."""

    def __init__(self, directory: Path, key: str) -> None:
        try:
            self._fernet = Fernet(key.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            # Never echo the value: it is a secret, even when malformed.
            raise MediaError(
                "SAFESTACK_MEDIA_QUARANTINE_KEY is not a Fernet key (32 bytes, URL-safe base64); "
                "make one with `safestack media quarantine-key`"
            ) from None
        self.directory = directory

    def keep(self, data: bytes) -> str:
        """Encrypt and store `data`; returns the file's name (its SHA-256 + `.fernet`).

        Written to a temporary file and renamed, so a crash never leaves half a file; readable by
        this user only. Keeping the same image again rewrites the same file.
        """
        name = hashlib.sha256(data).hexdigest() + SUFFIX
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            token = self._fernet.encrypt(data)
            with tempfile.NamedTemporaryFile(dir=self.directory, delete=False) as file:
                file.write(token)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(file.name, 0o600)
            os.replace(file.name, self.directory / name)
        except OSError as exc:
            raise MediaError(
                f"{self.directory}: cannot write to the media quarantine ({exc.strerror}); "
                "check SAFESTACK_MEDIA_QUARANTINE_DIR"
            ) from None
        return name

    def read(self, name: str) -> bytes:
        """The image stored as `name` (from a case's context), decrypted and checked."""
        stem = name.removesuffix(SUFFIX)
        if not _SHA256.fullmatch(stem):
            raise MediaError(f"'{name}' is not a quarantine file name (<sha256>{SUFFIX})")
        path = self.directory / f"{stem}{SUFFIX}"
        try:
            token = path.read_bytes()
        except OSError as exc:
            raise MediaError(f"{path}: cannot read ({exc.strerror})") from None
        try:
            data = self._fernet.decrypt(token)
        except InvalidToken:
            raise MediaError(
                f"{path}: does not decrypt with this key (another key, or the file was altered)"
            ) from None
        if hashlib.sha256(data).hexdigest() != stem:
            raise MediaError(f"{path}: decrypts, but not to the image its name says")
        return data
