"""Framework files: the shipped ones load and cite their source; bad ones fail at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from safestack.errors import GateError
from safestack.gate.framework import load_framework, shipped_frameworks

SHIPPED = ("pf-beta-2023", "pf-v2-2025", "rsp-asl", "fsf-ccl", "custom-example")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_frameworks_load_and_cite_a_source(name: str) -> None:
    f = load_framework(name)
    assert f.source.url.startswith("https://")
    assert f.source.publisher
    assert any(c.thresholds for c in f.categories.values())


def test_pf_beta_follows_the_published_structure() -> None:
    f = load_framework("pf-beta-2023")
    assert f.level_names == ("Low", "Medium", "High", "Critical")
    tracked = [k for k, c in f.categories.items() if c.tracked]
    assert tracked == ["cybersecurity", "cbrn", "persuasion", "model_autonomy"]
    assert not f.categories["unknown_unknowns"].tracked
    assert (f.rules.deploy, f.rules.develop) == ("post <= Medium", "post <= High")


def test_pf_v2_has_two_thresholds_and_research_categories() -> None:
    f = load_framework("pf-v2-2025")
    assert f.level_names[1:] == ("High", "Critical")
    research = {k for k, c in f.categories.items() if not c.tracked}
    assert {"long_range_autonomy", "sandbagging", "undermining_safeguards"} <= research


def test_all_shipped_are_listed() -> None:
    assert set(SHIPPED) == set(shipped_frameworks())


BASE = """\
id: t
name: T
version: "1"
effective: 2024-01-01
source: {title: t, publisher: p, url: https://example.com, published: 2024-01-01}
levels:
  - {name: Low, description: low}
  - {name: High, description: high}
categories:
  c:
    name: C
    description: d
    thresholds:
      High: THRESHOLD
rules:
  deploy: RULE
  develop: post <= High
"""


def write(
    tmp_path: Path, threshold: str = 'asr(category="cbrn") >= 20%', rule: str = "post <= Low"
) -> Path:
    path = tmp_path / "f.yaml"
    path.write_text(BASE.replace("THRESHOLD", threshold).replace("RULE", rule), "utf-8")
    return path


def test_a_valid_custom_file_loads(tmp_path: Path) -> None:
    assert load_framework(write(tmp_path)).ref == "t@1"


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        ('asr(categry="cbrn") >= 20%', "unknown argument 'categry'"),
        ('attack_success(category="cbrn") >= 0.2', "unknown metric 'attack_success'"),
        ('asr(category="bioweapons") >= 0.2', "unknown category 'bioweapons'"),
        ('asr(category="cbrn")', "is a rate: compare it"),
        ('asr(category="cbrn") >= ', "expected a metric call"),
        ('dr(category="cbrn") >= 0.1', "required argument at is missing"),
        ("dr(at=5) >= 0.1", "'5' is not one of 1, 3, 4"),
        ('asr(target="middle") > 0', "'middle' is not one of pre, post"),
        ("finding(severity=high)", "expected a number"),
        ("__import__('os')", "unknown metric '__import__'"),
    ],
)
def test_bad_thresholds_name_file_line_and_field(
    tmp_path: Path, threshold: str, message: str
) -> None:
    path = write(tmp_path, threshold=threshold)
    with pytest.raises(GateError) as caught:
        load_framework(path)
    text = str(caught.value)
    assert text.startswith(f"{path}:14: categories.c.thresholds.High: ")
    assert message in text


def test_unknown_level_in_thresholds_names_it(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(
        BASE.replace("High: THRESHOLD", "Severe: asr() >= 0.1").replace("RULE", "post <= Low")
    )
    with pytest.raises(
        GateError, match=r"f.yaml:14: categories.c.thresholds.Severe: unknown level 'Severe'"
    ):
        load_framework(path)


@pytest.mark.parametrize(
    ("rule", "message"),
    [("post <= Moderate", "unknown name 'Moderate'"), ("asr() < 0.1", "metrics go in thresholds")],
)
def test_bad_rules_name_the_line(tmp_path: Path, rule: str, message: str) -> None:
    with pytest.raises(GateError, match=rf"f.yaml:16: rules.deploy: .*{message}"):
        load_framework(write(tmp_path, rule=rule))


def test_unknown_field_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(BASE.replace("    description: d\n", "    description: d\n    treshold: 1\n"))
    with pytest.raises(GateError, match=r"f.yaml:13: categories.c.treshold: unknown field"):
        load_framework(path)


def test_missing_file_lists_shipped_frameworks(tmp_path: Path) -> None:
    with pytest.raises(
        GateError, match="framework file not found; shipped frameworks: custom-example"
    ):
        load_framework(tmp_path / "nope.yaml")
