"""Themes in the traffic: flagged and sampled requests clustered, described by facets, shown only
when they span enough accounts.

Privacy by construction, in this order: the text is scrubbed of personal data (`scrub`) before it
is embedded or counted; a cluster is kept only when at least `min_accounts` (k) distinct accounts
are in it; a distinctive term is kept only when k accounts of the cluster used it; the summary is
built from facets (policy categories, techniques, language, distinctive terms, counts and dates),
never from a request's text, so an instruction hidden in a message has nothing to leak through.
Embeddings come from the built-in models (the fast bag-of-pieces tier by default), clusters from
scikit-learn's HDBSCAN over a PCA projection, terms from class-based TF-IDF (c-TF-IDF, Grootendorst
2022, BERTopic).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from safestack.judge.builtin.models import BuiltinModels
from safestack.monitor.scrub import Scrub, Scrubber

TEXT_SOURCE_NOTE = {
    "content": "request text kept in the audit log (audit_content), scrubbed of personal data",
    "categories": "the deployment keeps no request text (audit_content is off): flagged requests "
    "were grouped by their flagged categories only; keep content to find themes within them",
}

# Techniques, read from the scrubbed text (a match of the pattern) or from attack categories.
TECHNIQUES: dict[str, re.Pattern[str]] = {
    "role-play": re.compile(
        r"\b(pretend|role[- ]?play|act as|you are now|stay in character)\b", re.I
    ),
    "fictional framing": re.compile(
        r"\b(story|novel|fiction|screenplay|my character|hypothetical(ly)?|thriller)\b", re.I
    ),
    "instruction override": re.compile(
        r"\b(ignore (all|any|the|your|previous)|disregard|forget (your|all|the) (rules|instructions))",
        re.I,
    ),
    "encoding": re.compile(r"\b(base64|rot13|hexadecimal|encoded|decode this)\b", re.I),
    "decomposition": re.compile(
        r"\b(step \d|part \d|one step at a time|just the (first|next) (step|part))\b", re.I
    ),
    "authority claim": re.compile(
        r"\b(i am an? (doctor|police|officer|researcher|professor|nurse|chemist)|for (my )?research|"
        r"authori[sz]ed|penetration test|pentest)\b",
        re.I,
    ),
}
ATTACK_TECHNIQUES = {
    "jailbreak": "jailbreak",
    "prompt-injection": "prompt injection",
    "system-prompt-extraction": "system-prompt extraction",
}
_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")
_TOKEN = r"(?u)\b[^\W\d_][^\W\d_]{2,}\b"


class ClusterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_accounts: int = Field(default=5, ge=1, description="k: a cluster spans this many accounts.")
    max_texts: int = Field(default=10_000, ge=10, description="Requests clustered at most.")
    per_account: int = Field(default=3, ge=1, description="Requests taken from one account.")
    min_cluster_size: int = Field(default=10, ge=2, description="HDBSCAN's smallest cluster.")
    dims: int = Field(default=16, ge=2, description="PCA components before HDBSCAN.")
    scrub: Scrub = "patterns"
    tier: Literal["fast", "accurate"] = "fast"
    terms: int = Field(default=8, ge=1, description="Distinctive terms per cluster.")
    merge_similarity: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Clusters whose c-TF-IDF vectors are this similar (cosine, average linkage) "
        "are one theme; 1 keeps HDBSCAN's clusters as they are.",
    )
    seed: int = 0


class Cluster(BaseModel):
    """One theme: counts, spread and facets. `members`: the accounts in it (pseudonymous ids)."""

    model_config = ConfigDict(frozen=True)

    id: str
    label: str
    events: int
    accounts: int
    keys: int
    focus: float = Field(
        description="Mean share of its accounts' sampled requests that fall in this cluster: near "
        "1 for accounts that do nothing else (a campaign, a bot), lower for people with many "
        "interests."
    )
    first_seen: datetime
    last_seen: datetime
    flagged_share: float
    categories: dict[str, float]
    techniques: dict[str, float]
    language: str
    terms: list[str]
    summary: str
    members: list[str]


class Clustering(BaseModel):
    model_config = ConfigDict(frozen=True)

    clusters: list[Cluster]
    texts: int = Field(description="Requests clustered (after sampling).")
    hidden_clusters: int = Field(description="Clusters left out: fewer than k accounts.")
    hidden_events: int
    noise: int = Field(description="Requests HDBSCAN put in no cluster.")
    min_accounts: int
    text_source: Literal["content", "categories"]
    note: str
    schema_version: int = 1


def sample_requests(frames: Iterable[pl.DataFrame], options: ClusterOptions) -> pl.DataFrame:
    """Flagged requests first, then others, at most `per_account` per account and `max_texts`
    in all (seeded); the text, or the flagged categories when no text was kept."""
    keep = []
    for frame in frames:
        keep.append(
            frame.filter(pl.col("key_id").is_not_null()).select(
                "at",
                "key_id",
                "categories",
                "text",
                pl.when(pl.col("end_user").is_not_null())
                .then(pl.lit("user:") + pl.col("key_id") + pl.lit(":") + pl.col("end_user"))
                .otherwise(pl.lit("key:") + pl.col("key_id"))
                .alias("account"),
                (pl.col("categories").list.len() > 0).alias("flagged"),
            )
        )
    if not keep:
        return pl.DataFrame()
    events = pl.concat(keep)
    with_text = events.filter(pl.col("text").is_not_null())
    if with_text.is_empty():
        with_text = events.filter(pl.col("flagged")).with_columns(
            pl.col("categories").list.sort().list.join(" ").alias("text")
        )
    if with_text.is_empty():
        return with_text
    rng = np.random.default_rng(options.seed)
    chosen = (
        with_text.with_columns(pl.Series("draw", rng.random(with_text.height)))
        .sort(["flagged", "draw"], descending=[True, False])
        .with_columns(pl.int_range(pl.len()).over("account").alias("rank"))
        .filter(pl.col("rank") < options.per_account)
    )
    if chosen.height > options.max_texts:
        flagged = chosen.filter(pl.col("flagged"))
        rest = chosen.filter(~pl.col("flagged"))
        room = max(options.max_texts - flagged.height, 0)
        chosen = pl.concat(
            [
                flagged.head(options.max_texts),
                rest.sample(min(room, rest.height), seed=options.seed),
            ]
        )
    return chosen.drop("draw", "rank").sort("at")


def cluster_requests(
    requests: pl.DataFrame, models: BuiltinModels, options: ClusterOptions
) -> Clustering:
    """Scrub, embed, cluster and describe the sampled requests (`sample_requests`)."""
    if requests.is_empty():
        return _result([], requests, 0, 0, 0, options, "content")
    texts = requests["text"].to_list()
    source: Literal["content", "categories"] = (
        "content" if _has_free_text(requests) else "categories"
    )
    scrubbed = Scrubber(models, options.scrub).scrub(texts) if source == "content" else texts
    unique, index = np.unique(np.asarray(scrubbed, dtype=object), return_inverse=True)
    documents = [_PLACEHOLDER.sub(" ", t) for t in scrubbed]
    if source == "categories":  # no text: a theme is one combination of flagged categories
        labels = np.asarray(index).ravel()
    else:
        vectors = models.embedder(options.tier).encode([str(u) for u in unique])[index]
        labels = _merge_themes(documents, _hdbscan(vectors, options), options.merge_similarity)
    described: list[Cluster] = []
    hidden = hidden_events = 0
    accounts = requests["account"].to_list()
    term_table = _distinctive_terms(documents, labels, accounts, options)
    languages = _Languages()
    sampled = Counter(accounts)
    for label in sorted({int(x) for x in labels.tolist()} - {-1}):
        rows = np.flatnonzero(labels == label)
        members = {accounts[i] for i in rows}
        if len(members) < options.min_accounts:
            hidden += 1
            hidden_events += len(rows)
            continue
        in_cluster = Counter(accounts[i] for i in rows)
        focus = sum(in_cluster[a] / sampled[a] for a in members) / len(members)
        cluster = _describe(
            label, rows, requests, scrubbed, term_table.get(label, []), source, languages
        )
        described.append(cluster.model_copy(update={"focus": round(focus, 3)}))
    described.sort(key=lambda c: (-c.focus, -c.accounts))
    described = [c.model_copy(update={"id": f"c{i + 1}"}) for i, c in enumerate(described)]
    noise = int((labels == -1).sum())
    return _result(described, requests, hidden, hidden_events, noise, options, source)


def _class_counts(
    documents: Sequence[str], labels: np.ndarray[Any, Any]
) -> tuple[list[int], np.ndarray[Any, Any], Any, np.ndarray[Any, Any]] | None:
    """The clustered labels, the vocabulary, the document-term matrix (binary) and the terms'
    counts per cluster; None when there is no cluster or no word."""
    from sklearn.feature_extraction.text import CountVectorizer

    clustered = [int(x) for x in sorted(set(labels.tolist()) - {-1})]
    if not clustered:
        return None
    try:
        counts = CountVectorizer(
            stop_words="english", token_pattern=_TOKEN, lowercase=True, binary=True
        ).fit(documents)
    except ValueError:  # no words at all
        return None
    matrix = counts.transform(documents).tocsr()
    per_class = np.vstack(
        [np.asarray(matrix[labels == c].sum(axis=0)).ravel() for c in clustered]
    ).astype(np.float64)
    return clustered, counts.get_feature_names_out(), matrix, per_class


def _merge_themes(
    documents: Sequence[str], labels: np.ndarray[Any, Any], similarity: float
) -> np.ndarray[Any, Any]:
    """HDBSCAN's clusters grouped into themes by the cosine similarity of their c-TF-IDF
    vectors (average linkage), as BERTopic's topic reduction does: one campaign split into a
    cluster per phrasing comes back as one theme."""
    counted = _class_counts(documents, labels)
    if counted is None or similarity >= 1.0 or len(counted[0]) < 2:
        return labels
    from sklearn.cluster import AgglomerativeClustering

    clustered, _, _, per_class = counted
    vectors = _ctfidf(per_class)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.maximum(norms, 1e-12)
    themes = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=1.0 - similarity
    ).fit_predict(vectors)
    mapping = {label: int(theme) for label, theme in zip(clustered, themes, strict=True)}
    return np.asarray([mapping.get(int(x), -1) for x in labels])


def _ctfidf(per_class: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """c-TF-IDF: a term's frequency in the class times log(1 + A / its frequency overall), A the
    mean number of words per class (Grootendorst 2022)."""
    words = per_class.sum(axis=1, keepdims=True)
    tf = per_class / np.maximum(words, 1.0)
    idf = np.log1p(float(words.mean()) / np.maximum(per_class.sum(axis=0), 1.0))
    return np.asarray(tf * idf)


def _has_free_text(requests: pl.DataFrame) -> bool:
    """True unless every text is exactly its flagged categories (the no-content fallback)."""
    for text, categories in zip(
        requests["text"].to_list(), requests["categories"].to_list(), strict=True
    ):
        if text != " ".join(sorted(categories or [])):
            return True
    return False


def _result(
    clusters: list[Cluster],
    requests: pl.DataFrame,
    hidden: int,
    hidden_events: int,
    noise: int,
    options: ClusterOptions,
    source: Literal["content", "categories"],
) -> Clustering:
    return Clustering(
        clusters=clusters,
        texts=requests.height,
        hidden_clusters=hidden,
        hidden_events=hidden_events,
        noise=noise,
        min_accounts=options.min_accounts,
        text_source=source,
        note=TEXT_SOURCE_NOTE[source],
    )


def _hdbscan(vectors: np.ndarray[Any, Any], options: ClusterOptions) -> np.ndarray[Any, Any]:
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA

    n = vectors.shape[0]
    if n < options.min_cluster_size:
        return np.full(n, -1)
    dims = min(options.dims, vectors.shape[1], n - 1)
    reduced = PCA(n_components=dims, random_state=options.seed).fit_transform(vectors)
    model = HDBSCAN(min_cluster_size=options.min_cluster_size, min_samples=5, copy=False)
    return np.asarray(model.fit_predict(reduced))


def _distinctive_terms(
    documents: Sequence[str],
    labels: np.ndarray[Any, Any],
    accounts: Sequence[str],
    options: ClusterOptions,
) -> dict[int, list[str]]:
    """The top c-TF-IDF terms of each cluster, each used by at least k accounts of the cluster."""
    counted = _class_counts(documents, labels)
    if counted is None:
        return {}
    clustered, vocabulary, matrix, per_class = counted
    scores = _ctfidf(per_class)
    out: dict[int, list[str]] = {}
    account_array = np.asarray(accounts, dtype=object)
    for row, label in enumerate(clustered):
        members = np.flatnonzero(labels == label)
        picked: list[str] = []
        for column in np.argsort(-scores[row]):
            if scores[row, column] <= 0 or len(picked) >= options.terms:
                break
            users = matrix[members, column].nonzero()[0]
            if len(set(account_array[members[users]])) >= options.min_accounts:
                picked.append(str(vocabulary[column]))
        out[label] = picked
    return out


def _describe(
    label: int,
    rows: np.ndarray[Any, Any],
    requests: pl.DataFrame,
    scrubbed: Sequence[str],
    terms: list[str],
    source: str,
    languages: _Languages,
) -> Cluster:
    part = requests[rows.tolist()]
    n = part.height
    category_counts: Counter[str] = Counter(
        c for categories in part["categories"].to_list() for c in categories or []
    )
    categories = {c: round(k / n, 3) for c, k in category_counts.most_common() if k / n >= 0.05}
    texts = [scrubbed[i] for i in rows]
    techniques: dict[str, float] = {}
    for name, pattern in TECHNIQUES.items():
        share = sum(1 for t in texts if pattern.search(t)) / n
        if share >= 0.2:
            techniques[name] = round(share, 3)
    for category, name in ATTACK_TECHNIQUES.items():
        if categories.get(category, 0.0) >= 0.2:
            techniques[name] = categories[category]
    language = languages(texts) if source == "content" else "xx"
    accounts = sorted(set(part["account"].to_list()))
    keys = part["key_id"].n_unique()
    first, last = part["at"].min(), part["at"].max()
    flagged_share = round(float(part["flagged"].mean() or 0.0), 3)
    top = next(iter(categories), "unflagged")
    title = f"{top}: {', '.join(terms[:3])}" if terms else top
    summary = _summary(
        n, len(accounts), keys, first, last, flagged_share, categories, techniques, language, terms
    )
    return Cluster(
        id=str(label),
        label=title,
        events=n,
        accounts=len(accounts),
        keys=keys,
        focus=0.0,
        first_seen=first,
        last_seen=last,
        flagged_share=flagged_share,
        categories=categories,
        techniques=techniques,
        language=language,
        terms=terms,
        summary=summary,
        members=accounts,
    )


def _summary(
    n: int,
    accounts: int,
    keys: int,
    first: Any,
    last: Any,
    flagged_share: float,
    categories: dict[str, float],
    techniques: dict[str, float],
    language: str,
    terms: list[str],
) -> str:
    """Built from facets only: counts, dates, category and technique names, vetted terms."""
    cats = ", ".join(f"{c} {s:.0%}" for c, s in categories.items()) or "none"
    techs = ", ".join(techniques) or "none seen"
    return (
        f"{n} requests from {accounts} accounts ({keys} keys), {first:%Y-%m-%d %H:%M} to "
        f"{last:%Y-%m-%d %H:%M} UTC; {flagged_share:.0%} flagged (categories: {cats}); "
        f"techniques: {techs}; language: {language}; distinctive terms: "
        f"{', '.join(terms) or 'none shared by enough accounts'}."
    )


class _Languages:
    """The most common language among up to 50 texts of a cluster; py3langid loads once per
    clustering, on first use, and is optional ('xx' without it)."""

    def __init__(self) -> None:
        self._guess: Callable[[str], str] | None = None
        self._missing = False

    def __call__(self, texts: Sequence[str]) -> str:
        if self._guess is None and not self._missing:
            try:
                from safestack.datasets.language import LanguageGuesser

                self._guess = LanguageGuesser()
            except ModuleNotFoundError:
                self._missing = True
        if self._guess is None:
            return "xx"
        votes = Counter(self._guess(t) for t in texts[:50])
        return votes.most_common(1)[0][0] if votes else "xx"


def account_recall(clustering: Clustering, accounts: set[str]) -> tuple[Cluster | None, float]:
    """The cluster holding most of `accounts` and the share of them it holds (evaluation)."""
    best: Cluster | None = None
    share = 0.0
    for cluster in clustering.clusters:
        found = len(accounts & set(cluster.members)) / max(len(accounts), 1)
        if found > share:
            best, share = cluster, found
    return best, share
