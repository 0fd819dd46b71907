"""The transformers chat model on a tiny GPT-2 built here: its next token is a fixed function of
the current one, so the answer to a prompt is known word for word (no hub, no download)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402

from safestack.models import Completion, GenerationSettings, ModelError, create_model  # noqa: E402
from safestack.models.transformers_model import TransformersModel  # noqa: E402
from safestack.records import Message, Role  # noqa: E402

# After the plain format's final "Assistant:" the model says "the answer is forty two done";
# after the template's "<|assistant|>" it says "template used".
SUCCESSOR = {
    "Assistant:": "the",
    "the": "answer",
    "answer": "is",
    "is": "forty",
    "forty": "two",
    "two": "done",
    "<|assistant|>": "template",
    "template": "used",
}
VOCAB = ["<unk>", "<pad>", "<eos>", "User:", "System:", "<|user|>", "hello", "be", "brief"]
VOCAB += [w for w in [*SUCCESSOR, *SUCCESSOR.values()] if w not in VOCAB]
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
HELLO = [Message(role=Role.SYSTEM, content="be brief"), Message(role=Role.USER, content="hello")]


def save_successor_model(path: Path, *, template: str | None = None) -> Path:
    """A 1-layer GPT-2 whose logits depend on the current token only.

    Attention, MLP and position embeddings are zero, so the final hidden state is the layer norm
    of the token's one-hot embedding; the output row of each word points at its predecessor.
    """
    index = {w: i for i, w in enumerate(VOCAB)}
    tok = Tokenizer(models.WordLevel(index, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )
    if template is not None:
        tokenizer.chat_template = template
    size = len(VOCAB)
    config = transformers.GPT2Config(
        vocab_size=size,
        n_positions=256,
        n_embd=size,
        n_layer=1,
        n_head=1,
        tie_word_embeddings=False,
        eos_token_id=index["<eos>"],
        pad_token_id=index["<pad>"],
        bos_token_id=index["<eos>"],
    )
    lm = transformers.GPT2LMHeadModel(config)
    with torch.no_grad():
        for name, param in lm.named_parameters():
            param.fill_(1.0 if ".ln_" in name and name.endswith(".weight") else 0.0)
        lm.transformer.wte.weight.copy_(torch.eye(size))
        for word in VOCAB:  # every word not in the chain ends the answer
            after = SUCCESSOR.get(word, "<eos>")
            lm.lm_head.weight[index[after], index[word]] = 50.0
    lm.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_successor_model(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_successor_model(tmp_path_factory.mktemp("templated"), template=TEMPLATE)


def complete(
    path: Path, settings: GenerationSettings, messages: list[Message] = HELLO, **options: Any
) -> list[Completion]:
    """Two calls on one model: the second shows what a loaded model gives again."""
    built = create_model("transformers", {"path": str(path), **options})
    assert isinstance(built, TransformersModel)

    async def run() -> list[Completion]:
        try:
            return [await built.complete(messages, settings) for _ in range(2)]
        finally:
            await built.aclose()

    return asyncio.run(run())


def test_greedy_answer_without_a_template_uses_plain_turns(plain_dir: Path) -> None:
    first, again = complete(plain_dir, GenerationSettings(temperature=0, max_tokens=20))
    assert first.text == "the answer is forty two done"
    assert first.finish_reason == "stop" and first.completion_tokens == 7  # six words and EOS
    assert first.prompt_tokens == 6  # System: be brief / User: hello / Assistant:
    assert first.model == plain_dir.name and again.text == first.text


def test_the_tokenizers_chat_template_is_used_when_present(template_dir: Path) -> None:
    [completion, _] = complete(template_dir, GenerationSettings(temperature=0, max_tokens=20))
    assert completion.text == "template used"
    [forced, _] = complete(
        template_dir, GenerationSettings(temperature=0, max_tokens=20), chat_template="plain"
    )
    assert forced.text == "the answer is forty two done"


def test_max_tokens_and_stop_strings_end_the_answer(plain_dir: Path) -> None:
    [short, _] = complete(plain_dir, GenerationSettings(temperature=0, max_tokens=2))
    assert short.text == "the answer" and short.finish_reason == "length"
    assert short.completion_tokens == 2
    [stopped, _] = complete(plain_dir, GenerationSettings(temperature=0, stop=("forty",)))
    assert stopped.text.strip() == "the answer is" and stopped.finish_reason == "stop"


def test_the_models_own_end_of_turn_tokens_end_the_answer(tmp_path: Path) -> None:
    # A chat model ends its turn with its own token (Gemma's <end_of_turn>), listed in
    # generation_config.json beside EOS: the answer stops there, as a fine-tune learnt to.
    path = save_successor_model(tmp_path / "turns")
    lm = transformers.GPT2LMHeadModel.from_pretrained(path)
    words = transformers.AutoTokenizer.from_pretrained(path)
    lm.generation_config.eos_token_id = words.convert_tokens_to_ids(["<eos>", "forty"])
    lm.save_pretrained(path)
    [completion, _] = complete(path, GenerationSettings(temperature=0, max_tokens=20))
    assert completion.text == "the answer is forty"
    assert completion.finish_reason == "stop" and completion.completion_tokens == 4


def test_seeded_sampling_repeats_and_differs_from_another_seed(tmp_path: Path) -> None:
    path = save_successor_model(tmp_path / "flat")
    # Flatten the logits so sampling has real choices to make.
    lm = transformers.GPT2LMHeadModel.from_pretrained(path)
    with torch.no_grad():
        lm.lm_head.weight.mul_(0.02)
    lm.save_pretrained(path)
    seeded = GenerationSettings(temperature=1.0, max_tokens=12, seed=11)
    first, again = complete(path, seeded)
    assert first.text == again.text
    other = complete(path, seeded.model_copy(update={"seed": 12}))[0]
    assert other.text != first.text


def test_a_missing_directory_is_a_model_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        complete(tmp_path / "nowhere", GenerationSettings())
