"""The `quality` corpus filter: Gopher's quality and repetition rules, spam signals and language.

Gopher rules after Rae et al. 2021 ("Scaling Language Models: Methods, Analysis & Insights from
Training Gopher", appendix A.1.1, table A1), written here from the paper; then keyword stuffing,
link density and boilerplate lines; then language identification with py3langid. Thresholds live
in the policy (`data.quality`); the first rule a document breaks is its reason.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field

from safestack.data.document import Document, Removal
from safestack.data.filters.base import FilterOptions, corpus_filter
from safestack.data.filters.models import FilterModels, ModelFilter
from safestack.policy.data import QualityThresholds

# Gopher's stop words: a document needs at least two of them (Rae et al. 2021, A.1.1).
GOPHER_STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
# English function words not shared with other Latin-script languages ("a", "in", "no" are):
# their share of a text's words is the language check's fast path (English prose: ~30-45%).
_ENGLISH = frozenset(
    [
        "the",
        "of",
        "and",
        "to",
        "is",
        "that",
        "for",
        "it",
        "was",
        "with",
        "as",
        "be",
        "by",
        "on",
        "are",
        "this",
        "from",
        "at",
        "or",
        "have",
        "an",
        "they",
        "which",
        "you",
        "were",
        "but",
        "not",
        "his",
        "her",
        "their",
        "has",
        "had",
        "been",
        "would",
        "will",
        "can",
        "there",
        "what",
        "all",
        "we",
        "if",
        "its",
        "also",
        "more",
        "when",
        "who",
        "our",
        "these",
        "than",
        "them",
        "into",
        "should",
        "could",
        "about",
    ]
)
_ENGLISH_FAST_PATH = 0.2
# Characters that are not letters: punctuation becomes a word break, and a token made only of
# these has no letter (Gopher's alphabetic-word rule). str.translate runs in C: no regex per word.
_NOT_LETTERS = string.punctuation + string.digits + "•–—…€£¥©®™·“”‘’«»¿¡§¶°±×÷|"
_TO_SPACE = str.maketrans({c: " " for c in _NOT_LETTERS})
_DELETE = str.maketrans("", "", _NOT_LETTERS)
_LINK = re.compile(r"\[[^\]\n]{0,200}\]\([^)\s]{1,500}\)|https?://\S+|\bwww\.\S+")
_BULLETS = ("•", "-", "*", "●", "◦", "‣", "–", "·", "▪", "►", "✓")
_ELLIPSES = ("...", "…")
_BOILERPLATE = re.compile(
    r"cookie|privacy policy|terms (?:of|and) (?:use|service|conditions)|all rights reserved|©|"
    r"copyright|sign in|log ?in|sign up|subscribe|newsletter|skip to (?:main )?content|"
    r"\bmenu\b|\bhome\b|share (?:on|this)|follow us|contact us|back to top|accept all|"
    r"read more|next page|previous page|\bsitemap\b|powered by",
    re.IGNORECASE,
)
_BOILERPLATE_MAX_WORDS = 12
_URL_WORDS = frozenset({"http", "https", "www", "com", "org", "net", "html", "php"})
_PARAGRAPH = re.compile(r"\n\s*\n")


@dataclass(frozen=True, slots=True)
class Failure:
    rule: str
    score: float
    threshold: float
    evidence: str | None = None


class QualityOptions(FilterOptions):
    langid_chars: int = Field(
        default=2000,
        ge=100,
        description="Characters of a document given to py3langid (its cost grows with length).",
    )
    english_fast_path: bool = Field(
        default=True,
        description="Accept a text as English without py3langid when English function words "
        f"make up at least {_ENGLISH_FAST_PATH:.0%} of its words (when 'en' is allowed).",
    )


@corpus_filter("quality")
class QualityFilter(ModelFilter):
    """Remove low-quality, spammy and wrong-language documents (`quality.<rule>`)."""

    version = "1"
    Options: ClassVar[type[FilterOptions]] = QualityOptions
    options: QualityOptions

    def apply(self, documents: Sequence[Document]) -> list[Removal | None]:
        out: list[Removal | None] = []
        for document in documents:
            failure = check_quality(
                document.text, self.policy.data.quality, self.options, self.models
            )
            out.append(
                None
                if failure is None
                else self.removal(
                    failure.rule, failure.score, failure.threshold, evidence=failure.evidence
                )
            )
        return out


def check_quality(
    text: str,
    limits: QualityThresholds,
    options: QualityOptions | None = None,
    models: FilterModels | None = None,
) -> Failure | None:
    """The first rule `text` breaks, or None. One tokenisation pass feeds every rule.

    `models` supplies the language identifier (loaded on first need); pass the same one to
    many calls, as QualityFilter does.
    """
    options = options or QualityOptions()
    tokens = text.split()
    n_tokens = len(tokens)
    if not limits.min_words <= n_tokens <= limits.max_words:
        bound = limits.min_words if n_tokens < limits.min_words else limits.max_words
        return Failure("gopher_word_count", n_tokens, bound)
    words = text.lower().translate(_TO_SPACE).split()
    counts = Counter(words)
    language = _language(
        text, words, counts, limits, options, models if models is not None else FilterModels()
    )
    if language is not None:
        return language
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (
        _gopher_quality(text, tokens, words, counts, lines, limits)
        or _repetition(text, words, counts, lines, limits)
        or _spam(text, words, counts, lines, limits)
    )


def _language(
    text: str,
    words: list[str],
    counts: Counter[str],
    limits: QualityThresholds,
    options: QualityOptions,
    models: FilterModels,
) -> Failure | None:
    allowed = limits.languages
    if not allowed:
        return None
    if options.english_fast_path and "en" in allowed and words:
        share = sum(counts[w] for w in _ENGLISH.intersection(counts)) / len(words)
        if share >= _ENGLISH_FAST_PATH:
            return None
    ranked = models.language_identifier().rank(text[: options.langid_chars])
    top_language, top_probability = ranked[0]
    best = max((p for lang, p in ranked if lang in allowed), default=0.0)
    if best >= limits.min_language_confidence:
        return None
    return Failure(
        "language",
        float(best),
        limits.min_language_confidence,
        f"{top_language} {float(top_probability):.2f}",
    )


def _gopher_quality(
    text: str,
    tokens: list[str],
    words: list[str],
    counts: Counter[str],
    lines: list[str],
    limits: QualityThresholds,
) -> Failure | None:
    n_tokens = len(tokens)
    mean_length = sum(map(len, words)) / max(1, len(words))
    if not limits.min_mean_word_length <= mean_length <= limits.max_mean_word_length:
        bound = (
            limits.min_mean_word_length
            if mean_length < limits.min_mean_word_length
            else limits.max_mean_word_length
        )
        return Failure("gopher_mean_word_length", mean_length, bound)
    symbols = text.count("#") + text.count("...") + text.count("…")
    if symbols / n_tokens > limits.max_symbol_word_ratio:
        return Failure("gopher_symbol_word_ratio", symbols / n_tokens, limits.max_symbol_word_ratio)
    n_lines = max(1, len(lines))
    bullets = sum(1 for line in lines if line.startswith(_BULLETS)) / n_lines
    if bullets > limits.max_bullet_lines:
        return Failure("gopher_bullet_lines", bullets, limits.max_bullet_lines)
    ellipsis = sum(1 for line in lines if line.endswith(_ELLIPSES)) / n_lines
    if ellipsis > limits.max_ellipsis_lines:
        return Failure("gopher_ellipsis_lines", ellipsis, limits.max_ellipsis_lines)
    alpha = len(text.translate(_DELETE).split()) / n_tokens
    if alpha < limits.min_alpha_words:
        return Failure("gopher_alpha_words", alpha, limits.min_alpha_words)
    stop_words = sum(counts[w] for w in GOPHER_STOP_WORDS.intersection(counts))
    if stop_words < limits.min_stop_words:
        return Failure("gopher_stop_words", stop_words, limits.min_stop_words)
    return None


def _duplicates(pieces: list[str]) -> tuple[float, float]:
    """Gopher's duplicate fractions: of pieces, and of characters in pieces seen before."""
    seen: set[str] = set()
    count = chars = 0
    for piece in pieces:
        if piece in seen:
            count += 1
            chars += len(piece)
        else:
            seen.add(piece)
    total = max(1, sum(map(len, pieces)))
    return count / max(1, len(pieces)), chars / total


def _repetition(
    text: str,
    words: list[str],
    word_counts: Counter[str],
    lines: list[str],
    limits: QualityThresholds,
) -> Failure | None:
    paragraphs = [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]
    checks = (
        ("dup_para", paragraphs, limits.max_dup_para_frac, limits.max_dup_para_char_frac),
        ("dup_line", lines, limits.max_dup_line_frac, limits.max_dup_line_char_frac),
    )
    for name, pieces, max_frac, max_chars in checks:
        frac, chars = _duplicates(pieces)
        if frac > max_frac:
            return Failure(f"repetition_{name}_frac", frac, max_frac)
        if chars > max_chars:
            return Failure(f"repetition_{name}_char_frac", chars, max_chars)
    total_chars = max(1, sum(map(len, words)))
    # An n-gram's characters times its count are at most n times the largest count x length of
    # one word, so most prose skips these counts altogether.
    word_bound = max((c * len(w) for w, c in word_counts.items()), default=0) / total_chars
    for n, limit in sorted(limits.max_top_ngram_char_frac.items()):
        if n * word_bound <= limit:
            continue
        # A set is ~3x cheaper than a Counter: when no n-gram repeats, none is "top" (share 0).
        distinct = len(set(zip(*(words[i:] for i in range(n)), strict=False)))
        if not distinct or (distinct > len(words) - n and limit >= 0):
            continue
        grams = Counter(zip(*(words[i:] for i in range(n)), strict=False))
        gram, count = grams.most_common(1)[0]
        # Only a repeated n-gram counts: a text of unique n-grams has no "top" one to blame.
        share = count * sum(map(len, gram)) / total_chars if count > 1 else 0.0
        if share > limit:
            return Failure(f"repetition_top_{n}gram", share, limit, " ".join(gram))
    dup_limits = sorted(limits.max_dup_ngram_char_frac.items())
    if not dup_limits:
        return None
    # An n-gram can repeat only where the shortest checked n-gram repeats: n-grams are tracked
    # at those positions alone, and a page where none repeats (most prose) costs one set.
    first_n = dup_limits[0][0]
    shortest = list(zip(*(words[i:] for i in range(first_n)), strict=False))
    if len(set(shortest)) == len(shortest):
        return None
    lengths = list(map(len, words))
    counts = Counter(shortest)
    candidates = [i for i, gram in enumerate(shortest) if counts[gram] > 1]
    if not candidates:
        return None
    for n, limit in dup_limits:
        covered = bytearray(len(words))
        seen: set[tuple[str, ...]] = set()
        for i in candidates:
            gram = tuple(words[i : i + n])
            if len(gram) < n:
                break
            if gram in seen:
                covered[i : i + n] = b"\x01" * n
            else:
                seen.add(gram)
        share = (
            sum(length for length, hit in zip(lengths, covered, strict=True) if hit) / total_chars
        )
        if share > limit:
            return Failure(f"repetition_dup_{n}gram", share, limit)
    return None


def _spam(
    text: str,
    words: list[str],
    counts: Counter[str],
    lines: list[str],
    limits: QualityThresholds,
) -> Failure | None:
    has_link = "://" in text or "www." in text or "](" in text
    link_chars = sum(len(m) for m in _LINK.findall(text)) if has_link else 0
    density = link_chars / max(1, len(text))
    if density > limits.max_link_density:
        return Failure("link_density", density, limits.max_link_density)
    top = [
        (n, w)
        for w, n in counts.most_common(12)
        if len(w) > 2 and w not in _ENGLISH and w not in _URL_WORDS
    ]
    top = [(n, w) for n, w in top if w not in GOPHER_STOP_WORDS]
    if top:
        count, word = top[0]
        share = count / len(words)
        if share > limits.max_keyword_share:
            return Failure("keyword_stuffing", share, limits.max_keyword_share, word)
    if lines:
        boilerplate = sum(
            1
            for line in lines
            if len(line.split()) <= _BOILERPLATE_MAX_WORDS and _BOILERPLATE.search(line)
        ) / len(lines)
        if boilerplate > limits.max_boilerplate_lines:
            return Failure("boilerplate", boilerplate, limits.max_boilerplate_lines)
    return None
