"""Election redirects: which official source a voting-procedure question is pointed to, by locale.

Lookup order for a locale such as `de-DE`: the exact tag, the region (`DE`), `EU` for a member
state of the European Union, the language (`de`), then `default`. Keys match case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterator

from safestack.policy.model import ElectionSettings, Redirect

# ISO 3166-1 alpha-2 codes of the 27 member states (and EL, the EU's own code for Greece).
EU_MEMBER_STATES = frozenset(
    {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "EL", "HU"}
    | {"IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"}
)


def _candidates(locale: str | None) -> Iterator[str]:
    if locale:
        tag = locale.strip().replace("_", "-")
        yield tag
        parts = tag.split("-")
        region = next((p for p in parts[1:] if len(p) == 2 and p.isalpha()), None)
        if region is None and len(parts) == 1 and parts[0].isupper() and len(parts[0]) == 2:
            region = parts[0]  # a bare region code such as "US" or "DE"
        if region:
            yield region
            if region.upper() in EU_MEMBER_STATES:
                yield "EU"
        yield parts[0]
    yield "default"


def redirect_for(settings: ElectionSettings, locale: str | None) -> tuple[str, Redirect]:
    """(the key that matched, its redirect) for `locale`."""
    keys = {key.casefold(): key for key in settings.redirects}
    for candidate in _candidates(locale):
        key = keys.get(candidate.casefold())
        if key is not None:
            return key, settings.redirects[key]
    return "default", settings.redirects["default"]


def redirect_text(redirect: Redirect) -> str:
    if redirect.url and redirect.url not in redirect.message:
        return f"{redirect.message} {redirect.url}"
    return redirect.message
