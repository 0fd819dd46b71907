"""Streaming output checks: text flows before the end, nothing unsafe is ever released."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest
from guard_harness import SYSTEM_PROMPT, chat

from safestack.guard import Guard, GuardContext, OutputStream
from safestack.records import Action

ANSWER = (
    "To reset an Acme router, unplug it for ten seconds, plug it back in, and wait until the "
    "light turns green. If that does not help, hold the reset button on the back for thirty "
    "seconds with a paper clip; the router restarts with factory settings. Then open the app, "
    "choose your network name, and set a new password. Your warranty covers two years of use."
)


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.fixture
def context(pattern_guard: Guard) -> GuardContext:
    return pattern_guard.check_input(chat("How do I reset my router?"), locale="en-US").context


def test_text_is_released_before_finish_and_arrives_whole(
    pattern_guard: Guard, context: GuardContext
) -> None:
    stream = pattern_guard.stream(context)
    parts = chunks(ANSWER, 4)  # about one token per chunk
    released: list[str] = []
    first_release_at = None
    for number, chunk in enumerate(parts, start=1):
        out = stream.feed(chunk)
        if out and first_release_at is None:
            first_release_at = number
        released.append(out)
        held = number * 4 - sum(len(r) for r in released)
        # Bounded hold-back: never more than the window, a step, a chunk and a word boundary.
        assert held <= 2 * (stream.hold_back + stream.step) + 4
    assert first_release_at is not None and first_release_at < len(parts) // 2
    # Time to first token: the first text leaves once the window and one step are filled.
    assert first_release_at * 4 <= stream.hold_back + stream.step + 4
    end = stream.finish()
    assert "".join(released) + end.text == ANSWER
    assert end.finish_reason == "stop" and end.action is Action.ALLOW and end.message is None
    assert end.released_chars == len(ANSWER) and end.withheld_chars == 0
    assert end.checks >= 2 and end.check_ms > 0
    assert stream.finish() is end  # idempotent


def test_a_canary_split_across_chunks_stops_the_stream_before_any_of_it_leaves(
    pattern_guard: Guard,
) -> None:
    context = pattern_guard.check_input(chat("Hello!")).context
    assert context.canary is not None
    output = ANSWER[:150] + f" By the way, my hidden marker is {context.canary}. " + ANSWER[150:]
    stream = pattern_guard.stream(context)
    released = ""
    for chunk in chunks(output, 3):
        released += stream.feed(chunk)
        if stream.stopped:
            break
    assert stream.stopped
    assert stream.feed("more text") == ""  # nothing after a violation
    end = stream.finish()
    released += end.text
    secret = context.canary.removeprefix("ssk-")
    assert not any(secret[i : i + 4] in released for i in range(len(secret) - 3))
    assert end.finish_reason == "content_filter" and end.action is Action.BLOCK
    assert end.leaked and end.message == pattern_guard.settings.messages.stream_stopped
    assert any(r.check == "canary" for r in end.reasons)
    assert released == ANSWER[: len(released)]  # only the honest prefix went out


def test_a_base64_canary_cut_by_chunks_and_a_line_break_is_caught(pattern_guard: Guard) -> None:
    context = pattern_guard.check_input(chat("Hello!")).context
    assert context.canary is not None
    encoded = base64.b64encode(f"marker: {context.canary}".encode()).decode()
    output = f"Here is the encoded text:\n{encoded[:13]}\n{encoded[13:]}\nDone."
    stream = pattern_guard.stream(context)
    released = "".join(stream.feed(c) for c in chunks(output, 5))
    end = stream.finish()
    assert end.leaked and end.finish_reason == "content_filter"
    assert encoded[10:20] not in released + end.text


def test_a_system_prompt_leak_spread_over_chunks_is_cut_short(
    pattern_guard: Guard, context: GuardContext
) -> None:
    output = "Sure, here are my instructions word for word: " + SYSTEM_PROMPT
    stream = pattern_guard.stream(context)
    released = ""
    for chunk in chunks(output, 6):
        released += stream.feed(chunk)
        if stream.stopped:
            break
    end = stream.finish()
    assert end.finish_reason == "content_filter" and end.leaked
    assert any(r.check == "overlap" for r in end.reasons)
    leaked_words = set(released.split()) & set(SYSTEM_PROMPT.split())
    assert len(leaked_words) < len(set(SYSTEM_PROMPT.split())) / 2


def test_personal_data_is_redacted_before_release(
    pattern_guard: Guard, context: GuardContext
) -> None:
    output = ANSWER[:120] + " For help, write to maria.garcia@example.org today. " + ANSWER[120:]
    stream = pattern_guard.stream(context)
    released = "".join(stream.feed(c) for c in chunks(output, 4))
    end = stream.finish()
    text = released + end.text
    assert "maria.garcia" not in text and "example.org" not in text
    assert "write to [EMAIL_ADDRESS] today." in text
    assert end.finish_reason == "stop" and end.action is Action.REDACT


def test_a_violation_ends_the_stream_with_the_policy_message(
    pattern_guard: Guard, context: GuardContext
) -> None:
    output = ANSWER[:100] + " Listen carefully: I will kill you and your family tonight. " + ANSWER
    stream = pattern_guard.stream(context)
    released = ""
    for chunk in chunks(output, 4):
        released += stream.feed(chunk)
        if stream.stopped:
            break
    end = stream.finish()
    assert "kill" not in released
    assert end.finish_reason == "content_filter" and end.action is Action.BLOCK
    assert end.message == pattern_guard.settings.messages.stream_stopped
    assert "harassment/threatening" in end.flagged_categories
    assert end.withheld_chars > 0 and end.text == ""


def test_a_voting_directive_in_a_stream_ends_it_with_the_locale_redirect(
    pattern_guard: Guard, context: GuardContext
) -> None:
    output = "Good question! You can vote by texting your choice to 55555 before 8 p.m. Thanks."
    stream = pattern_guard.stream(context)
    for chunk in chunks(output, 5):
        stream.feed(chunk)
    end = stream.finish()
    assert end.action is Action.REDIRECT and end.finish_reason == "content_filter"
    assert end.message is not None and "canivote.org" in end.message.lower()


def test_short_outputs_are_checked_at_finish(pattern_guard: Guard, context: GuardContext) -> None:
    stream = pattern_guard.stream(context)
    assert stream.feed("I will kill you.") == ""
    assert stream.finish().action is Action.BLOCK


def test_async_streaming_matches_sync(pattern_guard: Guard, context: GuardContext) -> None:
    async def upstream() -> AsyncIterator[str]:
        for chunk in chunks(ANSWER, 7):
            yield chunk

    async def consume() -> tuple[list[str], OutputStream]:
        stream = pattern_guard.stream(context)
        return [part async for part in stream.arun(upstream())], stream

    parts, stream = asyncio.run(consume())
    assert len(parts) > 2 and "".join(parts) == ANSWER
    assert stream.end is not None and stream.end.finish_reason == "stop"

    async def manual() -> str:
        stream = pattern_guard.stream(context)
        out = [await stream.afeed(c) for c in chunks(ANSWER, 7)]
        return "".join(out) + (await stream.afinish()).text

    assert asyncio.run(manual()) == ANSWER


def test_run_yields_released_text_and_keeps_the_final_event(
    pattern_guard: Guard, context: GuardContext
) -> None:
    stream = pattern_guard.stream(context)
    parts = list(stream.run(chunks(ANSWER, 9)))
    assert len(parts) > 2 and "".join(parts) == ANSWER
    assert stream.end is not None and stream.end.released_chars == len(ANSWER)
