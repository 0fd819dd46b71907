"""Run statistics: per-shard counts, merged into stats.json and a self-contained report.html.

The end of a corpus run. Every count obeys `kept + removed + errored == read`, per shard and in
total; a violation is a bug and raises AccountingError rather than writing a wrong report.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from markupsafe import Markup

from safestack.data.document import Document, Removal

SCHEMA_VERSION = 1
SAMPLES_PER_REASON = 5
SAMPLE_CHARS = 500
TOP_DOMAINS = 100


class AccountingError(RuntimeError):
    """Documents were lost or double-counted: an internal bug, never a user error."""


@dataclass(slots=True)
class ShardStats:
    """What happened to one shard's documents (also the content of its `.done/<shard>.json`)."""

    shard: str
    input: str
    fingerprint: str = ""
    read: int = 0
    kept: int = 0
    removed: int = 0
    errored: int = 0
    removed_by_reason: dict[str, int] = field(default_factory=dict)
    removed_by_filter: dict[str, int] = field(default_factory=dict)
    removed_by_category: dict[str, int] = field(default_factory=dict)
    removed_by_domain: dict[str, int] = field(default_factory=dict)
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    input_bytes: int = 0
    kept_bytes: int = 0
    seconds: float = 0.0
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Up to SAMPLES_PER_REASON removed documents per reason, for review in the report."""

    def count_removed(self, doc: Document, removal: Removal, domain: str | None) -> None:
        self.removed += 1
        reason = removal.reason
        self.removed_by_reason[reason] = self.removed_by_reason.get(reason, 0) + 1
        self.removed_by_filter[removal.filter] = self.removed_by_filter.get(removal.filter, 0) + 1
        if removal.category is not None:
            cat = removal.category
            self.removed_by_category[cat] = self.removed_by_category.get(cat, 0) + 1
        if domain is not None:
            self.removed_by_domain[domain] = self.removed_by_domain.get(domain, 0) + 1
        samples = self.samples.setdefault(reason, [])
        if len(samples) < SAMPLES_PER_REASON:
            samples.append(
                {
                    "id": doc.id,
                    "source": doc.source,
                    "url": doc.url,
                    "text": doc.text[:SAMPLE_CHARS],
                    **removal.to_json(),
                }
            )

    def count_error(self, reason: str) -> None:
        self.errored += 1
        self.errors_by_reason[reason] = self.errors_by_reason.get(reason, 0) + 1

    def check(self) -> None:
        if self.kept + self.removed + self.errored != self.read:
            raise AccountingError(
                f"shard {self.shard}: kept {self.kept} + removed {self.removed} + errored "
                f"{self.errored} != read {self.read}"
            )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardStats:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(slots=True)
class RunStats:
    """A whole run: the merged shard counts, and where the outputs are."""

    out_dir: Path
    inputs: list[str]
    pipeline: dict[str, Any]
    policy: str
    fingerprint: str
    shards: list[ShardStats]
    skipped_shards: int = 0
    """Shards already done by an earlier run with the same pipeline and policy (not redone)."""
    processed: int = 0
    """Documents read by this run (not counting skipped shards): the basis of docs/s."""
    seconds: float = 0.0

    def _total(self, name: str) -> int:
        return sum(int(getattr(s, name)) for s in self.shards)

    @property
    def read(self) -> int:
        return self._total("read")

    @property
    def kept(self) -> int:
        return self._total("kept")

    @property
    def removed(self) -> int:
        return self._total("removed")

    @property
    def errored(self) -> int:
        return self._total("errored")

    def merged(self, name: str) -> dict[str, int]:
        """A per-shard counter summed over shards, largest first (ties by name)."""
        total: Counter[str] = Counter()
        for shard in self.shards:
            total.update(getattr(shard, name))
        return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))

    def samples(self) -> dict[str, list[dict[str, Any]]]:
        merged: dict[str, list[dict[str, Any]]] = {}
        for shard in self.shards:
            for reason, docs in shard.samples.items():
                room = SAMPLES_PER_REASON - len(merged.setdefault(reason, []))
                merged[reason].extend(docs[:room])
        return dict(sorted(merged.items()))

    def check(self) -> None:
        for shard in self.shards:
            shard.check()
        if self.kept + self.removed + self.errored != self.read:
            raise AccountingError(f"run totals do not add up: {self.to_json()['totals']}")

    @property
    def stats_path(self) -> Path:
        return self.out_dir / "stats.json"

    @property
    def report_path(self) -> Path:
        return self.out_dir / "report.html"

    def to_json(self) -> dict[str, Any]:
        """stats.json: counts first; timings (`seconds`, `docs_per_second`, the shards' `seconds`)
        and `skipped_shards` are the only fields that differ between two runs over the same input."""
        domains = self.merged("removed_by_domain")
        return {
            "schema_version": SCHEMA_VERSION,
            "inputs": self.inputs,
            "pipeline": self.pipeline,
            "pipeline_fingerprint": self.fingerprint,
            "policy": self.policy,
            "totals": {
                "shards": len(self.shards),
                "read": self.read,
                "kept": self.kept,
                "removed": self.removed,
                "errored": self.errored,
                "input_bytes": self._total("input_bytes"),
                "kept_bytes": self._total("kept_bytes"),
            },
            "removed_by_reason": self.merged("removed_by_reason"),
            "removed_by_filter": self.merged("removed_by_filter"),
            "removed_by_category": self.merged("removed_by_category"),
            "removed_by_top_domain": dict(list(domains.items())[:TOP_DOMAINS]),
            "errors_by_reason": self.merged("errors_by_reason"),
            "seconds": round(self.seconds, 3),
            "skipped_shards": self.skipped_shards,
            "docs_per_second": round(self.processed / self.seconds, 1)
            if self.seconds > 0
            else None,
            "shards": [
                {k: v for k, v in s.to_json().items() if k not in ("samples", "removed_by_domain")}
                for s in self.shards
            ],
        }


def write_summary(stats: RunStats) -> None:
    """stats.json and report.html in the output directory."""
    stats.check()
    stats.stats_path.write_text(
        json.dumps(stats.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8"
    )
    stats.report_path.write_text(render_report(stats), "utf-8")


def _bar(counts: dict[str, int], title: str, limit: int = 20) -> str:
    import plotly.graph_objects as go

    items = list(counts.items())[:limit]
    figure = go.Figure(
        go.Bar(x=[v for _, v in items][::-1], y=[k for k, _ in items][::-1], orientation="h")
    )
    figure.update_layout(
        title=title,
        height=120 + 26 * max(len(items), 1),
        margin={"l": 220, "r": 20, "t": 50, "b": 30},
    )
    return str(figure.to_html(full_html=False, include_plotlyjs=False))


def render_report(stats: RunStats) -> str:
    """A self-contained page: plotly.js inline (no CDN), charts, error counts, removed samples."""
    import jinja2
    import plotly.offline

    template_text = (
        resources.files("safestack.data").joinpath("assets", "summary.html.j2").read_text("utf-8")
    )
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    charts = []
    for name, title in (
        ("removed_by_reason", "Removed by reason"),
        ("removed_by_category", "Removed by category"),
        ("removed_by_domain", "Removed by domain (top 20)"),
    ):
        counts = stats.merged(name)
        if counts:
            charts.append(Markup(_bar(counts, title)))
    data = stats.to_json()
    return env.from_string(template_text).render(
        stats=data,
        totals=data["totals"],
        charts=charts,
        errors=data["errors_by_reason"],
        samples=stats.samples(),
        plotly_js=Markup(plotly.offline.get_plotlyjs()),
    )
