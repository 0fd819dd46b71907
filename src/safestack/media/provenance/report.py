"""What verifying content credentials found: a verdict a person can act on, with the evidence.

The verdict comes from the C2PA validation status codes the library reports (C2PA 2.x, "Validation"):
any failure other than the signer's credential means the content or its manifest was changed after
signing (`invalid`); an intact manifest is `trusted` only when its signer chains to a trust anchor.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Verdict = Literal["trusted", "untrusted", "expired", "revoked", "invalid", "unsigned"]

# Failures about who signed, not about what was signed: the content and manifest are intact.
_CREDENTIAL_FAILURES: dict[str, Verdict] = {
    "signingCredential.expired": "expired",
    "signingCredential.revoked": "revoked",
    "signingCredential.untrusted": "untrusted",
}
# One line a verdict, for the CLI and the docs.
MEANING: dict[Verdict, str] = {
    "trusted": "intact, signed by a certificate that chains to a trusted root",
    "untrusted": "intact, but the signer does not chain to any trusted root",
    "expired": "intact, but the signing certificate had expired",
    "revoked": "intact, but the signing certificate was revoked",
    "invalid": "TAMPERED: the content or its manifest changed after signing",
    "unsigned": "no content credentials found",
}


class StatusEntry(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    explanation: str | None = None


class ProvenanceReport(BaseModel):
    """One asset's content credentials as verified: verdict, the library's state, the evidence."""

    model_config = ConfigDict(frozen=True)
    schema_version: int = 1
    verdict: Verdict
    state: str | None = None  # the library's validation state: Trusted, Valid, Invalid
    failures: list[StatusEntry] = []
    format: str | None = None
    claim_generator: str | None = None
    model: str | None = None
    digital_source_type: str | None = None
    actions: list[str] = []
    signer: str | None = None
    issuer: str | None = None
    manifest: dict[str, Any] | None = None

    @property
    def meaning(self) -> str:
        return MEANING[self.verdict]


def verdict_of(state: str | None, failures: list[StatusEntry]) -> Verdict:
    codes = {f.code for f in failures}
    if codes - set(_CREDENTIAL_FAILURES) or (state == "Invalid" and not codes):
        return "invalid"
    for code, verdict in _CREDENTIAL_FAILURES.items():  # the worst first
        if code in codes:
            return verdict
    return "trusted" if state == "Trusted" else "untrusted"


def report_of(
    state: str | None,
    results: dict[str, Any] | None,
    manifest: dict[str, Any] | None,
    *,
    format: str,
    ignore: frozenset[str] = frozenset(),
) -> ProvenanceReport:
    """Build the report from the library's validation state, results and active manifest.

    `ignore`: failure explanations already checked another way (the text embedding's location)."""
    active = (results or {}).get("activeManifest") or {}
    failures = [
        StatusEntry(code=f.get("code", "?"), explanation=f.get("explanation"))
        for f in active.get("failure", [])
        if f.get("explanation") not in ignore
    ]
    if state == "Invalid" and len(failures) < len(active.get("failure", [])):
        # What made it invalid was checked another way: the state the rest supports.
        trusted = any(
            s.get("code") == "signingCredential.trusted" for s in active.get("success", [])
        )
        state = "Trusted" if trusted else "Valid"
    actions: list[dict[str, Any]] = []
    for assertion in (manifest or {}).get("assertions", []):
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            actions.extend(assertion.get("data", {}).get("actions", []))
    created = next((a for a in actions if a.get("action") == "c2pa.created"), {})
    agent = created.get("softwareAgent")
    generators = (manifest or {}).get("claim_generator_info") or [{}]
    generator = generators[0]
    signature = (manifest or {}).get("signature_info") or {}
    return ProvenanceReport(
        verdict=verdict_of(state, failures),
        state=state,
        failures=failures,
        format=format,
        claim_generator=" ".join(str(generator[k]) for k in ("name", "version") if k in generator)
        or None,
        model=agent.get("name") if isinstance(agent, dict) else agent,
        digital_source_type=created.get("digitalSourceType"),
        actions=[str(a.get("action")) for a in actions],
        signer=signature.get("common_name"),
        issuer=signature.get("issuer"),
        manifest=manifest,
    )
