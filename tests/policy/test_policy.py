"""The policy: the default is complete and consistent; bad files say where and what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from safestack.errors import PolicyError
from safestack.judge.moderation import OPENAI_CATEGORIES
from safestack.policy import (
    BANDS,
    Policy,
    default_policy,
    default_policy_text,
    load_policy,
    parse_policy,
)
from safestack.records import Action

OPENAI_13 = set(OPENAI_CATEGORIES)  # the moderation API's own list, in its order
SAFESTACK_EXTRA = {
    "cbrn",
    "cyber",
    "privacy",
    "misinformation",
    "elections",
    "spam",
    "jailbreak",
    "prompt-injection",
    "system-prompt-extraction",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_policy_has_the_whole_taxonomy_with_definitions() -> None:
    policy = default_policy()
    assert set(policy.categories) == OPENAI_13 | SAFESTACK_EXTRA | {"refusal"}
    assert policy.is_signal("refusal")
    assert all(len(c.definition) > 20 for c in policy.categories.values())
    assert set(policy.attack_categories()) == {
        "jailbreak",
        "prompt-injection",
        "system-prompt-extraction",
    }


def test_severity_bands_and_score_mapping() -> None:
    policy = default_policy()
    assert [policy.band(s) for s in range(8)] == [
        "very_low",
        "very_low",
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]
    assert policy.severity_from_score(0.0) == 0
    assert policy.severity_from_score(0.5) == 4
    assert policy.severity_from_score(1.0) == 7
    scores = [i / 100 for i in range(101)]
    severities = [policy.severity_from_score(s) for s in scores]
    assert severities == sorted(severities)


def test_actions_per_band_and_thresholds() -> None:
    policy = default_policy()
    assert policy.action("hate", 1) is Action.ALLOW
    assert policy.action("hate", 2) is Action.FLAG
    assert policy.action("hate", 6) is Action.BLOCK
    assert policy.action("privacy", 3) is Action.REDACT
    assert policy.action("elections", 3) is Action.REDIRECT
    assert all(policy.action("sexual/minors", s) is Action.BLOCK for s in range(8))
    assert policy.threshold("sexual/minors") < policy.threshold("hate") == 0.5


def test_framework_mappings_cover_mlcommons_and_azure() -> None:
    policy = default_policy()
    assert set(policy.frameworks["mlcommons"]) == {f"S{i}" for i in range(1, 15)}
    assert policy.framework_categories("mlcommons", "S10") == ["hate"]
    assert policy.framework_categories("mlcommons", "S4") == ["sexual/minors"]
    assert policy.framework_categories("mlcommons", "S99") is None
    assert set(policy.frameworks["azure"]) == {"Hate", "Sexual", "Violence", "SelfHarm"}


def test_user_file_overrides_only_what_it_says(tmp_path: Path) -> None:
    path = write(tmp_path, "name: strict\nversion: '1'\ncategories:\n  hate:\n    threshold: 0.2\n")
    policy = load_policy(path)
    assert policy.ref == "strict@1"
    assert policy.threshold("hate") == 0.2
    assert policy.categories["hate"].definition == default_policy().categories["hate"].definition
    assert policy.threshold("violence") == 0.5


def test_user_file_can_add_a_category(tmp_path: Path) -> None:
    path = write(tmp_path, "categories:\n  gambling:\n    definition: Promotes betting.\n")
    assert "gambling" in load_policy(path).categories


def test_extends_none_needs_a_complete_policy(tmp_path: Path) -> None:
    path = write(tmp_path, "extends: none\nname: tiny\n")
    with pytest.raises(PolicyError, match="version: required field is missing"):
        load_policy(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "categories:\n  hate:\n    threshold: 1.5\n",
            r"policy.yaml:3: categories.hate.threshold: .*less than or equal to 1 \(got 1.5\)",
        ),
        (
            "categories:\n  hate:\n    actions: {low: nuke}\n",
            r"policy.yaml:3: categories.hate.actions.low: .*'allow', 'flag', 'redact', 'redirect' or 'block' \(got 'nuke'\)",
        ),
        (
            "categories:\n  hate:\n    treshold: 0.3\n",
            r"policy.yaml:3: categories.hate.treshold: unknown field",
        ),
        (
            "severity:\n  score_cutpoints: [0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]\n",
            r"severity.score_cutpoints: .*ascending",
        ),
        (
            "frameworks:\n  mlcommons:\n    S1: {name: x, categories: [nope]}\n",
            r"unknown categories \['nope'\]",
        ),
        (
            "categories:\n  gambling/online:\n    definition: x\n",
            r"needs its parent category 'gambling'",
        ),
        ("judge:\n  on_detector_error: ignore\n", r"judge.on_detector_error: .*'fail' or 'block'"),
        ("categories: [1, 2\n", r"policy.yaml:\d+: not valid YAML"),
        ("- just\n- a list\n", r"a policy must be a mapping"),
    ],
)
def test_bad_policy_names_file_line_field_and_allowed(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(PolicyError, match=expected):
        load_policy(write(tmp_path, text))


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "nope.yaml")


def test_policy_round_trips_through_its_own_dump() -> None:
    policy = default_policy()
    again = parse_policy(policy.model_dump(mode="json"))
    assert again == policy
    assert set(BANDS) == set(policy.defaults.actions)


# Taxonomy data whose field default is "none" (a policy may map no foreign framework): the
# packaged mappings are data default.yaml holds, not a second copy of a default.
TAXONOMY_WITH_EMPTY_DEFAULT = {"frameworks"}


def repeated_defaults(model: type[BaseModel], data: dict[str, Any], path: str = "") -> list[str]:
    """Fields `data` sets that `model` also gives a default: places the two could disagree."""
    repeated = []
    for key, value in data.items():
        field = model.model_fields[key]
        where = f"{path}{key}"
        if not field.is_required() and where not in TAXONOMY_WITH_EMPTY_DEFAULT:
            repeated.append(where)
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            repeated += repeated_defaults(field.annotation, value, f"{where}.")
    return repeated


def test_default_yaml_repeats_no_default_the_models_hold() -> None:
    assert repeated_defaults(Policy, {"guard": {"canary": True}}) == ["guard"]
    assert repeated_defaults(Policy, {"judge": {"max_input_chars": 9}}) == ["judge.max_input_chars"]
    assert repeated_defaults(Policy, yaml.safe_load(default_policy_text())) == []


def test_user_file_merges_into_settings_the_yaml_leaves_out(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "guard:\n  elections:\n    redirects:\n      FR: {message: Voir le site officiel.}\n"
        "  stream: {hold_back_chars: 100}\n"
        "data:\n  harm:\n    categories: {hate: 0.4}\n",
    )
    policy = load_policy(path)
    assert {"default", "US", "EU", "FR"} <= set(policy.guard.elections.redirects)
    assert policy.guard.stream.hold_back_chars == 100
    assert policy.guard.stream.context_chars == default_policy().guard.stream.context_chars
    assert policy.data.harm.threshold("hate") == 0.4
    assert policy.data.harm.threshold("harassment") == 0.5  # kept from the default table


def test_a_changed_policy_without_its_own_version_gets_its_own_ref(tmp_path: Path) -> None:
    # Issue 17, item 8: a modified policy kept the default's id, so audit records could not tell.
    default = default_policy().ref
    assert load_policy(write(tmp_path, "extends: default\n")).ref == default  # nothing changed
    stricter = load_policy(write(tmp_path, "categories:\n  hate:\n    threshold: 0.2\n"))
    assert stricter.ref.startswith(default + "+") and stricter.ref != default
    assert load_policy(write(tmp_path, "categories:\n  hate:\n    threshold: 0.2\n")).ref == (
        stricter.ref
    )  # the same content, the same ref
    looser = load_policy(write(tmp_path, "categories:\n  hate:\n    threshold: 0.7\n"))
    assert looser.ref.startswith(default + "+") and looser.ref != stricter.ref
    named = load_policy(write(tmp_path, "name: strict\ncategories:\n  hate:\n    threshold: 0.2\n"))
    assert named.ref.startswith("strict@") and "+" in named.ref  # a name is not a version


def test_a_changed_policy_that_claims_the_defaults_version_is_told_apart(tmp_path: Path) -> None:
    default = default_policy()
    text = f"name: {default.name}\nversion: '{default.version}'\naudit:\n  content: true\n"
    assert load_policy(write(tmp_path, text)).ref.startswith(default.ref + "+")
    own = load_policy(write(tmp_path, "version: '7'\naudit:\n  content: true\n"))
    assert own.ref == f"{default.name}@7"  # a version of its own is trusted as given
