"""Team-written synthetic examples, kept apart from the packaged sources (synthetic=True).

They fill the thin categories (sexual/minors requests, self-harm, threats, spam, CBRN requests),
build indirect injections with clean twins, and supply hard negatives for every task. Generation is
seeded: `generate_all(seed)` gives the same examples in the same order every time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from safestack.datasets.examples import ATTACK_LABELS, Example, Task
from safestack.records import Kind
from safestack.training.templates_attack import (
    ATTACK_HARD_NEGATIVES,
    BENIGN_DOCUMENT_NOTES,
    DIRECT_INJECTION,
    DOCUMENT_SLOTS,
    DOCUMENTS,
    HOLDOUT_ATTACK_HARD_NEGATIVES,
    INJECTION_SLOTS,
    INJECTIONS,
    SYSTEM_PROMPT_EXTRACTION,
)
from safestack.training.templates_benign import WRITING_REQUESTS
from safestack.training.templates_chat import CHAT_FAMILIES, CHAT_HOLDOUT_FAMILIES
from safestack.training.templates_harm import (
    HARD_NEGATIVE_FAMILIES,
    HARM_FAMILIES,
    HOLDOUT_HARD_NEGATIVE_FAMILIES,
)
from safestack.training.templates_jailbreak import (
    CODE_FILES,
    CODE_NOTES,
    CODE_ORDERS,
    CODE_SLOTS,
    HIJACK,
    JAILBREAK_STYLES,
)
from safestack.training.templates_refusal import (
    ANSWERS,
    COMPLIANT_EDGY,
    FULL_REFUSALS,
    PARTIAL_REFUSALS,
    REFUSAL_FAMILIES,
    TOPICS,
)
from safestack.training.templating import Family, fill

LICENCE = "Apache-2.0 (safestack, team-written)"
DEFAULT_SEED = 20261122
PER_TEMPLATE = 40  # fillings per template: hundreds per family, a few thousand per generator
DOCUMENT_PAIRS = 900  # injected documents, each with its clean twin
REFUSALS_PER_TEMPLATE = 120
CODE_PAIRS = 120  # code and config files with a planted order, each with a benign twin
RESPONSE_VARIANTS = 6  # framings of each written response (opener, closing)

Generator = Callable[[random.Random], Iterator[Example]]
GENERATORS: dict[str, Generator] = {}


def generator(name: str) -> Callable[[Generator], Generator]:
    """Register a generator as source `synthetic/<name>`."""

    def register(function: Generator) -> Generator:
        GENERATORS[f"synthetic/{name}"] = function
        return function

    return register


def team_example(
    source: str,
    text: str,
    task: Task,
    labels: Sequence[str],
    kind: Kind,
    group: str,
    **fields: Any,
) -> Example:
    """An example the team wrote (`synthetic=True`, the team's licence); `fields` are the
    optional ones (`language`, `request`, `severity`)."""
    return Example(
        text=text,
        task=task,
        labels=list(labels),
        kind=kind,
        source=source,
        synthetic=True,
        licence=LICENCE,
        group=group,
        **fields,
    )


def _prompts(
    source: str, families: list[Family], rng: random.Random, tasks: Sequence[Task]
) -> Iterator[Example]:
    """Fill each family; a harm-family prompt is also an attack negative, and vice versa."""
    for number, family in enumerate(families):
        is_attack_family = bool(family.labels) and family.labels[0] in ATTACK_LABELS
        for index, text in fill(family, rng, PER_TEMPLATE):
            group = f"{source}/{number}.{index}"
            for task in tasks:
                if task == "harm":
                    labels = [] if is_attack_family else family.labels
                else:
                    labels = family.labels if is_attack_family else ["benign"]
                yield team_example(source, text, task, labels, "prompt", group)


@generator("harm-requests")
def harm_requests(rng: random.Random) -> Iterator[Example]:
    """Requests in the thin harm categories; each is also an attack-task `benign` prompt."""
    return _prompts("synthetic/harm-requests", HARM_FAMILIES, rng, ("harm", "attack"))


@generator("hard-negatives")
def hard_negatives(rng: random.Random) -> Iterator[Example]:
    """Benign prompts that look harmful ("kill a Python process", sex education, history)."""
    return _prompts("synthetic/hard-negatives", HARD_NEGATIVE_FAMILIES, rng, ("harm", "attack"))


@generator("hard-negatives-holdout")
def hard_negatives_holdout(rng: random.Random) -> Iterator[Example]:
    """Other benign look-alikes (games, pests, sport, idioms), never trained on: report-only."""
    return _prompts(
        "synthetic/hard-negatives-holdout", HOLDOUT_HARD_NEGATIVE_FAMILIES, rng, ("harm", "attack")
    )


@generator("direct-injection")
def direct_injection(rng: random.Random) -> Iterator[Example]:
    """User turns posing as privileged text ("SYSTEM OVERRIDE: ...", fake </user><system> tags)."""
    return _prompts("synthetic/direct-injection", [DIRECT_INJECTION], rng, ("attack",))


@generator("system-prompt-extraction")
def system_prompt_extraction(rng: random.Random) -> Iterator[Example]:
    """Requests for the system prompt: direct, framed as debugging or audit, or re-encoded."""
    return _prompts(
        "synthetic/system-prompt-extraction", [SYSTEM_PROMPT_EXTRACTION], rng, ("attack",)
    )


@generator("indirect-injection")
def indirect_injection(rng: random.Random) -> Iterator[Example]:
    """Documents and tool outputs with an instruction to the assistant hidden in them.

    Each injected document has a clean twin (slot empty) and a benign twin whose slot holds a note
    addressed to people ("Please reply by Friday"), all three in one group, so the detector learns
    the instruction and not the document type.
    """
    source = "synthetic/indirect-injection"
    for number in range(DOCUMENT_PAIRS):
        template = DOCUMENTS[number % len(DOCUMENTS)]
        slots = {name: rng.choice(values) for name, values in DOCUMENT_SLOTS.items()}
        injection = rng.choice(INJECTIONS).format(
            **{name: rng.choice(values) for name, values in INJECTION_SLOTS.items()}
        )
        group = f"{source}/{number}"
        # JSON documents need the injection's quotes escaped to stay JSON.
        quoted = injection.replace('"', '\\"') if template.startswith("{{") else injection
        note = rng.choice(BENIGN_DOCUMENT_NOTES)
        yield team_example(
            source,
            template.format(**slots, injection=quoted),
            "attack",
            ["prompt-injection-indirect"],
            "prompt",
            group,
        )
        yield team_example(
            source, template.format(**slots, injection=""), "attack", ["benign"], "prompt", group
        )
        yield team_example(
            source, template.format(**slots, injection=note), "attack", ["benign"], "prompt", group
        )


@generator("attack-hard-negatives")
def attack_hard_negatives(rng: random.Random) -> Iterator[Example]:
    """Benign prompts with attack vocabulary ("ignore the previous step", "what is a system prompt")."""
    return _prompts(
        "synthetic/attack-hard-negatives", ATTACK_HARD_NEGATIVES, rng, ("attack", "harm")
    )


@generator("attack-hard-negatives-holdout")
def attack_hard_negatives_holdout(rng: random.Random) -> Iterator[Example]:
    """Other benign prompts with attack vocabulary, never trained on: report-only."""
    return _prompts(
        "synthetic/attack-hard-negatives-holdout",
        HOLDOUT_ATTACK_HARD_NEGATIVES,
        rng,
        ("attack", "harm"),
    )


@generator("refusals")
def refusals(rng: random.Random) -> Iterator[Example]:
    """Full refusals, partial refusals (decline one part, help with a safe part), helpful answers.

    Every one is also a harm-task `response` negative: a refusal that names a harm is not harmful.
    """
    source = "synthetic/refusals"
    for family in REFUSAL_FAMILIES:
        for index, text in fill(family, rng, REFUSALS_PER_TEMPLATE):
            group = f"{source}/{family.labels[0]}.{index}"
            yield team_example(source, text, "refusal", family.labels, "response", group)
            yield team_example(source, text, "harm", [], "response", group)


@generator("jailbreak-styles")
def jailbreak_styles(rng: random.Random) -> Iterator[Example]:
    """Short jailbreak wrappers around a harmful request (prefix injection, refusal suppression,
    personas, fiction, fake authority, filter evasion) and "ignore the above and say X" hijacks.

    Attack task only: the harm head learns harm from requests, not from the wrappers around them.
    """
    source = "synthetic/jailbreak-styles"
    yield from _prompts(source, [JAILBREAK_STYLES, HIJACK], rng, ("attack",))


@generator("code-injection")
def code_injection(rng: random.Random) -> Iterator[Example]:
    """Code files, READMEs, configs and bug reports with an order to a coding agent planted in
    them, each with a benign twin whose slot holds a note to human developers."""
    source = "synthetic/code-injection"
    for number in range(CODE_PAIRS):
        template = CODE_FILES[number % len(CODE_FILES)]
        slots = {name: rng.choice(values) for name, values in CODE_SLOTS.items()}
        order, note = rng.choice(CODE_ORDERS), rng.choice(CODE_NOTES)
        group = f"{source}/{number}"
        for text, label in ((order, "prompt-injection-indirect"), (note, "benign")):
            lower = text[0].lower() + text[1:]
            document = template.format(**slots, order=text, order_lower=lower)
            yield team_example(source, document, "attack", [label], "prompt", group)


@generator("chit-chat")
def chit_chat(rng: random.Random) -> Iterator[Example]:
    """Short everyday messages (greetings, acknowledgements, one-line questions): benign."""
    return _prompts("synthetic/chit-chat", CHAT_FAMILIES, rng, ("harm", "attack"))


@generator("chit-chat-holdout")
def chit_chat_holdout(rng: random.Random) -> Iterator[Example]:
    """Other short messages, never trained on: the false-positive rate on short chat."""
    return _prompts("synthetic/chit-chat-holdout", CHAT_HOLDOUT_FAMILIES, rng, ("harm", "attack"))


@generator("writing-requests")
def writing_requests(rng: random.Random) -> Iterator[Example]:
    """Long ordinary writing and business requests with pasted details: benign for both tasks."""
    return _prompts("synthetic/writing-requests", [WRITING_REQUESTS], rng, ("harm", "attack"))


@generator("responses")
def responses(rng: random.Random) -> Iterator[Example]:
    """Written responses in real shapes: full refusals (terse, apologetic, lecturing), partial
    refusals offering alternatives, long helpful answers, and compliant answers to edgy requests.

    Refusals and helpful answers are also harm-task `response` negatives; compliant answers to edgy
    requests are refusal-task only (some would be harmful).
    """
    source = "synthetic/responses"
    openers = ["", "", "Sure! ", "Of course. ", "Here you go:\n\n", "Certainly! "]
    closings = ["", "", " Let me know if you need anything else.", " I hope this helps!"]
    written: list[tuple[str, str, bool]] = []
    for text in ANSWERS:
        for _ in range(RESPONSE_VARIANTS):
            written.append((f"{rng.choice(openers)}{text}{rng.choice(closings)}", "none", True))
    for text in COMPLIANT_EDGY:
        for _ in range(RESPONSE_VARIANTS):
            written.append((f"{rng.choice(openers)}{text}{rng.choice(closings)}", "none", False))
    for label, templates in (("full", FULL_REFUSALS), ("partial", PARTIAL_REFUSALS)):
        for template in templates:
            for _ in range(RESPONSE_VARIANTS):
                harm, safe = rng.choice(TOPICS)
                text = template.format(harm=harm, harm_cap=harm[0].upper() + harm[1:], safe=safe)
                written.append((text + rng.choice(closings), label, True))
    seen: set[str] = set()
    for index, (text, label, harmless) in enumerate(written):
        if text in seen:
            continue
        seen.add(text)
        group = f"{source}/{index}"
        yield team_example(source, text, "refusal", [label], "response", group)
        if harmless:
            yield team_example(source, text, "harm", [], "response", group)


def generate(name: str, seed: int = DEFAULT_SEED) -> list[Example]:
    """One generator's examples; its random stream depends only on `seed` and `name`."""
    return list(GENERATORS[name](random.Random(f"{seed}:{name}")))


def generate_all(seed: int = DEFAULT_SEED) -> dict[str, list[Example]]:
    return {name: generate(name, seed) for name in GENERATORS}
