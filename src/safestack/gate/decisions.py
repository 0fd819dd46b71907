"""The decision log: reviews, decisions, board notices and reversals, hash-chained and signed.

Each entry names its author, role, time, reasons and the scorecard hash it refers to; its hash
covers the previous entry's hash, and its author signs that hash with an Ed25519 key made by
`create_key` (private key in a 0600 file, public key in the store). Roles are enforced: the advisory
group reviews, leadership decides, the board is notified and may reverse; the signer is the author.
`verify_log` re-checks chain and signatures offline and names the first broken entry.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from safestack.errors import GateError
from safestack.gate.evidence import canonical, sha256
from safestack.gate.framework import Framework
from safestack.gate.scorecard import Scorecard
from safestack.records import SCHEMA_VERSION
from safestack.store import Store, StoredSigner

Role = Literal["advisory", "leadership", "board"]
ROLES: tuple[Role, ...] = ("advisory", "leadership", "board")
Kind = Literal["review", "decision", "board-notification", "reversal"]
# Who may record what: the Preparedness Framework's Safety Advisory Group recommends, leadership
# decides, the Board is informed and can reverse (PF Beta, "Governance").
KIND_ROLE: dict[str, Role] = {
    "review": "advisory",
    "decision": "leadership",
    "board-notification": "board",
    "reversal": "board",
}
Recommendation = Literal["deploy", "deploy-with-conditions", "do-not-deploy", "more-evaluation"]
Outcome = Literal["deploy", "deploy-with-conditions", "do-not-deploy", "develop-only"]
ALLOWS_DEPLOY = frozenset({"deploy", "deploy-with-conditions"})
GENESIS = "0" * 64


class Dissent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    person: str
    reason: str


class LogEntry(BaseModel):
    """One signed entry. `entry_hash` is sha256 over every other field; `signature` signs it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    seq: int = Field(ge=1)
    kind: Kind
    model: str
    version: str
    framework: str
    framework_digest: str
    scorecard_hash: str
    author: str
    role: Role
    key_id: str
    time: datetime
    reasons: str = Field(min_length=1)
    recommendation: Recommendation | None = None
    outcome: Outcome | None = None
    conditions: list[str] = Field(default_factory=list)
    dissent: list[Dissent] = Field(default_factory=list)
    refers_to: int | None = Field(
        default=None, description="The decision a notice or reversal is about."
    )
    prev_hash: str
    entry_hash: str = ""
    signature: str = ""

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"entry_hash", "signature"})

    def computed_hash(self) -> str:
        return sha256(canonical(self.body()))

    def label(self) -> str:
        return f"entry {self.seq} ({self.kind} by {self.author})"


# --- keys -------------------------------------------------------------------------------------


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256(raw)[:16]


def create_key(store: Store, person: str, role: str, out: Path) -> StoredSigner:
    """Make a person's Ed25519 key: the private key to `out` (0600, never overwritten, never
    printed), the public key and role to the store."""
    if role not in ROLES:
        raise GateError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if not person.strip():
        raise GateError("a key needs the name of the person who holds it")
    if any(s.person == person for s in store.gate.signers()):
        raise GateError(
            f"'{person}' already has a key; one key per person keeps every entry attributable"
        )
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise GateError(f"{out}: a file is already there; keys are never overwritten") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public = private.public_key()
    signer = StoredSigner(
        key_id=key_id(public),
        person=person,
        role=role,
        public_key=public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        ).hex(),
        created_at=datetime.now(UTC),
    )
    store.gate.add_signer(signer)
    return signer


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """A private key file; refused when others can read it (chmod 600 it)."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise GateError(
            f"{path}: key file not found; make one with `safestack gate keys create`"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise GateError(f"{path}: the private key is readable by others; run: chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise GateError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise GateError(f"{path}: not an Ed25519 key")
    return key


def _public(signer: StoredSigner) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(signer.public_key))


# --- recording --------------------------------------------------------------------------------


def read_log(store: Store) -> list[LogEntry]:
    return [LogEntry.model_validate(row.entry) for row in store.gate.log()]


def record_entry(
    store: Store,
    key_file: Path,
    *,
    kind: Kind,
    scorecard: Scorecard | None = None,
    reasons: str,
    acting_as: str | None = None,
    recommendation: Recommendation | None = None,
    outcome: Outcome | None = None,
    conditions: list[str] | None = None,
    dissent: list[Dissent] | None = None,
    refers_to: int | None = None,
) -> LogEntry:
    """Sign and append one entry; the key decides who the author is (and their role)."""
    private = load_private_key(key_file)
    kid = key_id(private.public_key())
    signer = next((s for s in store.gate.signers() if s.key_id == kid), None)
    if signer is None:
        raise GateError(
            f"{key_file}: key {kid} is not registered; keys are made by `safestack gate keys create`"
        )
    if acting_as is not None and acting_as != signer.person:
        raise GateError(
            f"{key_file} is {signer.person}'s key: nobody signs for someone else "
            f"('{acting_as}' must sign with their own key)"
        )
    entry = prepare_entry(
        store,
        signer,
        kind=kind,
        scorecard=scorecard,
        reasons=reasons,
        recommendation=recommendation,
        outcome=outcome,
        conditions=conditions,
        dissent=dissent,
        refers_to=refers_to,
    )
    signed = entry.model_copy(update={"signature": sign_entry(private, entry)})
    store.gate.append(signed.model_dump(mode="json"), signed.entry_hash, signed.time)
    return signed


def prepare_entry(
    store: Store,
    signer: StoredSigner,
    *,
    kind: Kind,
    scorecard: Scorecard | None = None,
    reasons: str,
    recommendation: Recommendation | None = None,
    outcome: Outcome | None = None,
    conditions: list[str] | None = None,
    dissent: list[Dissent] | None = None,
    refers_to: int | None = None,
    time: datetime | None = None,
) -> LogEntry:
    """The next entry by `signer`, checked against every rule and hashed, not yet signed.

    What the console prepares for a person to sign with their own key (`sign_entry`, or
    `safestack gate sign`) and `append_signed` then checks and appends."""
    needed = KIND_ROLE[kind]
    if signer.role != needed:
        raise GateError(
            f"{signer.person} is {signer.role}; a {kind} is recorded by {needed} "
            f"(the advisory group recommends, leadership decides, the board oversees)"
        )
    log = read_log(store)
    verdict = verify_entries(log, store.gate.signers())
    if not verdict.ok:
        raise GateError(f"the decision log is broken, nothing can be appended: {verdict.problem}")
    fields = _subject(kind, scorecard, log, refers_to)
    if kind == "review" and recommendation is None:
        raise GateError(
            "a review needs a recommendation (deploy, deploy-with-conditions, do-not-deploy, more-evaluation)"
        )
    if kind == "decision":
        if outcome is None:
            raise GateError(
                "a decision needs an outcome (deploy, deploy-with-conditions, do-not-deploy, develop-only)"
            )
        assert scorecard is not None
        reviewed = [
            e for e in log if e.kind == "review" and e.scorecard_hash == fields["scorecard_hash"]
        ]
        if not reviewed:
            raise GateError(
                f"no advisory review of scorecard {fields['scorecard_hash'][:12]} yet; the advisory "
                "group reviews a scorecard before leadership decides on it"
            )
        if outcome in ALLOWS_DEPLOY and not scorecard.deploy.holds:
            raise GateError(
                f"the framework's deploy rule ({scorecard.deploy.rule}) does not hold: "
                f"{scorecard.deploy.reason}; a deploy decision cannot be recorded"
            )
    entry = LogEntry(
        seq=(log[-1].seq + 1) if log else 1,
        kind=kind,
        author=signer.person,
        role=signer.role,
        key_id=signer.key_id,
        time=time or datetime.now(UTC),
        reasons=reasons,
        recommendation=recommendation,
        outcome=outcome,
        conditions=conditions or [],
        dissent=dissent or [],
        refers_to=refers_to,
        prev_hash=log[-1].entry_hash if log else GENESIS,
        **fields,
    )
    return entry.model_copy(update={"entry_hash": entry.computed_hash()})


def sign_entry(private: Ed25519PrivateKey, entry: LogEntry) -> str:
    """The base64 Ed25519 signature of a prepared entry's hash (re-computed, never trusted)."""
    digest = entry.computed_hash()
    if digest != entry.entry_hash:
        raise GateError(f"{entry.label()}: its content does not match its hash; prepare it again")
    return base64.b64encode(private.sign(bytes.fromhex(digest))).decode()


def append_signed(
    store: Store, entry: LogEntry, signature: str, scorecard: Scorecard | None
) -> LogEntry:
    """Append an entry prepared by `prepare_entry` and signed elsewhere.

    The entry is prepared again from its own fields (same signer, time and subject, against the
    log and scorecard as they are now) and must come out identical, so an edited entry, one
    whose log position was taken meanwhile, or one that breaks a rule is refused; the signature
    must verify with the registered key of the entry's author."""
    signer = next((s for s in store.gate.signers() if s.key_id == entry.key_id), None)
    if signer is None:
        raise GateError(f"{entry.label()}: signed by unknown key {entry.key_id}")
    expected = prepare_entry(
        store,
        signer,
        kind=entry.kind,
        scorecard=scorecard,
        reasons=entry.reasons,
        recommendation=entry.recommendation,
        outcome=entry.outcome,
        conditions=list(entry.conditions),
        dissent=list(entry.dissent),
        refers_to=entry.refers_to,
        time=entry.time,
    )
    if expected != entry.model_copy(update={"signature": ""}):
        raise GateError(
            f"{entry.label()}: it is not the entry the log would take now (the log moved on, the "
            "evidence changed or the entry was edited); prepare it again and sign the new one"
        )
    try:
        _public(signer).verify(
            base64.b64decode(signature, validate=True), bytes.fromhex(entry.entry_hash)
        )
    except (InvalidSignature, ValueError):
        raise GateError(
            f"{entry.label()}: the signature does not verify with {signer.person}'s key "
            f"{signer.key_id}; sign the entry hash with that person's own key"
        ) from None
    signed = entry.model_copy(update={"signature": signature})
    store.gate.append(signed.model_dump(mode="json"), signed.entry_hash, signed.time)
    return signed


def _subject(
    kind: Kind, scorecard: Scorecard | None, log: list[LogEntry], refers_to: int | None
) -> dict[str, str]:
    if kind in ("review", "decision"):
        if scorecard is None:
            raise GateError(f"a {kind} refers to a scorecard; assess the model first")
        return {
            "model": scorecard.model,
            "version": scorecard.version,
            "framework": scorecard.framework,
            "framework_digest": scorecard.framework_digest,
            "scorecard_hash": scorecard.digest(),
        }
    if refers_to is None:
        raise GateError(f"a {kind} names the decision it is about (its entry number)")
    target = next((e for e in log if e.seq == refers_to), None)
    if target is None or target.kind != "decision":
        raise GateError(f"entry {refers_to} is not a decision in the log; see `safestack gate log`")
    if kind == "reversal" and any(e.kind == "reversal" and e.refers_to == refers_to for e in log):
        raise GateError(f"decision {refers_to} is already reversed")
    return {
        "model": target.model,
        "version": target.version,
        "framework": target.framework,
        "framework_digest": target.framework_digest,
        "scorecard_hash": target.scorecard_hash,
    }


# --- verifying --------------------------------------------------------------------------------


class Verification(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    entries: int
    broken: int | None = Field(default=None, description="seq of the first broken entry")
    problem: str | None = None


def verify_entries(entries: list[LogEntry], signers: list[StoredSigner]) -> Verification:
    """Check order, chain, hashes, signatures, authors and roles; stop at the first broken entry."""
    by_id = {s.key_id: s for s in signers}
    prev = GENESIS
    for index, entry in enumerate(entries, start=1):

        def broken(problem: str, entry: LogEntry = entry) -> Verification:
            return Verification(
                ok=False,
                entries=len(entries),
                broken=entry.seq,
                problem=f"{entry.label()}: {problem}",
            )

        if entry.seq != index:
            return broken(f"expected entry number {index}: an entry was removed or reordered")
        if entry.prev_hash != prev:
            return broken(
                "its previous-hash does not match the entry before it: the chain is broken"
            )
        if entry.computed_hash() != entry.entry_hash:
            return broken("its content does not match its hash: the entry was edited after signing")
        signer = by_id.get(entry.key_id)
        if signer is None:
            return broken(f"signed by unknown key {entry.key_id}")
        try:
            _public(signer).verify(
                base64.b64decode(entry.signature), bytes.fromhex(entry.entry_hash)
            )
        except (InvalidSignature, ValueError):
            return broken(
                f"the signature does not verify with {signer.person}'s key {entry.key_id}"
            )
        if entry.author != signer.person or entry.role != signer.role:
            return broken(
                f"author {entry.author} ({entry.role}) is not the key's holder "
                f"{signer.person} ({signer.role})"
            )
        if KIND_ROLE[entry.kind] != entry.role:
            return broken(f"a {entry.kind} cannot be recorded by the {entry.role} role")
        prev = entry.entry_hash
    return Verification(ok=True, entries=len(entries))


def parse_log_lines(lines: list[str], source: str) -> list[LogEntry]:
    """Entries from exported JSON Lines; a line that is not an entry fails by line number."""
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entries.append(LogEntry.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValueError) as exc:
            first = str(exc).splitlines()[0]
            raise GateError(f"{source}:{number}: not a decision log entry ({first})") from None
    return entries


def parse_signers(text: str, source: str) -> list[StoredSigner]:
    try:
        return [StoredSigner.model_validate(item) for item in json.loads(text)]
    except (json.JSONDecodeError, ValueError, TypeError) as exc:
        raise GateError(f"{source}: not a signers file ({str(exc).splitlines()[0]})") from None


def export_lines(entries: list[LogEntry]) -> str:
    return "".join(json.dumps(e.model_dump(mode="json"), sort_keys=True) + "\n" for e in entries)


def standing_decision(
    entries: list[LogEntry], framework: Framework, model: str, version: str
) -> LogEntry | None:
    """The newest unreversed decision on exactly this model version under this framework file."""
    reversed_ = {e.refers_to for e in entries if e.kind == "reversal"}
    decisions = [
        e
        for e in entries
        if e.kind == "decision"
        and e.model == model
        and e.version == version
        and e.framework == framework.ref
        and e.framework_digest == framework.digest()
        and e.seq not in reversed_
    ]
    return decisions[-1] if decisions else None
