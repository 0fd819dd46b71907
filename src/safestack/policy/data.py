"""The policy's `data` section: the thresholds each corpus filter reads (docs/data-filter.md).

Kept apart from the rest of the policy model, which every stage reads; only `safestack.data` reads
these.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- the corpus filter (`safestack.data`): thresholds each filter reads; docs/data-filter.md --------


class AdultThresholds(_Strict):
    content: float = Field(
        default=0.98,
        ge=0.0,
        le=1.0,
        description="A document whose worst chunk scores at least this for the harm model's "
        "`sexual` category is removed as adult.content (the domain list needs no threshold).",
    )


# Set on the evaluation (tuning) corpus for the `document-harm` model (docs/data-filter.md): the
# previous thresholds + 0.2 took its precision from 0.68 to 1.0 at recall 1.0. sexual, privacy and
# spam are the adult, aggregator and quality filters' job; misinformation scores are not reliable
# on web pages (medical pages), so it is off.
_HARM_CATEGORY_THRESHOLDS: dict[str, float | None] = {
    "hate": 0.8,
    "harassment": 0.5,
    "self-harm": 0.7,
    "illicit": 0.7,
    "violence": 0.7,
    "sexual": None,
    "privacy": None,
    "spam": None,
    "misinformation": None,
}

# Above this, a `sexual/minors` threshold is capped: that category is always removed.
SEXUAL_MINORS_MAX_THRESHOLD = 0.5


class HarmThresholds(_Strict):
    default: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description="Document-level threshold for every harm category not listed in `categories`.",
    )
    categories: dict[str, float | None] = Field(
        default_factory=lambda: dict(_HARM_CATEGORY_THRESHOLDS),
        description="Per-category thresholds (a harm head label, e.g. hate); null turns a "
        "category off, except sexual/minors, which is always on.",
    )
    sexual_minors: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Threshold for sexual/minors; values above "
        f"{SEXUAL_MINORS_MAX_THRESHOLD} are capped to it: it can be made stricter, never off.",
    )

    def threshold(self, category: str) -> float | None:
        """The threshold that removes `category`, or None when the policy turned it off."""
        if category == "sexual/minors":
            configured = self.categories.get(category, self.sexual_minors)
            configured = self.sexual_minors if configured is None else configured
            return min(configured, self.sexual_minors, SEXUAL_MINORS_MAX_THRESHOLD)
        return self.categories.get(category, self.default)


class AggregatorThresholds(_Strict):
    pii_density: float = Field(
        default=80.0,
        gt=0.0,
        description="Weighted personal-data items per 1,000 tokens that remove a page "
        "(person markers such as ages, birth dates and relatives weigh 2, contacts 1).",
    )
    pii_density_review: float = Field(
        default=50.0,
        ge=0.0,
        description="Densities from this up to pii_density are re-counted with presidio (names, "
        "places) when the filter's `presidio` option is on.",
    )
    min_records: int = Field(
        default=3,
        ge=2,
        description="Repeated person records (a name next to an age, address, phone or "
        "relatives) that make a page a listing of people.",
    )
    paste_site_factor: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="On a paste site (a weaker signal) the density and record thresholds are "
        "multiplied by this.",
    )

    @model_validator(mode="after")
    def _review_below(self) -> AggregatorThresholds:
        if self.pii_density_review > self.pii_density:
            raise ValueError("pii_density_review must not exceed pii_density")
        return self


class QualityThresholds(_Strict):
    # Gopher quality rules: Rae et al. 2021, "Scaling Language Models", appendix A.1.1.
    min_words: int = Field(default=50, ge=0, description="Gopher: fewer words are removed.")
    max_words: int = Field(default=100_000, gt=0, description="Gopher: more words are removed.")
    min_mean_word_length: float = Field(default=3.0, ge=0.0)
    max_mean_word_length: float = Field(default=10.0, gt=0.0)
    max_symbol_word_ratio: float = Field(
        default=0.1, ge=0.0, description="Gopher: '#' and ellipses per word."
    )
    max_bullet_lines: float = Field(default=0.9, ge=0.0, le=1.0)
    max_ellipsis_lines: float = Field(default=0.3, ge=0.0, le=1.0)
    min_alpha_words: float = Field(
        default=0.8, ge=0.0, le=1.0, description="Gopher: share of words with a letter."
    )
    min_stop_words: int = Field(default=2, ge=0)
    # Gopher repetition rules, same appendix (table A1).
    max_dup_line_frac: float = Field(default=0.3, ge=0.0, le=1.0)
    max_dup_para_frac: float = Field(default=0.3, ge=0.0, le=1.0)
    max_dup_line_char_frac: float = Field(default=0.2, ge=0.0, le=1.0)
    max_dup_para_char_frac: float = Field(default=0.2, ge=0.0, le=1.0)
    max_top_ngram_char_frac: dict[int, float] = Field(
        default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16},
        description="n -> highest share of characters in the most frequent n-gram.",
    )
    max_dup_ngram_char_frac: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n -> highest share of characters in duplicated n-grams.",
    )
    # safestack's own spam rules, set on the evaluation corpus (docs/data-filter.md).
    max_keyword_share: float = Field(
        default=0.08,
        gt=0.0,
        le=1.0,
        description="Highest share of tokens one non-stop word may take (keyword stuffing).",
    )
    max_link_density: float = Field(
        default=0.25, gt=0.0, le=1.0, description="Highest share of characters inside links."
    )
    max_boilerplate_lines: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Highest share of lines that are navigation, cookie or copyright lines.",
    )
    languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description="ISO 639-1 codes kept by the language check; empty turns it off.",
    )
    min_language_confidence: float = Field(
        default=0.65,
        ge=0.0,
        le=1.0,
        description="py3langid's normalised probability the top allowed language must reach.",
    )


class DataSettings(_Strict):
    """Thresholds for the corpus filters; the filters' options hold everything that is not one."""

    adult: AdultThresholds = Field(default_factory=AdultThresholds)
    harm: HarmThresholds = Field(default_factory=HarmThresholds)
    aggregator: AggregatorThresholds = Field(default_factory=AggregatorThresholds)
    quality: QualityThresholds = Field(default_factory=QualityThresholds)
