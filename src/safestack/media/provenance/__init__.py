"""C2PA content credentials for generated media: sign images and text, verify what is signed.

Needs the media extra (c2pa-python). `ContentSigner` signs with the deployment's credentials;
`verify_asset` and `verify_text` return a `ProvenanceReport` whose verdict says whether the content
is intact and whether its signer is trusted (docs/media.md, "Provenance").
"""

from safestack.media.provenance.credentials import (
    ALGORITHMS,
    Algorithm,
    SigningCredentials,
    load_trust_anchors,
)
from safestack.media.provenance.report import MEANING, ProvenanceReport, StatusEntry, Verdict
from safestack.media.provenance.signing import (
    TRAINED_ALGORITHMIC_MEDIA,
    ContentSigner,
    image_format,
    manifest_definition,
    signer_from_settings,
    verify_asset,
)
from safestack.media.provenance.text import sign_text, strip_credentials, verify_text

__all__ = [
    "ALGORITHMS",
    "MEANING",
    "TRAINED_ALGORITHMIC_MEDIA",
    "Algorithm",
    "ContentSigner",
    "ProvenanceReport",
    "SigningCredentials",
    "StatusEntry",
    "Verdict",
    "image_format",
    "load_trust_anchors",
    "manifest_definition",
    "sign_text",
    "signer_from_settings",
    "strip_credentials",
    "verify_asset",
    "verify_text",
]
