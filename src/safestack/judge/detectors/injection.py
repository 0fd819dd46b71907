"""The `indirect-injection` detector: instructions planted in data for the model to follow.

For content the model reads as data (tool results, retrieved documents, web pages). Text there may
give orders to people ("ignore the previous row", "boil, then rinse"); an injection gives orders to
the *assistant*: it addresses the AI by name, tells it to drop the user's request or its
instructions, smuggles chat-template markers, or hides an exfiltration link. The classifier (`attack`)
misses such a sentence when benign text dilutes it; these patterns do not, and say which shape fired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from safestack.judge.detector import Detector, Sample, detector
from safestack.records import Finding


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.VERBOSE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Shape:
    label: str
    score: float
    severity: int
    pattern: re.Pattern[str]


_ASSISTANT = r"""(?:ai|a\.i\.|ai\s+assistant|assistant|ai\s+agent|chat\s?bot|llm|language\s+model|
    gpt|chatgpt|claude|gemini|copilot)"""
_ORDER = r"""(?:ignore|disregard|forget|override|do\s+not|don['’]t|stop|instead|you\s+must|
    you\s+should|you\s+will|always|never|reply|respond|answer|say|tell|send|email|forward|output|
    print|reveal|include|insert|append|add|visit|open|click|run|execute|call|delete|transfer)"""

SHAPES = (
    # "AI: disregard ...", "Note to the AI assistant: ignore ...", "Assistant, send ...".
    Shape(
        "addressed-to-assistant",
        0.9,
        5,
        _rx(
            rf"""(?:^|[\s<!\-\[(:;,.])(?:dear\s+|note\s+(?:to|for)\s+(?:the\s+|any\s+)?|
                attention\s+|hey\s+|hello\s+|hi\s+|important\s+(?:for|to)\s+(?:the\s+)?)?
                {_ASSISTANT}s?\s*[:,!\-–—]+\s*(?:please\s+)?{_ORDER}\b"""
        ),
    ),
    # An order to drop the user's task or the assistant's instructions.
    Shape(
        "override-task",
        0.85,
        4,
        _rx(
            r"""\b(?:ignore|disregard|forget|override|overrule)\b[^.\n]{0,30}?
                \b(?:the\s+user['’]?s?|users['’]?|your|all|previous|prior|above|earlier|original|system)
                \b[^.\n]{0,20}?\b(?:request|requests|question|task|instructions?|prompt|query|
                guidelines)\b"""
        ),
    ),
    # Chat-template tokens never occur in honest data; a "system" tag followed by orders does not.
    Shape(
        "role-marker",
        0.8,
        4,
        _rx(
            r"""<\|(?:im_start|im_end|system|endoftext|eot_id|start_header_id)\|> | \[/?inst\] | <<\s*sys\s*>>
              | (?:\[|<)\s*/?\s*(?:system|admin|developer)\s*(?:\]|>)[^\n]{0,80}?
                \b(?:you|your|assistant|ignore|disregard|instructions?|reveal|must)\b"""
        ),
    ),
    # A markdown image whose URL carries a template: the model fills it with data, the client
    # fetches it (Rehberger's data exfiltration via image rendering).
    Shape(
        "exfiltration-link",
        0.8,
        4,
        _rx(
            r"""!\[[^\]]*\]\(\s*https?://[^)\s]*(?:\{[^}]*\}|\$\{?\w+|%7B|<[a-z_]+>|\[[A-Z_]+\])"""
        ),
    ),
)


@detector("indirect-injection")
class IndirectInjectionDetector(Detector):
    """Instructions aimed at the assistant inside data; patterns, microseconds per text."""

    version = "1"
    deterministic = True

    def detect(self, sample: Sample) -> list[Finding]:
        found: dict[str, Finding] = {}
        for view in sample.normalised.views():
            for shape in SHAPES:
                if shape.label in found:
                    continue
                match = shape.pattern.search(view.text)
                folded = match is None
                if folded:
                    match = shape.pattern.search(view.folded)
                if match is not None:
                    found[shape.label] = self.finding(
                        "prompt-injection",
                        shape.score,
                        severity=shape.severity,
                        source=view.source,
                        span=view.span(*match.span(), folded=folded),
                        evidence=" ".join(match.group().split())[:200],
                        label=f"prompt-injection-indirect:{shape.label}",
                    )
        return list(found.values())
