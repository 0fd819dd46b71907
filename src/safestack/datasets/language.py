"""Which language a training or test text is in, for per-language results (py3langid, offline)."""

from __future__ import annotations

from typing import Any

# The languages the built-in models are measured in; anything else is reported as "xx".
MEASURED = ("en", "fr", "de", "es", "it", "pt", "nl")


class LanguageGuesser:
    """py3langid restricted to MEASURED; one per reader that needs it (the model loads in ~0.1 s),
    never kept by this module."""

    def __init__(self) -> None:
        from py3langid.langid import (
            MODEL_FILE,
            LanguageIdentifier,
        )

        self._identifier: Any = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._identifier.set_languages(list(MEASURED))

    def __call__(self, text: str) -> str:
        """The most likely of MEASURED, or "xx" when unsure."""
        language, probability = self._identifier.classify(text)
        return str(language) if probability >= 0.6 else "xx"
