"""Make a TEST-ONLY C2PA certificate chain: root CA -> intermediate CA -> signer.

    python scripts/make_test_certs.py OUT_DIR [--days 30] [--expired]

Writes, in OUT_DIR:
  root.pem        the root CA certificate (the trust anchor to give `verify --trust`)
  chain.pem       signer certificate then intermediate (what the signer embeds; no root)
  signer.key      the signer's private key (PKCS#8, unencrypted, mode 0600)
  expired-chain.pem / expired-signer.key   with --expired: a signer whose validity ended yesterday

ECDSA P-256 (C2PA's ES256). The signer carries what the C2PA certificate profile asks for: not a
CA, key usage digitalSignature, extended key usage emailProtection + documentSigning (no
anyExtendedKeyUsage), subject and authority key identifiers. Nothing these keys sign is trusted
by anyone but the test or demo that made them; never use them for real content, never commit them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "safestack test only"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    common_name: str,
    issuer: Issued | None,
    *,
    ca: bool,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    signing_key = issuer.key if issuer else key
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
        critical=False,
    )
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True
        ).add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING]),
                critical=False,
            )
        )
    return Issued(builder.sign(signing_key, hashes.SHA256()), key)


def make_chain(out: Path, *, days: int = 30, expired: bool = False) -> dict[str, Path]:
    """Write a fresh chain into `out`; returns the paths written by name."""
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(days=2)
    root = _issue(
        "safestack TEST root CA",
        None,
        ca=True,
        not_before=start,
        not_after=now + dt.timedelta(days=days + 2),
    )
    inter = _issue(
        "safestack TEST intermediate CA",
        root,
        ca=True,
        not_before=start,
        not_after=now + dt.timedelta(days=days + 1),
    )
    signer = _issue(
        "safestack TEST signer",
        inter,
        ca=False,
        not_before=start,
        not_after=now + dt.timedelta(days=days),
    )
    paths = {"root": out / "root.pem", "chain": out / "chain.pem", "key": out / "signer.key"}
    _write_pem(paths["root"], [root.cert])
    _write_pem(paths["chain"], [signer.cert, inter.cert])
    _write_key(paths["key"], signer.key)
    if expired:
        old = _issue(
            "safestack TEST expired signer",
            inter,
            ca=False,
            not_before=now - dt.timedelta(days=3),
            not_after=now - dt.timedelta(days=1),
        )
        paths["expired_chain"] = out / "expired-chain.pem"
        paths["expired_key"] = out / "expired-signer.key"
        _write_pem(paths["expired_chain"], [old.cert, inter.cert])
        _write_key(paths["expired_key"], old.key)
    return paths


def _write_pem(path: Path, certs: list[x509.Certificate]) -> None:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="directory to write the chain into")
    parser.add_argument(
        "--days", type=int, default=30, help="signer validity from now (default 30)"
    )
    parser.add_argument("--expired", action="store_true", help="also write an expired signer")
    args = parser.parse_args()
    paths = make_chain(args.out, days=args.days, expired=args.expired)
    for name, path in paths.items():
        print(f"{name:14} {path}")
    print("TEST ONLY: content signed with these keys is trusted by nobody but you.")


if __name__ == "__main__":
    main()
