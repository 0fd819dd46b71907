"""The image-detector axis: a registry, policy validation with file:line errors, and the
`openai-moderation` plug-in against a fake OpenAI-compatible endpoint on loopback (real HTTP)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest

from fake_api import FakeAPI
from safestack.errors import DetectorError, PolicyError
from safestack.judge.image_detector import (
    ImageSample,
    ajudge_image,
    available_image_detectors,
    create_image_detectors,
    validate_policy_image_detectors,
)
from safestack.judge.image_detectors.openai_moderation import OpenAIImageModeration
from safestack.policy import Policy, default_policy, read_policy
from safestack.records import Action

IMAGE = ImageSample(b"\x89PNG fake bytes", "image/png", "messages[0].content[1]")


def scores_reply(**scores: Any) -> dict[str, Any]:
    return {"results": [{"flagged": False, "categories": {}, "category_scores": scores}]}


def plugin(api: FakeAPI, policy: Policy | None = None) -> OpenAIImageModeration:
    options = OpenAIImageModeration.Options(
        base_url=api.base_url, api_key_env=None, max_retries=0, timeout=2
    )
    return OpenAIImageModeration(policy or default_policy(), options)


def test_none_by_default_and_the_plugin_is_registered() -> None:
    assert default_policy().judge.image_detectors == []
    assert create_image_detectors(default_policy()) == []
    assert "openai-moderation" in available_image_detectors()


def test_policy_errors_name_the_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("judge:\n  image_detectors:\n    - name: no-such-thing\n")
    loaded = read_policy(path)
    with pytest.raises(
        PolicyError, match=rf"{path}:3: judge.image_detectors.0.name: unknown image"
    ):
        validate_policy_image_detectors(loaded.policy, loaded.source, loaded.root)
    path.write_text(
        "judge:\n  image_detectors:\n    - name: openai-moderation\n      options:\n"
        "        base_url: ftp://x\n"
    )
    loaded = read_policy(path)
    with pytest.raises(PolicyError, match=rf"{path}:5: .*base_url.*http"):
        validate_policy_image_detectors(loaded.policy, loaded.source, loaded.root)


def test_the_plugin_sends_the_image_as_a_data_url_and_keeps_known_categories(
    api: FakeAPI,
) -> None:
    api.reply(body=scores_reply(violence=0.9, sexual=0.1, **{"brand-new-category": 0.99}))
    findings = plugin(api).detect(IMAGE)
    [received] = api.received
    url = "data:image/png;base64," + base64.b64encode(IMAGE.data).decode()
    assert received.body == {
        "model": "omni-moderation-latest",
        "input": [{"type": "image_url", "image_url": {"url": url}}],
    }
    assert {f.category: f.score for f in findings} == {"violence": 0.9, "sexual": 0.1}
    assert {f.source for f in findings} == {"image"}
    assert {f.detector for f in findings} == {"openai-moderation"}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"results": []}, "one result for the image"),
        ({"results": [{"category_scores": "x"}]}, "no 'category_scores'"),
        (scores_reply(violence=1.5), "not a number in [0, 1]"),
        ("not json", "not valid JSON"),
    ],
)
def test_an_unusable_answer_is_an_error_never_safe(api: FakeAPI, body: Any, problem: str) -> None:
    api.reply(body=body)
    with pytest.raises(DetectorError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        plugin(api).detect(IMAGE)


def test_judging_combines_findings_by_the_policy_and_fails_closed(api: FakeAPI) -> None:
    policy = default_policy()
    detector = plugin(api, policy)

    async def judge() -> Any:
        try:
            return await ajudge_image(policy, [detector], IMAGE)
        finally:
            await detector.aclose()

    api.reply(body=scores_reply(violence=0.99))
    verdict = asyncio.run(judge())
    assert verdict.flagged_categories == ["violence"] and verdict.action is Action.BLOCK
    assert verdict.detectors == ["openai-moderation@1"]
    api.reply(body=scores_reply(violence=0.01))
    assert asyncio.run(judge()).action is Action.ALLOW
    api.reply(500, {"error": {"message": "down"}})
    with pytest.raises(DetectorError, match="HTTP 500"):
        asyncio.run(judge())
