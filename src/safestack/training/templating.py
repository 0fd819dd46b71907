"""Combinatorial templates: a family of phrasings with slot lists, filled deterministically.

The synthetic generators (`synthetic.py`) and their template tables use this. Filling is seeded,
so the same seed gives the same examples in the same order on every machine.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from itertools import product


@dataclass(frozen=True)
class Family:
    """Templates that share labels and slot lists; each `{slot}` is filled from `slots[slot]`."""

    labels: list[str]
    templates: list[str]
    slots: dict[str, list[str]] = field(default_factory=dict)


def slot_names(template: str) -> list[str]:
    return sorted({name for _, name, _, _ in string.Formatter().parse(template) if name})


def fill(family: Family, rng: random.Random, per_template: int) -> list[tuple[int, str]]:
    """Up to `per_template` distinct fillings of each template, as (template index, text)."""
    out: list[tuple[int, str]] = []
    for index, template in enumerate(family.templates):
        names = slot_names(template)
        missing = [n for n in names if n not in family.slots]
        if missing:
            raise ValueError(f"template {template!r} uses slots {missing} that the family lacks")
        combos = list(product(*(family.slots[n] for n in names)))
        rng.shuffle(combos)
        seen: set[str] = set()
        for combo in combos:
            text = template.format(**dict(zip(names, combo, strict=True)))
            if text not in seen:
                seen.add(text)
                out.append((index, text))
            if len(seen) >= per_template:
                break
    return out
