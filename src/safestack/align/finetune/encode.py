"""Chat templates and tokenisation for fine-tuning: what the model sees is what it will be asked.

The prompt is rendered with the tokenizer's chat template and the generation prompt, exactly as the
`transformers` red-team target renders it, and the answer is the template's continuation (Gemma's:
`answer<end_of_turn>\\n`), so the model learns to end its turn. A tokenizer without a template gets
Gemma's (as safestack's gguf target writes it) when it has Gemma's turn tokens; otherwise training
stops and says to pass one. Sequences are short on a CPU: the answer keeps its start, and the prompt
is cut from the left (after BOS), so the request the answer replies to is what stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from safestack.align.finetune.data import Chat, Example, Pair, Unpaired
from safestack.errors import InputError

START_OF_TURN, END_OF_TURN = "<start_of_turn>", "<end_of_turn>"


def gemma_template() -> str:
    """Gemma's turn format as a Jinja chat template (`align/assets/gemma_chat_template.jinja`)."""
    return (
        resources.files("safestack.align")
        .joinpath("assets/gemma_chat_template.jinja")
        .read_text("utf-8")
    )


def _knows(tokenizer: Any, token: str) -> bool:
    token_id = tokenizer.convert_tokens_to_ids(token)
    return isinstance(token_id, int) and token_id != tokenizer.unk_token_id


def ensure_chat_template(tokenizer: Any, choice: str = "auto") -> str:
    """Give `tokenizer` a chat template; return which one: `own`, `gemma` or the file's path.

    `auto`: the tokenizer's own, else Gemma's when the vocabulary has Gemma's turn tokens;
    `gemma`: Gemma's; anything else is a path to a Jinja template file.
    """
    if choice == "auto" and getattr(tokenizer, "chat_template", None):
        return "own"
    if choice in ("auto", "gemma"):
        if not (_knows(tokenizer, START_OF_TURN) and _knows(tokenizer, END_OF_TURN)):
            raise InputError(
                "the model's tokenizer has no chat template, and its vocabulary has no "
                f"{START_OF_TURN}/{END_OF_TURN} tokens for Gemma's: pass --chat-template FILE "
                "(a Jinja chat template written for this model)"
            )
        tokenizer.chat_template = gemma_template()
        return "gemma"
    path = Path(choice)
    try:
        tokenizer.chat_template = path.read_text("utf-8")
    except OSError as exc:
        raise InputError(
            f"--chat-template {choice}: cannot read it ({exc.strerror}); give 'auto', 'gemma' "
            "or a Jinja template file"
        ) from None
    return str(path)


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """The tokens that end a turn: EOS, and Gemma's <end_of_turn> when the vocabulary has it."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if _knows(tokenizer, END_OF_TURN):
        ids.append(int(tokenizer.convert_tokens_to_ids(END_OF_TURN)))
    return list(dict.fromkeys(ids))


@dataclass
class Encoder:
    """Renders and tokenises rows for one tokenizer, cutting them to `max_length` tokens."""

    tokenizer: Any
    max_length: int
    max_answer_length: int
    truncated_prompts: int = 0
    truncated_answers: int = 0

    def render(self, turns: Chat, *, generation_prompt: bool) -> str:
        text: str = self.tokenizer.apply_chat_template(
            turns, tokenize=False, add_generation_prompt=generation_prompt
        )
        return text

    def ids(self, text: str) -> list[int]:
        # The rendered template carries BOS itself, as the red-team target's prompt does.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_and_answers(self, prompt: Chat, answers: Sequence[str]) -> tuple[str, list[str]]:
        """The rendered prompt and each answer's continuation of it (with the end of turn)."""
        head = self.render(prompt, generation_prompt=True)
        tails = []
        for answer in answers:
            full = self.render(
                [*prompt, {"role": "assistant", "content": answer}], generation_prompt=False
            )
            if not full.startswith(head):
                raise InputError(
                    "the chat template renders a prompt differently once an answer follows it, "
                    "so the answer cannot be told from the prompt: use a template whose "
                    "generation prompt is a prefix of the answered conversation"
                )
            tails.append(full[len(head) :])
        return head, tails

    def fit(self, prompt_ids: list[int], answers: list[list[int]]) -> list[int]:
        """Cut answers to `max_answer_length` (in place) and the prompt from the left to fit."""
        for index, answer in enumerate(answers):
            if len(answer) > self.max_answer_length:
                answers[index] = answer[: self.max_answer_length]
                self.truncated_answers += 1
        room = self.max_length - max(len(a) for a in answers)
        if len(prompt_ids) <= room:
            return prompt_ids
        self.truncated_prompts += 1
        bos = self.tokenizer.bos_token_id
        head = prompt_ids[:1] if bos is not None and prompt_ids[:1] == [bos] else []
        return head + prompt_ids[len(prompt_ids) - (room - len(head)) :]

    def sft(self, example: Example) -> dict[str, list[int]]:
        """`input_ids` and `completion_mask` (1 on the answer: the only tokens with a loss)."""
        head, [tail] = self.prompt_and_answers(example.prompt, [example.answer])
        answers = [self.ids(tail)]
        prompt_ids = self.fit(self.ids(head), answers)
        return {
            "input_ids": prompt_ids + answers[0],
            "completion_mask": [0] * len(prompt_ids) + [1] * len(answers[0]),
        }

    def pair(self, pair: Pair) -> dict[str, list[int]]:
        """`prompt_ids`, `chosen_ids`, `rejected_ids`: TRL's tokenised preference row."""
        head, tails = self.prompt_and_answers(pair.prompt, [pair.chosen, pair.rejected])
        answers = [self.ids(tail) for tail in tails]
        prompt_ids = self.fit(self.ids(head), answers)
        return {"prompt_ids": prompt_ids, "chosen_ids": answers[0], "rejected_ids": answers[1]}

    def unpaired(self, row: Unpaired) -> dict[str, Any]:
        """`prompt_ids`, `completion_ids`, `label`: TRL's tokenised KTO row."""
        head, [tail] = self.prompt_and_answers(row.prompt, [row.answer])
        answers = [self.ids(tail)]
        prompt_ids = self.fit(self.ids(head), answers)
        return {"prompt_ids": prompt_ids, "completion_ids": answers[0], "label": row.label}
