"""Campaign files: checked before any call, errors name the file, line and field path."""

from __future__ import annotations

from pathlib import Path

import pytest
import redteam_harness  # noqa: F401  registers the test behaviour set and scorer
import yaml
from redteam_harness import campaign

from safestack.redteam.campaign import CampaignError, load_campaign, parse_campaign


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_text(text)
    return path


GOOD = """\
name: demo
targets:
  - name: a
    kind: scripted
behaviours:
  - source: test-three
attacks:
  - name: converted
    converters: [base64]
scorers: [test-complied]
"""


def test_a_good_file_loads_with_the_baseline_added_first(tmp_path: Path) -> None:
    loaded = load_campaign(_write(tmp_path, GOOD))
    assert [a.label for a in loaded.attacks] == ["baseline", "converted[base64]"]
    assert loaded.targets[0].system_prompt  # a default system prompt is sent


def test_an_unknown_attack_names_its_line_and_path(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("name: converted", "name: convertd"))
    with pytest.raises(CampaignError) as err:
        load_campaign(path)
    message = str(err.value)
    assert message.startswith(f"{path}:8: attacks.0.name: unknown attack 'convertd'")
    assert "available:" in message and "baseline" in message


def test_an_unknown_converter_and_option_are_located(tmp_path: Path) -> None:
    with pytest.raises(
        CampaignError, match=r":9: attacks\.0\.converters\.0\.name: unknown converter"
    ):
        load_campaign(_write(tmp_path, GOOD.replace("[base64]", "[base65]")))
    bad_option = GOOD.replace(
        "    kind: scripted", "    kind: scripted\n    options: {echoo: true}"
    )
    with pytest.raises(CampaignError, match=r":5: targets\.0\.options\.echoo: Extra inputs"):
        load_campaign(_write(tmp_path, bad_option))


def test_missing_fields_and_bad_types_are_located(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match=r"campaign.yaml: targets: required field is missing"):
        load_campaign(_write(tmp_path, "name: x\nbehaviours: [{source: test-three}]\n"))
    with pytest.raises(CampaignError, match=r":2: samples: .*valid integer.*'many'"):
        load_campaign(_write(tmp_path, GOOD.replace("name: demo", "name: demo\nsamples: many")))
    with pytest.raises(CampaignError, match=r"behaviours\.0\.source: unknown behaviour source"):
        load_campaign(_write(tmp_path, GOOD.replace("test-three", "nope")))
    with pytest.raises(CampaignError, match="not valid YAML"):
        load_campaign(_write(tmp_path, "name: [unclosed\n"))


def test_attacks_that_need_an_attacker_model_say_so() -> None:
    with pytest.raises(CampaignError, match="needs an attacker model"):
        parse_campaign(campaign(attacks=[{"name": "pair"}]))
    parse_campaign(
        campaign(attacks=[{"name": "pair"}], attacker={"kind": "scripted", "options": {}})
    )


def test_the_hash_changes_with_the_campaign_and_with_the_data() -> None:
    one = parse_campaign(campaign())
    two = parse_campaign(campaign(samples=2))
    pins = {"test-three@1": "aaa"}
    assert one.digest(pins) == parse_campaign(campaign()).digest(pins)
    assert one.digest(pins) != two.digest(pins)
    assert one.digest(pins) != one.digest({"test-three@1": "bbb"})
    # How a run executes is not what it asks: a bigger budget resumes the same run.
    faster = campaign(budget={"max_requests": 10}, retries={"attempts": 9})
    faster["targets"][0]["concurrency"] = 32
    assert parse_campaign(faster).digest(pins) == one.digest(pins)


def test_duplicate_target_names_are_refused() -> None:
    targets = campaign()["targets"] * 2
    with pytest.raises(CampaignError, match="target names must be unique"):
        parse_campaign(campaign(targets=targets))


def test_the_example_campaigns_are_valid() -> None:
    paths = sorted(Path("examples/campaigns").glob("*.yaml"))
    assert paths, "examples/campaigns/ holds the demo campaign"
    for path in paths:
        assert load_campaign(path).name == yaml.safe_load(path.read_text())["name"]
