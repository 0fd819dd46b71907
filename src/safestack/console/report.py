"""An engagement's numbers: coverage (findings per category x language x target), findings by
severity band, agreement; and the engagement report, one self-contained HTML file (no scripts,
no external assets) that works offline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import jinja2

from safestack.console.agreement import Kappa
from safestack.console.attempts import effective
from safestack.policy import BANDS, Policy
from safestack.store.console import Engagement, ExpertFinding, Review


@dataclass(frozen=True)
class Coverage:
    """Rows (category, language) x columns (targets) of finding counts, scope first."""

    targets: list[str]
    rows: list[tuple[str, str, list[int]]]
    total: int


def coverage(engagement: Engagement, findings: Sequence[ExpertFinding]) -> Coverage:
    counts = Counter((f.category, f.language, f.target) for f in findings if f.status != "rejected")
    cells = list(
        dict.fromkeys(
            [(c, lang) for c in engagement.categories for lang in engagement.languages]
            + [(c, lang) for c, lang, _ in sorted(counts)]
        )
    )
    targets = list(dict.fromkeys([*engagement.targets, *(t for _, _, t in sorted(counts))]))
    rows = [(c, lang, [counts[(c, lang, t)] for t in targets]) for c, lang in cells]
    return Coverage(targets=targets, rows=rows, total=sum(counts.values()))


def by_band(
    findings: Sequence[ExpertFinding], reviews: Sequence[Review], policy: Policy
) -> dict[str, int]:
    """Counted findings per severity band, after reviews."""
    latest: dict[str, list[Review]] = {}
    for review in reviews:
        latest.setdefault(review.finding_id, []).append(review)
    bands: dict[str, int] = dict.fromkeys(BANDS, 0)
    for item in findings:
        _, severity, counts = effective(item, latest.get(item.id, []))
        if counts:
            bands[policy.band(severity)] += 1
    return bands


_REPORT = jinja2.Environment(
    loader=jinja2.PackageLoader("safestack.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def report_html(
    engagement: Engagement,
    findings: Sequence[ExpertFinding],
    reviews: Sequence[Review],
    kappas: Sequence[Kappa],
    policy: Policy,
) -> str:
    """The engagement report: scope, coverage, findings by severity, agreement, every finding."""
    decisions: dict[str, Review] = {r.finding_id: r for r in reviews}
    return _REPORT.get_template("report.html").render(
        engagement=engagement,
        coverage=coverage(engagement, findings),
        bands=by_band(findings, reviews, policy),
        findings=findings,
        decisions=decisions,
        kappas=kappas,
        policy=policy,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
