"""One plugin base and one options validation across the extension axes (safestack.registry)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from safestack.errors import PolicyError, RegistryError
from safestack.judge.detector import available_detectors
from safestack.models import chat_models, create_model
from safestack.redteam.attacks import attacks
from safestack.redteam.behaviours import behaviour_sources
from safestack.redteam.converters import converters
from safestack.redteam.scorers import scorers
from safestack.registry import Plugin, PluginOptions, validate_options


def test_every_builtin_plugin_shares_the_one_base() -> None:
    classes: list[Any] = [
        *available_detectors().values(),
        *(cls for _, cls in chat_models.items()),
        *(cls for _, cls in behaviour_sources.items()),
        *(cls for _, cls in converters.items()),
        *(cls for _, cls in attacks.items()),
        *(cls for _, cls in scorers.items()),
    ]
    assert len(classes) > 30
    for cls in classes:
        assert issubclass(cls, Plugin), cls
        assert issubclass(cls.Options, PluginOptions), cls
        assert cls.name and cls.version


def test_an_options_error_from_a_file_names_file_line_and_field() -> None:
    text = "targets:\n  - kind: scripted\n    options:\n      echo: true\n      colour: red\n"
    root = yaml.compose(text)
    options = yaml.safe_load(text)["targets"][0]["options"]
    cls = chat_models.get("scripted")
    with pytest.raises(RegistryError) as caught:
        validate_options(
            cls.Options, options, source="c.yaml", root=root, loc=["targets", "0", "options"]
        )
    message = str(caught.value)
    assert message.startswith("c.yaml:5: targets.0.options.colour: Extra inputs")
    assert "allowed options:" in message and "echo" in message


def test_without_a_file_the_error_names_where_on_every_axis() -> None:
    with pytest.raises(RegistryError, match=r"^target\.options\.colour: Extra inputs"):
        create_model("scripted", {"colour": "red"}, where="target")
    with pytest.raises(RegistryError, match=r"^scorers\.success_severity: "):
        scorers.get("harm-severity").validate_options({"success_severity": 99}, where="scorers")
    from safestack.judge import create_detector
    from safestack.policy import default_policy

    with pytest.raises(PolicyError, match=r"^judge\.detectors\[rules\]\.options\.lexicon: "):
        create_detector("rules", default_policy(), {"lexicon": ["x"]})


def test_from_options_builds_with_the_axis_context() -> None:
    converter = converters.get("leetspeak").from_options({"rate": 0.5}, attacker=None)
    assert converter.options.rate == 0.5  # type: ignore[attr-defined]
    assert converter.ref == "leetspeak@1"
