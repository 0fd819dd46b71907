"""Which language a training or test text is in, for per-language results (py3langid, offline)."""

from __future__ import annotations

from functools import cache
from typing import Any

# The languages the built-in models are measured in; anything else is reported as "xx".
MEASURED = ("en", "fr", "de", "es", "it", "pt", "nl")


@cache
def _identifier() -> Any:
    from py3langid.langid import (
        MODEL_FILE,
        LanguageIdentifier,
    )

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(MEASURED))
    return identifier


def guess_language(text: str) -> str:
    """The most likely of MEASURED (py3langid restricted to them), or "xx" when unsure."""
    language, probability = _identifier().classify(text)
    return str(language) if probability >= 0.6 else "xx"
