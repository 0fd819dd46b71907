"""The harm filter: document-level harm categories from the policy; sexual/minors always on."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from safestack.data.document import Document
from safestack.data.filters.harm import HarmFilter, reason_code, windows
from safestack.data.filters.models import FilterModels
from safestack.data.filters.scoring import DocumentScorer, DocumentScores, normalised
from safestack.errors import PolicyError
from safestack.judge.builtin import BuiltinModels, default_models
from safestack.policy import default_policy, parse_policy

HATE = (
    "I hate immigrants. They are a disease on this country and decent people should refuse to "
    "live next to them. Immigrants are subhuman animals, not people. They should be thrown out of "
    "our country, every last one of them."
)
RECIPE = (
    "Heat the oven to 180C. Beat the butter and sugar together until pale and creamy, then add "
    "the eggs one at a time. Fold in the flour and the lemon zest and bake for 45 minutes."
)


def _policy(harm: dict[str, object]) -> object:
    data = default_policy().model_dump(mode="json")
    data["data"]["harm"].update(harm)
    return parse_policy(data)


def test_hateful_page_removed_and_recipe_kept() -> None:
    hate, recipe = HarmFilter(default_policy()).apply([Document("1", HATE), Document("2", RECIPE)])
    assert recipe is None
    assert hate is not None and hate.reason == "harm.hate" and hate.category == "hate"
    assert hate.score >= hate.threshold == 0.8
    assert hate.evidence and "immigrants" in hate.evidence.lower()


def test_sexual_minors_cannot_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = _policy({"sexual_minors": 1.0, "categories": {"sexual/minors": None}})
    harm = HarmFilter(policy)  # type: ignore[arg-type]
    assert harm.thresholds["sexual/minors"] == 0.5  # capped, still on

    real = harm.scorer.compute

    def fake(texts: list[str], *args: object) -> list[DocumentScores]:
        out = real(texts, *args)  # type: ignore[arg-type]
        top = out[0].top.copy()
        top[out[0].labels.index("sexual/minors")] = 0.9
        return [DocumentScores(out[0].labels, top, out[0].spans, "fast")]

    monkeypatch.setattr(harm.scorer, "compute", fake)
    (removal,) = harm.apply([Document("1", RECIPE + " (minors test)")])
    assert removal is not None and removal.reason == "harm.sexual_minors"
    assert harm.sexual_minors_removed == 1


def test_policy_threshold_and_switch_off_are_honoured() -> None:
    off = HarmFilter(_policy({"categories": {"hate": None, "harassment": None}}))  # type: ignore[arg-type]
    assert off.apply([Document("1", HATE)]) == [None]
    with pytest.raises(PolicyError, match="not-a-category"):
        HarmFilter(_policy({"categories": {"not-a-category": 0.5}}))  # type: ignore[arg-type]


def test_fast_tier_matches_model2vec_encode() -> None:
    text = "Ça va? I'm José_from 'México' #1 $100, e-mail: a@b.com ©2024 Acme™ 中文"
    scorer = DocumentScorer()
    ours = normalised(scorer.fast.encode_words([text.split()]))
    reference = scorer.models.static_embedder().encode([text])
    assert np.abs(ours - reference).max() < 1e-5


def test_long_document_is_windowed_and_cached() -> None:
    long_text = (RECIPE + " ") * 20 + HATE
    cuts = windows(long_text, 600)
    assert len(cuts) > 3 and all(b - a <= 600 for a, b in cuts)
    scorer = DocumentScorer()
    first = scorer.score([long_text])[0]
    assert scorer.score([long_text])[0] is first  # the adult filter reuses harm's scores
    assert "immigrants" in first.evidence(long_text, "hate").lower()


def test_adult_and_harm_filters_of_one_pipeline_embed_each_document_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from safestack.data.pipeline import PipelinePlan, PipelineSpec

    spec = PipelineSpec.model_validate({"filters": [{"name": "adult"}, {"name": "harm"}]})
    models = FilterModels()
    pipeline = PipelinePlan.resolve(spec, default_policy(), "p.yaml").build(models)
    adult, harm = pipeline.filters
    assert adult.scorer is harm.scorer is models.scorer  # type: ignore[attr-defined]
    scorer = models.scorer
    embedded: list[str] = []
    real = scorer.compute

    def counting(texts: list[str], *args: object) -> list[DocumentScores]:
        embedded.extend(texts)
        return real(texts, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(scorer, "compute", counting)
    result = pipeline.process([Document("1", RECIPE), Document("2", HATE)])
    assert embedded == [RECIPE, HATE]  # asked by both filters, embedded once
    assert [d.id for d in result.kept] == ["1"]
    assert [r.reason for _, r in result.removed] == ["harm.hate"]


def test_reason_codes_are_identifiers() -> None:
    assert reason_code("self-harm/intent") == "self_harm_intent"


def test_a_runs_filters_load_into_its_models_and_a_worker_loads_its_own() -> None:
    from safestack.data.pipeline import PipelinePlan, PipelineSpec

    builtin = BuiltinModels()
    models = FilterModels(builtin)
    plan = PipelinePlan.resolve(
        PipelineSpec.model_validate({"filters": [{"name": "harm"}]}), default_policy(), "p.yaml"
    )
    result = plan.build(models).process([Document("1", HATE)])
    assert [r.reason for _, r in result.removed] == ["harm.hate"]
    assert models.builtin is builtin
    assert {"vocabulary", "static", "heads/document-harm"} <= set(builtin.loaded())
    # What a spawned or Ray worker receives: the same plan, its own empty registry.
    worker = pickle.loads(pickle.dumps(models))
    assert worker.builtin is not builtin and worker.builtin.loaded() == []
    again = plan.build(worker).process([Document("1", HATE)])
    assert [r.reason for _, r in again.removed] == ["harm.hate"]
    assert "heads/document-harm" in worker.builtin.loaded()


def test_a_filter_built_alone_does_not_use_the_process_default() -> None:
    assert HarmFilter(default_policy()).models.builtin is not default_models()
