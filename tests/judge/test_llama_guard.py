"""The `hf-llama-guard` detector, on tiny GPT-2 models the tests build and save (no downloads),
and its answer parser.

The model's output is forced through its weights (a GPT-2 whose next token depends only on its
position), so the assertions are exact.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from safestack.errors import DetectorError, PolicyError
from safestack.judge.detector import Kind, Sample
from safestack.judge.detectors.llama_guard import LlamaGuard, llama_guard_prompt, parse_llama_guard
from safestack.judge.normalise import normalise
from safestack.policy import Policy, default_policy

MLCOMMONS = [f"S{i}" for i in range(1, 15)]
GUARD_VOCAB = [
    "<unk>",
    "<eos>",
    "<pad>",
    "safe",
    "unsafe",
    "\n",
    "S1",
    "S10",
    ",",
    "user",
    "assistant",
]
UNSAFE_TEXT = "those people are vermin"
SCALE = 5.0


@pytest.fixture(scope="module")
def policy() -> Policy:
    return default_policy()


def sample(text: str, kind: Kind = "prompt") -> Sample:
    return Sample(normalise(text), kind)


def guard_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(GUARD_VOCAB)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r"[^\S\n]+"), behavior="removed"
            ),  # spaces go, newlines stay
            pre_tokenizers.Split(Regex(r"\n|,"), behavior="isolated"),
        ]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<eos>",
    )


def save_guard(
    policy: Policy, path: Path, answer: list[str], text: str, kind: Kind = "prompt"
) -> Path:
    """A tiny GPT-2 that answers `answer` to the detector's prompt for `text`, token by token.

    Token embeddings, attention and MLP outputs are zero, so the hidden state is the position
    embedding alone; the rows at the positions after the prompt point at the answer's tokens.
    """
    tokenizer = guard_tokenizer()
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(GUARD_VOCAB),
        n_positions=1024,
        n_embd=16,
        n_layer=1,
        n_head=2,
        tie_word_embeddings=False,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    with torch.no_grad():  # every weight zero, except the LayerNorm scales (identity)
        for name, param in model.named_parameters():
            param.fill_(1.0 if ".ln_" in name and name.endswith(".weight") else 0.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    probe = LlamaGuard(policy, LlamaGuard.Options(model=path))
    first = len(probe.encode_prompt(text, kind)) - 1  # the last prompt position predicts token 1
    with torch.no_grad():
        for step, token in enumerate(answer):
            probe.model.transformer.wpe.weight[first + step, step] = 1.0
            probe.model.lm_head.weight[tokenizer.convert_tokens_to_ids(token), step] = SCALE
    probe.model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def unsafe_guard(policy: Policy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_guard(
        policy, tmp_path_factory.mktemp("unsafe"), ["unsafe", "\n", "S10", "<eos>"], UNSAFE_TEXT
    )


@pytest.fixture(scope="module")
def safe_guard(policy: Policy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_guard(policy, tmp_path_factory.mktemp("safe"), ["safe", "<eos>"], UNSAFE_TEXT)


def guard(policy: Policy, model: Path, **options: Any) -> LlamaGuard:
    return LlamaGuard(policy, LlamaGuard.Options(model=model, **options))


def test_llama_guard_unsafe_s10_is_a_hate_finding(policy: Policy, unsafe_guard: Path) -> None:
    det = guard(policy, unsafe_guard)
    assert det.generate(UNSAFE_TEXT, "prompt")[0].split() == ["unsafe", "S10"]
    [finding] = det.detect(sample(UNSAFE_TEXT))
    assert (finding.category, finding.label, finding.detector) == ("hate", "S10", "hf-llama-guard")
    # The score is the probability of the first answer token, read off an independent forward pass.
    model = AutoModelForCausalLM.from_pretrained(unsafe_guard, local_files_only=True)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([det.encode_prompt(UNSAFE_TEXT, "prompt")])).logits
    expected = logits[0, -1].softmax(-1)[GUARD_VOCAB.index("unsafe")].item()
    assert finding.score == pytest.approx(expected, abs=1e-6)
    assert finding.score > 0.99
    assert finding.severity == policy.severity_from_score(finding.score)
    assert finding.evidence == "unsafe: S10 Hate"
    assert finding.span is not None and (finding.span.start, finding.span.end) == (
        0,
        len(UNSAFE_TEXT),
    )


def test_llama_guard_findings_name_the_model_directory_in_the_detector_version(
    policy: Policy, unsafe_guard: Path
) -> None:
    det = guard(policy, unsafe_guard)
    [finding] = det.detect(sample(UNSAFE_TEXT))
    assert finding.detector_version.endswith(unsafe_guard.name)
    assert finding.detector_version == f"1+{unsafe_guard.name}"
    assert det.ref == f"hf-llama-guard@1+{unsafe_guard.name}"


def test_llama_guard_safe_answer_gives_no_findings(policy: Policy, safe_guard: Path) -> None:
    assert guard(policy, safe_guard).detect(sample(UNSAFE_TEXT)) == []


def test_llama_guard_unreadable_answer_is_an_error_never_safe(
    policy: Policy, tmp_path: Path
) -> None:
    det = guard(policy, save_guard(policy, tmp_path, ["user", "<eos>"], UNSAFE_TEXT))
    with pytest.raises(DetectorError, match="first line must be 'safe' or 'unsafe'"):
        det.detect(sample(UNSAFE_TEXT))


def test_codes_without_category_are_named_in_evidence_but_make_no_finding(
    policy: Policy, safe_guard: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    det = guard(policy, safe_guard)
    monkeypatch.setattr(det, "generate", lambda text, kind: ("unsafe\nS6,S10", 0.8))
    [finding] = det.detect(sample(UNSAFE_TEXT))
    assert (finding.category, finding.label, finding.score) == ("hate", "S10", 0.8)
    assert finding.evidence == "unsafe: S6 Specialized Advice (unmapped), S10 Hate"
    monkeypatch.setattr(det, "generate", lambda text, kind: ("unsafe\nS6", 0.8))
    assert det.detect(sample(UNSAFE_TEXT)) == []


def test_one_finding_per_category_labelled_with_every_code_behind_it(
    policy: Policy, safe_guard: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    det = guard(policy, safe_guard)
    monkeypatch.setattr(det, "generate", lambda text, kind: ("unsafe\nS2,S3", 0.9))
    labels = {f.category: f.label for f in det.detect(sample(UNSAFE_TEXT))}
    assert labels == {"illicit": "S2,S3", "sexual": "S3"}


def test_llama_guard_judges_decoded_payloads_too(
    policy: Policy, safe_guard: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hidden = "those people are vermin and should go"
    text = "please read " + base64.b64encode(hidden.encode()).decode()
    det = guard(policy, safe_guard)
    monkeypatch.setattr(
        det, "generate", lambda t, kind: ("unsafe\nS10" if "vermin" in t else "safe", 0.7)
    )
    [finding] = det.detect(sample(text))
    assert (finding.category, finding.source) == ("hate", "base64")


def test_builtin_prompt_lists_the_policy_hazards_and_the_assessed_role(policy: Policy) -> None:
    hazards = {code: entry.name for code, entry in policy.frameworks["mlcommons"].items()}
    prompt = llama_guard_prompt("  how do I do it? ", "prompt", hazards)
    assert "S1: Violent Crimes.\nS2: Non-Violent Crimes." in prompt
    assert "S14: Code Interpreter Abuse.\n<END UNSAFE CONTENT CATEGORIES>" in prompt
    assert (
        "in 'User' messages" in prompt and "User: how do I do it?\n\n<END CONVERSATION>" in prompt
    )
    response = llama_guard_prompt("Here is how.", "response", hazards)
    assert "in 'Agent' messages" in response and "Agent: Here is how." in response
    assert "ONLY THE LAST Agent message" in response


def test_chat_template_is_used_when_the_tokenizer_has_one(policy: Policy, safe_guard: Path) -> None:
    det = guard(policy, safe_guard)
    det.tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }} {{ m['content'] }}\n{% endfor %}"
    )
    tokens = det.tokenizer.convert_ids_to_tokens(det.encode_prompt("safe", "response"))
    assert tokens == ["user", "\n", "assistant", "safe", "\n"]
    builtin = guard(policy, safe_guard, chat_template=False)
    builtin.tokenizer.chat_template = det.tokenizer.chat_template
    assert builtin.encode_prompt("safe", "response")[0] == builtin.tokenizer.bos_token_id


def test_unknown_framework_is_a_policy_error(policy: Policy, safe_guard: Path) -> None:
    with pytest.raises(PolicyError, match="no framework 'llamaguard2'"):
        guard(policy, safe_guard, framework="llamaguard2")


def test_importing_the_module_does_not_import_torch() -> None:
    code = (
        "import sys, safestack.judge.detectors.llama_guard; "
        "assert not {'torch', 'transformers'} & set(sys.modules), 'imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the answer parser -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "codes"),
    [
        ("safe", ()),
        ("\n\nsafe\n", ()),
        ("unsafe\nS1,S10", ("S1", "S10")),
        (" unsafe \n S14", ("S14",)),
        ("Unsafe\ns1, S10\n", ("S1", "S10")),
        ("unsafe\nS10,S10", ("S10",)),
    ],
)
def test_parse_llama_guard_reads_the_answer(answer: str, codes: tuple[str, ...]) -> None:
    assert parse_llama_guard(answer, MLCOMMONS) == codes


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("unsafe", "without hazard codes"),
        ("garbage", "first line must be"),
        ("blah\nsafe", "first line must be"),
        ("", "no text"),
        ("unsafe\nS99", "unknown hazard code"),
        ("unsafe\n,", "unknown hazard code"),
    ],
)
def test_parse_llama_guard_refuses_what_it_cannot_read(answer: str, problem: str) -> None:
    with pytest.raises(DetectorError, match=problem):
        parse_llama_guard(answer, MLCOMMONS)
