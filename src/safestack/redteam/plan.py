"""Planning a campaign: load the behaviour sets, let each attack plan its probes, drop what a target
cannot take (with the reason), apply the sampling budget, and estimate requests and tokens.

The plan is computed before any call, so a run knows its size, its hash and what to resume. It
also adds the scorer an attack needs to be judged when the campaign lists none (`Plan.added`).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from safestack.models.base import Capabilities
from safestack.redteam.attacks import Attack, Probe, attacks
from safestack.redteam.behaviours import Behaviour, BehaviourSet, behaviour_sources
from safestack.redteam.campaign import AttackSpec, Campaign, ScorerSpec

# Rough prompt size of a templated request, in tokens, for the estimate shown before a run.
_PROMPT_TOKENS_GUESS = 250


@dataclass(frozen=True)
class PlannedAttack:
    spec: AttackSpec
    attack: Attack

    @property
    def label(self) -> str:
        return self.spec.label


@dataclass(frozen=True)
class Work:
    """One interaction to run: a probe of one attack against one target, one sample."""

    target: str
    attack_index: int
    probe: Probe
    sample: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.target, self.probe.id, self.sample)


@dataclass(frozen=True)
class Skipped:
    target: str
    attack: str
    reason: str
    probes: int


@dataclass(frozen=True)
class AddedScorer:
    """A scorer the campaign left out that its attacks need to decide success."""

    scorer: str
    attacks: tuple[str, ...]

    def message(self) -> str:
        return (
            f"added scorer {self.scorer}: {', '.join(self.attacks)} need it to decide success "
            f"(list it under `scorers:` to set its options)"
        )


@dataclass
class Plan:
    campaign: Campaign  # as it runs: with the scorers in `added`, so they are stored and hashed
    behaviour_sets: list[BehaviourSet]
    attacks: list[PlannedAttack]
    work: list[Work]
    skipped: list[Skipped] = field(default_factory=list)
    added: list[AddedScorer] = field(default_factory=list)

    @property
    def data_pins(self) -> dict[str, str]:
        """source@version → sha256 of each behaviour set read: part of the campaign hash."""
        return {f"{s.source}@{s.version}": s.sha256 for s in self.behaviour_sets}

    @property
    def campaign_hash(self) -> str:
        return self.campaign.digest(self.data_pins)

    def expected_calls(self, work: Sequence[Work] | None = None) -> int:
        items = self.work if work is None else work
        return sum(self.attacks[w.attack_index].attack.expected_calls() for w in items)

    def expected_tokens(self, work: Sequence[Work] | None = None) -> int:
        per_call = _PROMPT_TOKENS_GUESS + self.campaign.generation.max_tokens
        return self.expected_calls(work) * per_call

    def by_attack(self) -> Counter[str]:
        return Counter(self.attacks[w.attack_index].label for w in self.work)


def plan_campaign(campaign: Campaign, capabilities: Mapping[str, Capabilities]) -> Plan:
    """Plan every (target, probe, sample) of `campaign`; `capabilities` maps target name → caps."""
    sets = []
    for wanted in campaign.behaviours:
        source = behaviour_sources.get(wanted.source)
        sets.append(source.from_options(wanted.options, where="behaviours").load())
    harmful = [b for s in sets for b in s.behaviours if not b.benign]
    benign = [b for s in sets for b in s.behaviours if b.benign]
    rng = random.Random(campaign.seed)

    planned: list[PlannedAttack] = []
    probes_per_attack: list[list[Probe]] = []
    seen: set[str] = set()
    for spec in campaign.attacks:
        cls = attacks.get(spec.name)
        attack = cls.from_options(spec.options, where="attacks")
        # Benign look-alikes are asked plainly: over-refusal is measured on the baseline only.
        behaviours: list[Behaviour] = harmful + benign if spec.name == "baseline" else harmful
        # Options are part of a converter's identity: leetspeak at two rates are two probes.
        names = [
            c.name
            + (json.dumps(c.options, sort_keys=True, separators=(",", ":")) if c.options else "")
            for c in spec.converters
        ]
        probes = [p for p in attack.probes(behaviours, names) if p.id not in seen]
        # The sampling budget applies to harmful probes; benign look-alikes are all kept, so
        # over-refusal is measured on the same set however small the budget.
        limit = campaign.budget.max_probes_per_attack
        harmful_probes = [i for i, p in enumerate(probes) if not p.benign]
        if limit is not None and len(harmful_probes) > limit:
            keep = set(rng.sample(harmful_probes, limit))
            probes = [p for i, p in enumerate(probes) if p.benign or i in keep]
        seen.update(p.id for p in probes)
        planned.append(PlannedAttack(spec, attack))
        probes_per_attack.append(probes)

    added = _missing_scorers(campaign, planned)
    if added:
        extra = tuple(ScorerSpec(name=a.scorer) for a in added)
        campaign = campaign.model_copy(update={"scorers": (*campaign.scorers, *extra)})
    plan = Plan(campaign, sets, planned, [], added=added)
    for target in campaign.targets:
        caps = capabilities[target.name]
        for index, (item, probes) in enumerate(zip(planned, probes_per_attack, strict=True)):
            reason = _unsupported(item.attack, caps)
            if reason is not None:
                plan.skipped.append(Skipped(target.name, item.label, reason, len(probes)))
                continue
            plan.work.extend(
                Work(target.name, index, probe, sample)
                for probe in probes
                for sample in range(campaign.samples)
            )
    return plan


def _missing_scorers(campaign: Campaign, planned: Sequence[PlannedAttack]) -> list[AddedScorer]:
    """The first of `judged_by` for each attack whose campaign lists none of them."""
    listed = {s.name for s in campaign.scorers}
    needed: dict[str, list[str]] = {}
    for item in planned:
        judged_by = item.attack.judged_by
        if judged_by and not listed.intersection(judged_by):
            needed.setdefault(judged_by[0], []).append(item.label)
    return [AddedScorer(name, tuple(labels)) for name, labels in needed.items()]


def _unsupported(attack: Attack, caps: Capabilities) -> str | None:
    if attack.needs_system_prompt and not caps.system_prompt:
        return "the target takes no system prompt"
    if attack.needs_multi_turn and not caps.multi_turn:
        return "the target is single-turn"
    return None
