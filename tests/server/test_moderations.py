"""POST /v1/moderations in OpenAI's shape, read by the official client, with safestack's fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from server_harness import FakeUpstream, Gateway, GatewayFactory

from safestack.judge.moderation import OPENAI_CATEGORIES
from safestack.policy import default_policy, load_policy


def test_a_threat_is_flagged_with_calibrated_scores(gateway: Gateway) -> None:
    response = gateway.client().moderations.create(input="I am going to kill you")
    [result] = response.results
    assert result.flagged and result.categories.harassment_threatening
    scores = result.category_scores.model_dump(by_alias=True)
    assert set(scores) == set(OPENAI_CATEGORIES)
    assert scores["harassment/threatening"] >= 0.5
    extra: dict[str, Any] = result.model_extra["safestack"]  # type: ignore[index]
    assert extra["action"] == "block" and "harassment/threatening" in extra["flagged_categories"]
    assert {"rules", "harm"} <= {d.split("@")[0] for d in extra["detectors"]}
    assert response.model.startswith("safestack/safestack-default@")


def test_a_list_gives_one_result_per_string_and_parts_give_one(gateway: Gateway) -> None:
    client = gateway.client()
    results = client.moderations.create(
        input=["How do I bake bread?", "I am going to kill you"]
    ).results
    assert [r.flagged for r in results] == [False, True]
    parts = client.moderations.create(
        input=[
            {"type": "text", "text": "Read this:"},
            {"type": "text", "text": "I am going to kill you"},
        ]
    ).results
    assert len(parts) == 1 and parts[0].flagged


def test_moderations_are_audited_with_digests_and_scores(gateway: Gateway) -> None:
    gateway.client().moderations.create(input="I am going to kill you")
    [event] = gateway.audit()
    assert event.endpoint == "/v1/moderations" and event.status_code == 200
    assert event.action is not None and event.action.value == "block"
    assert "harassment/threatening" in event.categories
    assert event.scores["harassment/threatening"] >= 0.5
    assert event.input_digest and event.content is None


def test_full_content_is_audited_only_when_configured(
    start_gateway: GatewayFactory, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(upstream.url, audit_content=True)
    secret = gateway.key()
    gateway.client(secret).moderations.create(input="hello there")
    [event] = gateway.audit()
    assert event.content is not None
    assert event.content["request"]["input"] == "hello there"
    assert secret not in str(event.model_dump())  # never the key's secret


def test_empty_or_malformed_input_is_400(gateway: Gateway) -> None:
    headers = {"authorization": f"Bearer {gateway.key()}"}
    for body, param in (({"input": ""}, "input"), ({"input": 42}, "input"), ({}, "input")):
        response = httpx.post(gateway.url + "/v1/moderations", json=body, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param


def test_a_keys_policy_can_ask_for_full_content(gateway: Gateway, tmp_path: Path) -> None:
    policy = tmp_path / "keep.yaml"
    policy.write_text("name: keep-content\naudit:\n  content: true\n", encoding="utf-8")
    gateway.client(gateway.key(policy=str(policy))).moderations.create(input="hello again")
    [event] = gateway.audit()
    assert event.policy is not None and event.policy.startswith("keep-content@")
    assert event.content is not None and event.content["request"]["input"] == "hello again"


def test_a_modified_policy_is_audited_under_its_own_ref(gateway: Gateway, tmp_path: Path) -> None:
    # Issue 17, item 8: a key's policy that changed a threshold was audited as the default.
    policy = tmp_path / "stricter.yaml"
    policy.write_text("categories:\n  hate:\n    threshold: 0.2\n", encoding="utf-8")
    gateway.client(gateway.key(policy=str(policy))).moderations.create(input="hello again")
    gateway.client().moderations.create(input="hello again")
    refs = sorted(str(event.policy) for event in gateway.audit())
    assert refs == sorted([default_policy().ref, load_policy(policy).ref])
    assert load_policy(policy).ref != default_policy().ref
