"""Everyday chat in many languages from chatterbot-corpus (BSD-3-Clause): benign negatives.

Every line of every conversation is a benign user message for `harm` and `attack`. The corpus is
split by file into two sources so one can be held out whole: conversations and greetings (small
talk) and everything topical (food, health, history, money, ...). `chat_pairs` reads the same files
as (request, answer) pairs: helpful answers for break-fix's retain set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from safestack.datasets.examples import Example
from safestack.datasets.source import SOURCES, Source, source

CHATTERBOT = {"package": "chatterbot-corpus", "version": "1.3.3", "licence": "BSD-3-Clause"}
LANGUAGES = {
    "english": "en",
    "french": "fr",
    "german": "de",
    "spanish": "es",
    "italian": "it",
    "portuguese": "pt",
    "dutch": "nl",
}
SMALL_TALK = ("conversations", "greetings")
MIN_CHARS = 3  # "Hi" carries nothing to learn from


PATHS = [f"chatterbot_corpus/data/{lang}/*.yml" for lang in LANGUAGES]


def _lines(src: Source, small_talk: bool) -> Iterator[Example]:
    seen: set[str] = set()
    for path in src.files():
        if (Path(path).stem in SMALL_TALK) != small_talk:
            continue
        language = LANGUAGES[Path(path).parent.name]
        data = yaml.safe_load(path.read_text("utf-8")) or {}
        for number, conversation in enumerate(data.get("conversations") or []):
            for line in conversation or []:
                text = str(line).strip()
                if len(text) < MIN_CHARS or text in seen:
                    continue
                seen.add(text)
                group = f"{path.parent.name}/{path.stem}/{number}"
                yield from src.prompt(text, [], group=group, language=language)


@source("chatterbot/small-talk", **CHATTERBOT, paths=PATHS)
def small_talk(src: Source) -> Iterator[Example]:
    """Small talk (conversations, greetings) in en, fr, de, es, it, pt, nl."""
    return _lines(src, small_talk=True)


@source("chatterbot/topics", **CHATTERBOT, paths=PATHS)
def topics(src: Source) -> Iterator[Example]:
    """Topical chat (food, health, history, money, science, ...) in en, fr, de, es, it, pt, nl."""
    return _lines(src, small_talk=False)


# Files about the bot itself (its persona, feelings, gossip, jokes about being a bot): answers in
# the first person of chatterbot, not ones another assistant should learn.
PERSONA = frozenset(
    {"ai", "IA", "botprofile", "perfilbot", "emotion", "emociones", "gossip", "humor", "psychology"}
    | {"psicologia", "origen"}
)


@dataclass(frozen=True)
class ChatPair:
    """The opening request of one chatterbot conversation and its first answer."""

    prompt: str
    answer: str
    language: str
    group: str = ""


def chat_pairs() -> list[ChatPair]:
    """(request, first answer) of every conversation in en, fr, de, es, it, pt, nl, persona files
    left out, in file order, one per request (tech_support asks the same thing a hundred times);
    SourceUnavailableError when chatterbot-corpus is not installed."""
    src = SOURCES["chatterbot/topics"]  # the same files as both sources
    pairs: list[ChatPair] = []
    seen: set[str] = set()
    for path in src.files():
        if Path(path).stem in PERSONA:
            continue
        language = LANGUAGES[Path(path).parent.name]
        data = yaml.safe_load(path.read_text("utf-8")) or {}
        for number, conversation in enumerate(data.get("conversations") or []):
            if not isinstance(conversation, list) or len(conversation) < 2:
                continue
            prompt, answer = str(conversation[0]).strip(), str(conversation[1]).strip()
            if len(prompt) < MIN_CHARS or len(answer) < MIN_CHARS or prompt.lower() in seen:
                continue
            seen.add(prompt.lower())
            group = f"{path.parent.name}/{path.stem}/{number}"
            pairs.append(ChatPair(prompt, answer, language, group))
    return pairs
