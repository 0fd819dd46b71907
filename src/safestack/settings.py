"""Process-wide settings, built once at the edge (CLI, server) and handed down.

Values come from `SAFESTACK_*` environment variables; nothing below the edge reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

EncoderPrecision = Literal["int8", "float"]
"""Which copy of the built-in encoder runs (`safestack.judge.builtin.embedders`)."""


def _default_home() -> Path:
    return Path.home() / ".safestack"


class Settings(BaseSettings):
    """Where safestack keeps its state, which policy it applies, and how the gateway serves."""

    model_config = SettingsConfigDict(env_prefix="SAFESTACK_", extra="ignore")

    home: Path = Field(
        default_factory=_default_home,
        description="Directory for the default SQLite file and caches.",
    )
    db_url: str | None = Field(
        default=None, description="SQLAlchemy URL; a SQLite file under `home` when unset."
    )
    policy: Path | None = Field(
        default=None, description="Policy YAML; the built-in default when unset."
    )

    # -- the gateway (`safestack serve`, docs/server.md) ------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address the gateway listens on.")
    port: int = Field(default=8787, ge=0, le=65535, description="Port the gateway listens on.")
    upstream_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL chat requests go to, e.g. http://127.0.0.1:8000/v1; "
        "chat endpoints answer 503 when unset.",
    )
    upstream_api_key: SecretStr | None = Field(
        default=None, description="Bearer token the gateway sends upstream (never the client's)."
    )
    upstream_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds to wait for the upstream's answer (or its next stream chunk): 504 after.",
    )
    upstream_connect_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds to wait for a connection to the upstream: 502 after.",
    )
    redis_url: str | None = Field(
        default=None, description="Redis for rate limits shared by replicas; in memory when unset."
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Gateway processes sharing the port, each with its own models; more than one "
        "needs `redis_url` (rate limits shared by the workers).",
    )
    max_request_bytes: int = Field(
        default=1_048_576, gt=0, description="Larger request bodies are refused (413) unread."
    )
    key_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a verified API key is trusted without asking the store again; "
        "a revoked key stops working within this time.",
    )
    rate_per_minute: int | None = Field(
        default=600,
        gt=0,
        description="Requests per minute for keys without their own limit; None: unlimited.",
    )
    burst: int | None = Field(
        default=None,
        gt=0,
        description="Bucket size for keys without their own; rate_per_minute // 4 when unset.",
    )
    # Work per request and per minute, checked before any judging (docs/server.md, "Limits").
    # A key's own limits (`safestack keys create --max-messages ...`) take precedence.
    max_messages: int = Field(
        default=256, gt=0, description="Messages in one chat request; more is a 400, unjudged."
    )
    max_inputs: int = Field(
        default=256, gt=0, description="Strings in one /v1/moderations request; more is a 400."
    )
    # 100,000: one message at the default policy's judge.max_input_chars; judging that many
    # characters takes 6-9 s of one core under the default policy (docs/server.md, Limits).
    max_chars: int = Field(
        default=100_000,
        gt=0,
        description="Characters to judge in one request (message contents, moderation inputs); "
        "more is a 400.",
    )
    chars_per_minute: int | None = Field(
        default=None,
        gt=0,
        description="Characters judged per minute per key (a token bucket holding one minute's "
        "worth), beside rate_per_minute; None: only requests are counted.",
    )
    audit_content: bool = Field(
        default=False,
        description="Keep the full request and response in audit events for every policy "
        "(otherwise the policy's audit.content decides; digests are always kept).",
    )
    audit_retention_days: float | None = Field(
        default=None,
        gt=0,
        description="Purge audit events older than this; the default policy's "
        "audit.retention_days when unset.",
    )
    encoder_precision: EncoderPrecision = Field(
        default="int8",
        description="Which copy of the built-in accurate-tier encoder runs: `int8` (about twice "
        "as fast; docs/models/README.md has the measured quality difference) or `float`.",
    )
    locale: str | None = Field(
        default=None,
        description="Locale for election redirects when a request names none (x-safestack-locale).",
    )
    body_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a client has to send its whole request body: 408 after.",
    )
    audit_journal: bool = Field(
        default=True,
        description="Make audit events durable in a local write-ahead journal drained into the "
        "store; when false the store must take each one directly (else 503).",
    )
    audit_journal_dir: Path | None = Field(
        default=None,
        description="Directory of the audit journal (one subdirectory per database); "
        "`home`/audit-journal when unset. Keep it on a persistent disk.",
    )
    audit_drain_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often the gateway moves journalled audit events into the store.",
    )

    # -- abuse monitoring: end users and enforcement (docs/monitor-enforcement.md) -------------
    monitor_secret: SecretStr | None = Field(
        default=None,
        description="Key the gateway hashes end-user ids (safety_identifier, user) with "
        "(HMAC-SHA256); when unset, a random key made once and kept in the store. Every replica "
        "must use the same.",
    )
    monitor_ladder: Path | None = Field(
        default=None,
        description="Strike-ladder YAML (decay per rung, the throttle's rate, the appeal text); "
        "the built-in ladder when unset.",
    )
    monitor_webhooks: list[str] = Field(
        default_factory=list,
        description="URLs an alert is POSTed to (JSON) for every decision, e.g. "
        "'[\"https://hooks.example/safestack\"]'.",
    )
    monitor_alert_retries: int = Field(
        default=5, ge=0, le=20, description="Retries of an alert a webhook did not take."
    )
    monitor_alert_timeout: float = Field(
        default=5.0, gt=0, description="Seconds one webhook POST may take."
    )
    monitor_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often each gateway replica checks for new decisions (Redis's version "
        "key when redis_url is set and answers, else the store).",
    )
    monitor_store_check_seconds: float = Field(
        default=30.0,
        gt=0,
        description="With Redis answering, how often the store is checked anyway (a decision "
        "made while Redis was down was not announced there).",
    )

    # -- timeouts toward the database (the gateway; other commands keep longer ones) ---------------
    db_connect_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds to establish a PostgreSQL connection (2 at least).",
    )
    db_statement_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds one PostgreSQL statement may run (the server's statement_timeout); "
        "a store call made for a request is abandoned after connect + statement timeouts.",
    )
    db_pool_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a free pooled connection."
    )
    db_busy_timeout: float = Field(
        default=5.0,
        ge=0,
        description="Seconds to wait for another SQLite writer to finish (SQLite's busy timeout).",
    )

    # -- images (`safestack media`, docs/media.md) -------------------------------------------------
    media_max_bytes: int = Field(
        default=20_971_520, gt=0, description="Larger image files are refused unread (bytes)."
    )
    media_max_pixels: int = Field(
        default=50_000_000,
        gt=0,
        description="Images of more pixels are refused before decoding (decompression bombs).",
    )
    media_max_distance: int = Field(
        default=31,
        ge=0,
        le=255,
        description="PDQ hashes at most this many bits apart match (Meta's recommended 31).",
    )
    media_min_quality: int = Field(
        default=50,
        ge=0,
        le=100,
        description="PDQ hashes of lower quality are not trusted for matching (exact hashes still are).",
    )
    media_max_images: int = Field(
        default=16,
        ge=0,
        description="Images one gateway request may carry (each is decoded and hashed); 0 refuses "
        "every image.",
    )
    media_reload_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often the gateway checks the hash banks for imports and withdrawals, and "
        "reloads its index when they changed; 0: only when it starts.",
    )
    media_fetch_urls: bool = Field(
        default=False,
        description="Let the gateway fetch http(s) image URLs itself (to hash them before "
        "anything else); off: only data: URLs are accepted.",
    )
    media_fetch_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a fetched image may take to arrive, in all."
    )
    media_fetch_private: bool = Field(
        default=False,
        description="Let fetched URLs resolve to loopback, private or link-local addresses (off: "
        "refused, against server-side request forgery; on only for tests or a trusted intranet).",
    )
    media_quarantine_key: SecretStr | None = Field(
        default=None,
        description="A Fernet key (`safestack media quarantine-key`): when set, an image that "
        "matched is kept encrypted in the quarantine for the legal report; unset: never kept.",
    )
    media_quarantine_dir: Path | None = Field(
        default=None, description="Where quarantined images go; `home`/media-quarantine if unset."
    )
    # The reporter's details in a CyberTipline report file (`safestack media case export`).
    media_reporter_org: str | None = Field(default=None, description="Reporting company name.")
    media_reporter_name: str | None = Field(default=None, description="Reporting person's name.")
    media_reporter_email: str | None = Field(default=None, description="Reporting person's email.")
    media_reporter_phone: str | None = Field(default=None, description="Reporting person's phone.")

    # -- C2PA provenance (`safestack media sign|verify`, docs/media.md "Provenance") --------------
    provenance_cert: Path | None = Field(
        default=None,
        description="PEM certificate chain that signs content credentials: the signer's "
        "certificate first, then its intermediates (not the root).",
    )
    provenance_key: Path | None = Field(
        default=None, description="PEM private key of the signer's certificate (never printed)."
    )
    provenance_algorithm: (
        Literal["es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"] | None
    ) = Field(default=None, description="Signature algorithm; from the key's type when unset.")
    provenance_tsa_url: str | None = Field(
        default=None,
        description="RFC 3161 time-stamp authority for signatures (none: offline, untimestamped).",
    )
    provenance_trust_anchors: Path | None = Field(
        default=None,
        description="PEM root certificates whose signatures verify as trusted; when set, signing "
        "also refuses credentials that would not verify as trusted.",
    )
    provenance_sign_images: bool = Field(
        default=False,
        description="The gateway signs every image /v1/images/generations returns (needs "
        "provenance_cert and provenance_key).",
    )
    provenance_sign_text: bool = Field(
        default=False,
        description="The gateway embeds a C2PA text manifest in non-streamed chat answers.",
    )

    # -- the console (`safestack console`, docs/console.md) ----------------------------------------
    console_port: int = Field(
        default=8790, ge=0, le=65535, description="Port the console listens on."
    )
    console_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs console session cookies; a random one per process when unset "
        "(sessions then end when the console restarts). Set it when several processes serve.",
    )
    console_secure_cookies: bool | None = Field(
        default=None,
        description="Mark session cookies Secure (sent over https only). Unset: Secure when the "
        "request came over https; loopback http, the default, gets plain cookies.",
    )
    console_session_hours: float = Field(
        default=12.0, gt=0, le=720, description="Hours a console sign-in lasts."
    )
    console_targets: list[Path] = Field(
        default_factory=list,
        description="YAML files of red-team target specs the console can chat with.",
    )

    # -- abuse monitoring's analysis (`safestack monitor`, docs/monitor.md) -------------------------
    monitor_rules: Path | None = Field(
        default=None,
        description="Monitoring rules YAML for `monitor run`; the shipped example rules when unset.",
    )
    monitor_min_accounts: int = Field(
        default=5,
        ge=2,
        description="k: a cluster (and a distinctive term) is shown only when at least this many "
        "distinct accounts are in it.",
    )

    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.home / 'safestack.db'}"

    def audit_journal_path(self) -> Path:
        return self.audit_journal_dir or self.home / "audit-journal"

    def media_quarantine_path(self) -> Path:
        return self.media_quarantine_dir or self.home / "media-quarantine"
