"""The `adult` corpus filter: adult sites by URL, adult content by the harm model.

Domains: the UT1 blocklist (Université Toulouse 1 Capitole, CC BY-SA) as datatrove ships it
(`datatrove/assets/url_filterblacklistsv0_3_0.tar.gz`: its `domains` and `urls` lists, the ones
FineWeb's URL filter uses), read from the installed package at run time and never copied here, plus
the user's own lists. URL words: datatrove's banned, soft-banned and subword lists
(`url_words.py`), for adult sites no list names. Content: the harm model's `sexual` score of the
document's worst window.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import IO, Annotated, ClassVar
from urllib.parse import urlsplit

import numpy as np
from pydantic import AfterValidator, Field

from safestack.data.document import Document, Removal
from safestack.data.filters.base import FilterOptions, corpus_filter
from safestack.data.filters.models import FilterModels, ModelFilter
from safestack.data.filters.url_words import (
    DEFAULT_SOFT_THRESHOLD,
    INSTALL_HINT,
    BlocklistError,
    UrlWords,
    datatrove_asset,
    datatrove_word_lists,
    normalize,
)
from safestack.policy import Policy

__all__ = ["AdultFilter", "AdultOptions", "BlocklistError", "DomainList", "host_levels", "ut1_list"]

UT1_ARCHIVE = "datatrove/assets/url_filterblacklistsv0_3_0.tar.gz"
_INSTALL_HINT = f"{INSTALL_HINT}, or set domain_list: false"
# A domain name's labels: letters (any script), digits, '_' and inner '-', joined by dots.
_HOST = re.compile(r"\w(?:[\w-]*\w)?(?:\.\w(?:[\w-]*\w)?)*")


class DomainList:
    """4.5 million domains kept as a sorted array of 64-bit hashes (36 MB rather than ~500 MB of
    strings); a false match needs a 64-bit collision, about 1 in 4 billion billion per lookup."""

    def __init__(self, domains: Iterable[bytes], urls: Iterable[str] = ()) -> None:
        # The UT1 file is already lower-case and stripped; user lists are cleaned by the caller.
        hashes = np.fromiter(map(hash, domains), np.int64)
        hashes.sort()
        self._hashes = hashes
        self._urls = frozenset(u.strip().lower() for u in urls if u.strip())

    def __len__(self) -> int:
        return len(self._hashes)

    def has_domain(self, domain: str) -> bool:
        value = hash(domain.encode("utf-8"))
        at = int(np.searchsorted(self._hashes, value))
        return at < len(self._hashes) and int(self._hashes[at]) == value

    def has_url(self, host_and_path: str) -> bool:
        return host_and_path in self._urls


@cache
def ut1_list() -> DomainList:
    """The UT1 list from the installed datatrove wheel, streamed from the archive (~3 s, once)."""
    try:
        archive = datatrove_asset(UT1_ARCHIVE, "UT1 domain list")
    except BlocklistError as exc:
        raise BlocklistError(f"{exc}, or set domain_list: false") from None
    try:
        with tarfile.open(archive, "r:gz") as tar:
            domains, urls = tar.extractfile("domains"), tar.extractfile("urls")
            if domains is None or urls is None:
                raise KeyError("domains/urls")
            url_lines = urls.read().decode("utf-8", "replace").splitlines()
            return DomainList(_lines(domains), url_lines)
    except (OSError, KeyError, tarfile.TarError) as exc:
        raise BlocklistError(
            f"cannot read the UT1 list in {archive} ({exc}); {_INSTALL_HINT}"
        ) from exc


def _lines(stream: IO[bytes], block: int = 1 << 23) -> Iterator[bytes]:
    """Lines of a large stream, read in 8 MB blocks: iterating a gzip member line by line is
    about ten times slower."""
    tail = b""
    while chunk := stream.read(block):
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        yield from lines
    if tail:
        yield tail


@lru_cache(maxsize=1)
def _extract() -> object:
    import tldextract

    # The suffix-list snapshot bundled with tldextract: never fetched from publicsuffix.org.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def host_levels(url: str) -> tuple[list[str], str]:
    """The URL's host and each parent down to its registered domain (a.b.example.co.uk,
    b.example.co.uk, example.co.uk), and 'host/path' for whole-URL entries."""
    try:
        split = urlsplit(url if "://" in url else f"http://{url}")
        host = (split.hostname or "").rstrip(".")
    except ValueError:
        return [], ""
    if not host:
        return [], ""
    return list(_host_levels(host)), f"{host}{split.path}".rstrip("/")


@lru_cache(maxsize=1 << 16)
def _host_levels(host: str) -> tuple[str, ...]:
    """A host's levels down to its registered domain; cached, as a crawl repeats its hosts and
    the adult and aggregator filters both ask (tldextract costs ~20 us a host)."""
    registered = _extract()(host).top_domain_under_public_suffix  # type: ignore[operator]
    labels = host.split(".")
    # A host under no known public suffix (.test, .example, an intranet name): stop at two labels.
    stop = len(registered.split(".")) if registered else min(2, len(labels))
    return tuple(".".join(labels[i:]) for i in range(len(labels) - stop + 1))


def _allowed_domain(value: str) -> str:
    """An `allow_domains` entry as host levels are compared: lower case, no 'www.', no final dot."""
    host = value.strip().lower().rstrip(".").removeprefix("www.")
    if "/" in host or ":" in host:
        example = urlsplit(host if "//" in host else f"//{host}").hostname or "example.org"
        raise ValueError(f"{value!r} is a URL; give the domain alone, e.g. {example!r}")
    if not _HOST.fullmatch(host):
        raise ValueError(
            f"{value!r} is not a domain name: labels of letters, digits, '-' and '_' joined by "
            "'.', no spaces or wildcards ('example.org' also allows its subdomains)"
        )
    if not _extract()(host).domain:  # type: ignore[operator]
        raise ValueError(f"{value!r} is a public suffix; list the domains under it instead")
    return host


def _url_word(value: str) -> str:
    """An extra URL word: one word of letters and digits, compared in lower case."""
    word = value.strip().lower()
    if not word or normalize(word) != word:
        raise ValueError(
            f"{value!r} is not one word of letters and digits (a URL is split at every other "
            "character); put a phrase or a run-together name in extra_url_subwords"
        )
    return word


def _url_subword(value: str) -> str:
    """An extra subword, normalized as the URL is (separators dropped): 'two words' -> 'twowords'."""
    word = normalize(value)
    if len(word) < 4:
        raise ValueError(
            f"{value!r} is too short for a subword ({len(word)} letters or digits, at least 4): "
            "it would match inside ordinary words; put it in extra_url_words instead"
        )
    return word


class AdultOptions(FilterOptions):
    domain_list: bool = Field(default=True, description="Use the UT1 list shipped by datatrove.")
    extra_domains_file: Path | None = Field(
        default=None, description="A file of more domains to remove, one a line (# comments)."
    )
    url_words: bool = Field(
        default=True,
        description="Remove URLs with datatrove's banned words, soft-banned words or subwords.",
    )
    soft_word_threshold: int = Field(
        default=DEFAULT_SOFT_THRESHOLD,
        ge=1,
        le=20,
        description="Distinct soft-banned words that remove a URL (datatrove's default, 2).",
    )
    extra_url_words: list[Annotated[str, AfterValidator(_url_word)]] = Field(
        default_factory=list, description="More banned words (whole words of the URL)."
    )
    extra_soft_words: list[Annotated[str, AfterValidator(_url_word)]] = Field(
        default_factory=list, description="More soft-banned words (whole words of the URL)."
    )
    extra_url_subwords: list[Annotated[str, AfterValidator(_url_subword)]] = Field(
        default_factory=list,
        description="More banned subwords, found anywhere in the URL with separators removed.",
    )
    allow_domains: list[Annotated[str, AfterValidator(_allowed_domain)]] = Field(
        default_factory=list,
        description="Domains or hosts (and their subdomains) never removed by a domain list or "
        "a URL word; the content check still applies.",
    )
    content: bool = Field(
        default=True, description="Also remove documents the harm model scores as sexual."
    )
    chunk_chars: int = Field(default=600, ge=100, le=4000, description="Evidence window size.")
    segment_chars: int = Field(
        default=2400, ge=100, le=100_000, description="Span judged as one; the worst decides."
    )


@corpus_filter("adult")
class AdultFilter(ModelFilter):
    """Remove pages from adult domains (adult.domain), with adult words in their URL
    (adult.url_word, adult.url_soft_words, adult.url_subword) and sexual content (adult.content)."""

    version = "2"
    Options: ClassVar[type[FilterOptions]] = AdultOptions
    options: AdultOptions

    def __init__(
        self,
        policy: Policy,
        options: FilterOptions | None = None,
        models: FilterModels | None = None,
    ) -> None:
        super().__init__(policy, options, models)
        self.ut1 = ut1_list() if self.options.domain_list else None
        self.extra: set[str] = set()
        if self.options.extra_domains_file is not None:
            path = self.options.extra_domains_file
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise BlocklistError(f"extra_domains_file {path}: {exc}") from exc
            self.extra = {x.strip().lower() for x in lines if x.strip() and not x.startswith("#")}
            self.extra.discard("")
        self.allow = set(self.options.allow_domains)
        self.words: UrlWords | None = None
        if self.options.url_words:
            banned, subwords, soft = datatrove_word_lists()
            self.words = UrlWords(
                banned | set(self.options.extra_url_words),
                subwords | set(self.options.extra_url_subwords),
                soft | set(self.options.extra_soft_words),
                self.options.soft_word_threshold,
            )

    def apply(self, documents: Sequence[Document]) -> list[Removal | None]:
        out: list[Removal | None] = [self._url(d.url) if d.url else None for d in documents]
        if not self.options.content:
            return out
        todo = [i for i, r in enumerate(out) if r is None]
        scores = self.scorer.score(
            [documents[i].text for i in todo], chunk_chars=self.options.chunk_chars
        )
        threshold = self.policy.data.adult.content
        for i, scored in zip(todo, scores, strict=True):
            sexual = scored.score("sexual")
            if sexual >= threshold:
                evidence = scored.evidence(documents[i].text, "sexual")
                out[i] = self.removal(
                    "content", sexual, threshold, category="sexual", evidence=evidence
                )
        return out

    def _url(self, url: str) -> Removal | None:
        levels, host_path = host_levels(url)
        if any(level in self.allow for level in levels):
            return None
        for level in levels:
            if level in self.extra or (self.ut1 is not None and self.ut1.has_domain(level)):
                return self.removal("domain", 1.0, 1.0, category="sexual", evidence=level)
        if host_path and self.ut1 is not None and self.ut1.has_url(host_path):
            return self.removal("domain", 1.0, 1.0, category="sexual", evidence=host_path)
        found = self.words.match(url) if self.words is not None else None
        if found is None:
            return None
        # The soft rule's score is how many soft words the URL holds, against the threshold.
        score, threshold = (
            (len(found.words), self.options.soft_word_threshold)
            if found.rule == "url_soft_words"
            else (1.0, 1.0)
        )
        evidence = ", ".join(found.words)
        return self.removal(found.rule, score, threshold, category="sexual", evidence=evidence)
