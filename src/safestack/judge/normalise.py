"""Normalisation before any detector, so that Unicode smuggling and encodings do not hide content.

`normalise(text)` returns the text after NFKC, removal of invisible / bidi / tag characters and
folding of confusable homoglyphs (`text`), a further leetspeak-folded view (`folded`), and the
payloads it found encoded inside (base64, hex, rot13, URL-encoding, Unicode tag characters), each
normalised in turn. Every view maps its offsets back to the original string, so evidence spans point
at what the user actually sent. Confusables follow Unicode TR39 (via `confusable-homoglyphs`).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
import threading
import unicodedata
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from safestack.records import Span

MAX_PAYLOAD_DEPTH = 2

# Characters that render as nothing but split or reorder words (TR39 "default ignorable" and friends).
_ZERO_WIDTH = {0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E, 0x034F, 0x00AD, 0x061C}
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A)) | {0x200E, 0x200F}
_INVISIBLE = (
    set(range(0x2061, 0x2065))  # invisible operators
    | set(range(0xFE00, 0xFE10))  # variation selectors
    | set(range(0xE0100, 0xE01F0))
    | {0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800}  # Hangul fillers, braille blank
)
_TAG_BASE, _TAG_END = 0xE0000, 0xE0080  # "ASCII smuggling": tag characters mirror ASCII invisibly

_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
        "+": "t",
        "€": "e",
    }
)
_LEET_CHARS = frozenset("0134578 9@$!|+€".replace(" ", ""))
_TOKEN = re.compile(r"\S+")
# The tokens holding a leetspeak character, whole (each found from its first character in one pass:
# linear however long a token is); only they can fold.
_LEET_TOKEN = re.compile(r"(?<!\S)(?=\S*[" + re.escape("".join(sorted(_LEET_CHARS))) + r"])\S+")
# Tokens that carry digits or symbols legitimately: emails, URLs, URL-escapes, words with a
# number suffix ("rot13", "mp3", "covid19").
_NOT_LEET = re.compile(r"@[\w-]+\.\w|://|^www\.|%[0-9A-Fa-f]{2}|^[A-Za-z]+\d+:?$|[<>\[\]{}]")
_SPACED_LETTERS = re.compile(r"\b(?:[A-Za-z][ .\-_*]){3,}[A-Za-z]\b")

_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = re.compile(
    r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]?){8,}(?![0-9A-Fa-f])|(?:\\x[0-9A-Fa-f]{2}){6,}"
)
_URL_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_ROT13_HINT = re.compile(r"\brot[\s_-]?13\b|\bcaesar\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+")
_SEGMENT = re.compile(r"[^:.!?\n]+")  # rot13 is tried per sentence-like segment
# The most frequent English function words: enough to tell English from its rot13 image.
_COMMON_WORDS = frozenset(
    [
        "the",
        "and",
        "to",
        "of",
        "a",
        "in",
        "is",
        "you",
        "that",
        "it",
        "for",
        "how",
        "i",
        "me",
        "my",
        "what",
        "with",
        "on",
        "this",
        "be",
        "are",
        "do",
        "can",
        "make",
        "give",
        "tell",
        "your",
        "was",
        "not",
        "have",
        "from",
        "or",
        "by",
        "an",
        "at",
        "as",
        "so",
        "if",
        "we",
        "they",
        "he",
        "she",
        "will",
        "would",
        "how",
        "why",
    ]
)


@dataclass(frozen=True, slots=True)
class Payload:
    """A payload decoded from inside the text, itself normalised."""

    encoding: str
    span: Span
    normalised: Normalised


@dataclass(frozen=True, slots=True)
class View:
    """One text a detector should look at, with a way back to the original string."""

    source: str
    text: str
    folded: str
    _text_origin: tuple[int, ...] | None
    _folded_origin: tuple[int, ...] | None
    _outer: Span | None = None
    _original_length: int = 0

    def span(self, start: int, end: int, *, folded: bool = False) -> Span:
        """The span in the original input for `[start, end)` of `text` (or of `folded`)."""
        if self._outer is not None:
            return self._outer
        origin = self._folded_origin if folded else self._text_origin
        if origin is None:
            return Span(start=start, end=end)
        if not origin:
            return Span(start=0, end=0)
        last = len(origin) - 1
        first = origin[min(start, last)]
        stop = origin[min(max(end - 1, 0), last)] + 1
        return Span(start=first, end=max(stop, first))


@dataclass(frozen=True, slots=True)
class Normalised:
    original: str
    text: str
    folded: str
    transformations: tuple[str, ...] = ()
    payloads: tuple[Payload, ...] = ()
    # origin[i] is the index in `original` that produced text[i]; None means the identity.
    text_origin: tuple[int, ...] | None = field(default=None, repr=False)
    folded_origin: tuple[int, ...] | None = field(default=None, repr=False)

    def views(self) -> Iterator[View]:
        """The text itself, then each decoded payload (depth-first), each with its source name."""
        yield View("text", self.text, self.folded, self.text_origin, self.folded_origin)
        for payload in self.payloads:
            for view in payload.normalised.views():
                source = (
                    payload.encoding
                    if view.source == "text"
                    else f"{payload.encoding}>{view.source}"
                )
                yield View(source, view.text, view.folded, None, None, payload.span)

    def all_transformations(self) -> list[str]:
        seen = dict.fromkeys(self.transformations)
        for payload in self.payloads:
            seen.update(dict.fromkeys(payload.normalised.all_transformations()))
        return list(seen)


class _Recent:
    """The normalised forms of the texts seen last, least recently used dropped first, within a
    budget of characters. `normalise` is a pure function of its text and its result is immutable;
    a chat resends its earlier turns with every request, and several checks read the same text."""

    def __init__(self, max_chars: int):
        self._max_chars = max_chars
        self._chars = 0
        self._items: OrderedDict[str, Normalised] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> Normalised | None:
        with self._lock:
            found = self._items.get(text)
            if found is not None:
                self._items.move_to_end(text)
            return found

    def put(self, text: str, normalised: Normalised) -> None:
        if len(text) > self._max_chars // 16:
            return  # a long document is rarely judged twice; it would evict many turns
        with self._lock:
            if text in self._items:
                return
            self._items[text] = normalised
            self._chars += len(text)
            while self._chars > self._max_chars:
                dropped, _ = self._items.popitem(last=False)
                self._chars -= len(dropped)


_recent = _Recent(max_chars=2_000_000)


def normalise(text: str, *, _depth: int = 0) -> Normalised:
    """Normalise `text` for detection; see the module docstring. Texts normalised lately are
    answered from memory (the same result: a pure function of the text)."""
    if _depth:
        return _normalise(text, _depth)
    found = _recent.get(text)
    if found is None:
        found = _normalise(text, 0)
        _recent.put(text, found)
    return found


def _normalise(text: str, _depth: int) -> Normalised:
    applied: dict[str, None] = {}
    payloads: list[Payload] = []

    if text.isascii() and text.isprintable():
        chars, origin = text, None
    else:
        chars, origin_list = _clean_unicode(text, applied, payloads, _depth)
        chars = _fold_homoglyphs(chars, applied)
        origin = tuple(origin_list)

    folded, folded_origin = _fold_leetspeak(chars, origin, applied)
    if _depth < MAX_PAYLOAD_DEPTH:
        payloads.extend(_decode_payloads(chars, origin, applied, _depth))
    return Normalised(
        original=text,
        text=chars,
        folded=folded,
        transformations=tuple(applied),
        payloads=tuple(payloads),
        text_origin=origin,
        folded_origin=folded_origin,
    )


def _clean_unicode(
    text: str, applied: dict[str, None], payloads: list[Payload], depth: int
) -> tuple[str, list[int]]:
    out: list[str] = []
    origin: list[int] = []
    tag_run: list[str] = []
    tag_start = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        cp = ord(ch)
        if _TAG_BASE <= cp < _TAG_END:
            if not tag_run:
                tag_start = i
            tag_run.append(chr(cp - _TAG_BASE) if 0x20 <= cp - _TAG_BASE < 0x7F else "")
            applied["unicode-tags-removed"] = None
            i += 1
            continue
        if tag_run:
            _add_tag_payload(tag_run, tag_start, i, payloads, applied, depth)
            tag_run = []
        if cp in _ZERO_WIDTH:
            applied["zero-width-removed"] = None
            i += 1
            continue
        if cp in _BIDI:
            applied["bidi-removed"] = None
            i += 1
            continue
        category = unicodedata.category(ch)
        if (
            cp in _INVISIBLE
            or (category == "Cc" and ch not in "\n\t\r")
            or category in ("Cf", "Co", "Cn")
        ):
            applied["invisible-removed"] = None
            i += 1
            continue
        # A cluster: one base character and the combining marks that follow it.
        j = i + 1
        while j < n and unicodedata.category(text[j]) in ("Mn", "Me"):
            j += 1
        cluster = text[i:j]
        if j - i > 3:  # "Zalgo" text stacks marks to break tokenisers; keep only the base.
            cluster = ch
            applied["combining-marks-removed"] = None
        mapped = unicodedata.normalize("NFKC", cluster)
        if mapped != cluster:
            applied["nfkc"] = None
        for out_ch in mapped:
            out.append(out_ch)
            origin.append(i)
        i = j
    if tag_run:
        _add_tag_payload(tag_run, tag_start, n, payloads, applied, depth)
    return "".join(out), origin


def _add_tag_payload(
    run: list[str],
    start: int,
    end: int,
    payloads: list[Payload],
    applied: dict[str, None],
    depth: int,
) -> None:
    hidden = "".join(run).strip()
    if hidden:
        applied["unicode-tags-decoded"] = None
        payloads.append(
            Payload("unicode-tags", Span(start=start, end=end), normalise(hidden, _depth=depth + 1))
        )


@lru_cache(maxsize=1)
def _homoglyph_table() -> dict[int, str]:
    """Non-ASCII character -> the ASCII letter or digit it is confusable with (TR39 data)."""
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    table: dict[int, str] = {}
    for char, homoglyphs in data.items():
        if len(char) != 1 or char.isascii():
            continue
        ascii_forms = [
            h["c"] for h in homoglyphs if len(h["c"]) == 1 and h["c"].isascii() and h["c"].isalnum()
        ]
        if ascii_forms:
            table[ord(char)] = ascii_forms[0]
    return table


def _fold_homoglyphs(text: str, applied: dict[str, None]) -> str:
    table = _homoglyph_table()
    if not any(ord(c) in table for c in text):
        return text
    letters = [c for c in text if c.isalpha()]
    mostly_latin = sum(c.isascii() for c in letters) * 2 >= len(letters)

    def fold(match: re.Match[str]) -> str:
        token = match.group()
        # Fold mixed-script tokens always; whole foreign-script tokens only inside Latin text,
        # so that genuine Cyrillic or Greek prose is left alone.
        if not (mostly_latin or any(c.isascii() and c.isalpha() for c in token)):
            return token
        folded = token.translate(table)
        if folded != token:
            applied["homoglyphs-folded"] = None
        return folded

    return _TOKEN.sub(fold, text)


def _fold_leetspeak(
    text: str, origin: tuple[int, ...] | None, applied: dict[str, None]
) -> tuple[str, tuple[int, ...] | None]:
    """Leetspeak and spaced-out letters folded; a view for lexicon matching only."""
    changed = False

    def fold(match: re.Match[str]) -> str:
        nonlocal changed
        token = match.group()
        core = token.rstrip("!.,?;:")  # trailing punctuation is punctuation, not leet
        letters = sum(c.isalpha() for c in core)
        # Short word-like tokens only: long runs are encodings (decoded below).
        if (
            0 < 2 * letters >= len(core) - 1
            and len(core) <= 24
            and any(c in _LEET_CHARS for c in core)
            and not _NOT_LEET.search(core)
        ):
            folded = core.translate(_LEET) + token[len(core) :]
            if folded != token:
                changed = True
                return folded
        return token

    folded = _LEET_TOKEN.sub(fold, text)  # 1:1 per character, so offsets are unchanged
    if changed:
        applied["leetspeak-folded"] = None
    folded_origin = origin
    if _SPACED_LETTERS.search(folded):
        keep = [True] * len(folded)
        for match in _SPACED_LETTERS.finditer(folded):
            for k in range(match.start() + 1, match.end(), 2):
                keep[k] = False
        base = origin if origin is not None else range(len(folded))
        folded_origin = tuple(o for o, k in zip(base, keep, strict=True) if k)
        folded = "".join(c for c, k in zip(folded, keep, strict=True) if k)
        applied["spaced-letters-joined"] = None
    return folded, folded_origin


def _decode_payloads(
    text: str, origin: tuple[int, ...] | None, applied: dict[str, None], depth: int
) -> Iterator[Payload]:
    def span(start: int, end: int) -> Span:
        if origin is None:
            return Span(start=start, end=end)
        return Span(start=origin[start], end=origin[end - 1] + 1)

    for match in _BASE64.finditer(text):
        decoded = _try_base64(match.group())
        if decoded is not None:
            applied["base64-decoded"] = None
            yield Payload("base64", span(*match.span()), normalise(decoded, _depth=depth + 1))
    for match in _HEX.finditer(text):
        decoded = _try_hex(match.group())
        if decoded is not None:
            applied["hex-decoded"] = None
            yield Payload("hex", span(*match.span()), normalise(decoded, _depth=depth + 1))
    if len(_URL_ESCAPE.findall(text)) >= 2:
        decoded = urllib.parse.unquote_plus(text)
        if decoded != text and _readable(decoded):
            applied["url-decoded"] = None
            yield Payload(
                "url",
                span(0, len(text)) if text else Span(start=0, end=0),
                normalise(decoded, _depth=depth + 1),
            )
    hinted = bool(_ROT13_HINT.search(text))
    for segment in _SEGMENT.finditer(text):
        rot = _try_rot13(segment.group(), hinted)
        if rot is not None:
            applied["rot13-decoded"] = None
            yield Payload("rot13", span(*segment.span()), normalise(rot, _depth=depth + 1))


def _readable(text: str) -> bool:
    if not text.strip():
        return False
    printable = sum(c.isprintable() or c in "\n\t\r" for c in text)
    letters = sum(c.isalpha() or c == " " for c in text)
    return printable >= 0.95 * len(text) and letters >= 0.6 * len(text)


def _try_base64(candidate: str) -> str | None:
    if candidate.isalpha() and (candidate.islower() or candidate.isupper()):
        return None  # a long plain word, not an encoding
    padded = candidate + "=" * (-len(candidate) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return decoded if _readable(decoded) else None


def _try_hex(candidate: str) -> str | None:
    digits = re.sub(r"\\x|[ :]", "", candidate)
    if len(digits) % 2:
        return None
    try:
        decoded = bytes.fromhex(digits).decode("utf-8")
    except ValueError:
        return None
    return decoded if _readable(decoded) else None


def _common_share(text: str) -> float:
    words = [w.lower() for w in _WORD.findall(text)]
    return sum(w in _COMMON_WORDS for w in words) / len(words) if words else 0.0


def _try_rot13(segment: str, hinted: bool) -> str | None:
    """The rot13 image of a segment, if it reads as English and the segment does not."""
    words = len(_WORD.findall(segment))
    if words < 3:
        return None
    rotated = codecs.encode(segment, "rot13")
    before, after = _common_share(segment), _common_share(rotated)
    if hinted:  # "decode this rot13: ..." -- a lower bar
        return rotated.strip() if after > before else None
    # Several common words must appear, not one two-letter coincidence ("GB" -> "TO").
    enough = after * words >= 2 and after >= 0.2 and after > 2 * before + 0.05
    return rotated.strip() if enough else None
