"""The signing credentials of C2PA content credentials: a certificate chain and its private key.

Read from the paths in settings, checked before anything is signed (the chain parses, the signer
certificate is inside its validity period, the key matches it); the key's text never leaves this
object and is never printed. Trust anchors (root certificates) say whose signatures are trusted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from safestack.errors import MediaError

# C2PA's signature algorithms (C2PA 2.x, "Digital signatures"): ECDSA, RSASSA-PSS, Ed25519.
Algorithm = Literal["es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"]
ALGORITHMS: tuple[Algorithm, ...] = (
    "es256",
    "es384",
    "es512",
    "ps256",
    "ps384",
    "ps512",
    "ed25519",
)
_RSA: tuple[Algorithm, ...] = ("ps256", "ps384", "ps512")
_CURVE_ALGORITHM: dict[str, Algorithm] = {
    "secp256r1": "es256",
    "secp384r1": "es384",
    "secp521r1": "es512",
}


@dataclass(frozen=True)
class SigningCredentials:
    """A signer certificate chain (signer first, then intermediates, no root) and its key."""

    chain_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)  # never shown
    algorithm: Algorithm
    subject: str
    not_after: dt.datetime

    @classmethod
    def load(
        cls,
        cert_path: Path,
        key_path: Path,
        *,
        algorithm: Algorithm | None = None,
        now: dt.datetime | None = None,
    ) -> SigningCredentials:
        """Read and check the chain and key; MediaError naming the file and what to do."""
        chain_pem = _read(cert_path, "certificate chain (SAFESTACK_PROVENANCE_CERT)")
        key_pem = _read(key_path, "private key (SAFESTACK_PROVENANCE_KEY)")
        try:
            certs = x509.load_pem_x509_certificates(chain_pem)
        except ValueError:
            raise MediaError(
                f"{cert_path}: not a PEM certificate chain (expected the signer's certificate "
                "then its intermediates, each '-----BEGIN CERTIFICATE-----')"
            ) from None
        signer = certs[0]
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            # The library's message names the format problem, never the key's content.
            raise MediaError(
                f"{key_path}: not an unencrypted PEM private key ({type(exc).__name__}); "
                "C2PA signing needs a PKCS#8 or traditional PEM key without a passphrase"
            ) from None
        if key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != signer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise MediaError(
                f"{key_path}: this key does not belong to the first certificate of {cert_path} "
                "(the signer's certificate must come first in the chain)"
            )
        moment = now or dt.datetime.now(dt.UTC)
        subject = signer.subject.rfc4514_string()
        if moment > signer.not_valid_after_utc:
            raise MediaError(
                f"{cert_path}: the signing certificate ({subject}) expired on "
                f"{signer.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; content signed with it would "
                "verify as expired: renew it"
            )
        if moment < signer.not_valid_before_utc:
            raise MediaError(
                f"{cert_path}: the signing certificate ({subject}) is not valid before "
                f"{signer.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
            )
        natural = _algorithm_of(key, key_path)
        fits = algorithm in (None, natural) or (natural == "ps256" and algorithm in _RSA)
        if not fits:
            raise MediaError(
                f"{key_path}: SAFESTACK_PROVENANCE_ALGORITHM is {algorithm}, but this key signs "
                f"{natural}{' (or ps384, ps512)' if natural == 'ps256' else ''}; set it to that "
                "or leave it unset"
            )
        return cls(
            chain_pem=chain_pem,
            key_pem=key_pem,
            algorithm=algorithm or natural,
            subject=subject,
            not_after=signer.not_valid_after_utc,
        )


def load_trust_anchors(path: Path) -> str:
    """The PEM text of the root certificates whose signatures verify as trusted."""
    pem = _read(path, "trust anchors (SAFESTACK_PROVENANCE_TRUST_ANCHORS)")
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise MediaError(f"{path}: not PEM certificates (the trusted root CAs)") from None
    return pem.decode("ascii")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MediaError(f"{path}: cannot read the {what} ({exc.strerror})") from None


def _algorithm_of(key: object, key_path: Path) -> Algorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVE_ALGORITHM:
        return _CURVE_ALGORITHM[key.curve.name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"  # C2PA allows RSA only with PSS padding
    raise MediaError(
        f"{key_path}: C2PA cannot sign with this kind of key ({type(key).__name__}); use "
        "ECDSA P-256/P-384/P-521, RSA (PSS) or Ed25519"
    )
