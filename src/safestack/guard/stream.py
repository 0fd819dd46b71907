"""Streaming output checks that neither leak nor wait for the whole response.

Text is released behind a bounded hold-back window: once `hold_back_chars` plus a step of
characters are pending, the pending text is judged together with `context_chars` of already
released text, and all but the last `hold_back_chars` are released. The step starts at
`release_step_chars` (the first text leaves early) and doubles up to `max_release_step_chars`
(a long answer costs few checks). Every character is judged and
leak-checked before it is released; canary and overlap checks run on every chunk, across chunk
boundaries. A violation ends the stream: what is held back is dropped, and `finish()` returns the
final event with the policy's message.

    stream = guard.stream(decision.context)
    for chunk in upstream:
        send(stream.feed(chunk))
        if stream.stopped:
            break
    end = stream.finish()          # send end.text, then end.message, then end.finish_reason
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from safestack.guard.decision import GuardContext, Reason, StreamEnd
from safestack.guard.leak import Leak
from safestack.guard.output import OutputCheck
from safestack.guard.redact import apply, redactions
from safestack.guard.scanning import Job
from safestack.records import Action, Verdict

_SENTENCE_END = re.compile(r"[.!?]\s+|\n")


class OutputStream:
    """The guarded release of one streamed response. Not shared between requests."""

    def __init__(self, check: OutputCheck, context: GuardContext):
        self._check = check
        self.context = context
        settings = check.settings.stream
        self.hold_back = settings.hold_back_chars
        self.step = settings.release_step_chars
        self.max_step = settings.max_release_step_chars
        self.context_chars = settings.context_chars
        self._leaks = check.leak_scanner(context)
        self._pending = ""
        self._tail = ""
        self._job: Job | None = None
        self._offset = 0  # where the pending text starts in the judged window
        self._received = 0
        self._released = 0
        self._action = Action.ALLOW
        self._reasons: list[Reason] = []
        self._scores: dict[str, float] = {}
        self._leaked = False
        self._checks = 0
        self._check_s = 0.0
        self._stop: tuple[Action, str] | None = None
        self._withheld = 0
        self._end: StreamEnd | None = None

    @property
    def stopped(self) -> bool:
        """True once a violation ended the stream (or it was finished): stop reading upstream."""
        return self._stop is not None or self._end is not None

    @property
    def released(self) -> int:
        return self._released

    # -- sync ----------------------------------------------------------------------------------
    def feed(self, chunk: str) -> str:
        """Take the next chunk; return the text now safe to send (often '')."""
        if not self._take(chunk) or len(self._pending) < self.hold_back + self.step:
            return ""
        return self._release(self._moderate(), final=False)

    def finish(self) -> StreamEnd:
        """End of the upstream response: check and release what is held back; the final event."""
        if self._end is not None:
            return self._end
        text = ""
        if self._finish_leaks():
            text = self._release(self._moderate(), final=True)
        return self._close(text)

    def run(self, chunks: Iterable[str]) -> Iterator[str]:
        """Guard an iterable of chunks; yields released text, the final event's text last.
        The final event is then `stream.end`."""
        for chunk in chunks:
            released = self.feed(chunk)
            if released:
                yield released
            if self.stopped:
                break
        end = self.finish()
        if end.text:
            yield end.text

    # -- async ---------------------------------------------------------------------------------
    async def afeed(self, chunk: str) -> str:
        """As `feed`; moderation runs in a worker thread so the event loop keeps serving."""
        if not self._take(chunk) or len(self._pending) < self.hold_back + self.step:
            return ""
        return self._release(await self._amoderate(), final=False)

    async def afinish(self) -> StreamEnd:
        if self._end is not None:
            return self._end
        text = ""
        if self._finish_leaks():
            text = self._release(await self._amoderate(), final=True)
        return self._close(text)

    async def arun(self, chunks: AsyncIterable[str]) -> AsyncIterator[str]:
        async for chunk in chunks:
            released = await self.afeed(chunk)
            if released:
                yield released
            if self.stopped:
                break
        end = await self.afinish()
        if end.text:
            yield end.text

    @property
    def end(self) -> StreamEnd | None:
        """The final event, once `finish()` has run."""
        return self._end

    # -- the steps -----------------------------------------------------------------------------
    def _take(self, chunk: str) -> bool:
        """Buffer a chunk and check it for leaks; False when the stream is (now) stopped."""
        if self.stopped:
            return False
        started = time.perf_counter()
        self._received += len(chunk)
        self._pending += chunk
        leak = self._leaks.feed(chunk)
        self._check_s += time.perf_counter() - started
        if leak is not None:
            self._on_leak(leak)
        return not self.stopped

    def _finish_leaks(self) -> bool:
        if self.stopped:
            return False
        leak = self._leaks.finish()
        if leak is not None:
            self._on_leak(leak)
        return not self.stopped

    def _window(self) -> Job | None:
        context = self._tail
        if len(context) >= self.context_chars:
            # Start at a sentence, as the detectors were trained on whole sentences.
            boundary = _SENTENCE_END.search(context)
            if boundary is not None and boundary.end() <= len(context) // 2:
                context = context[boundary.end() :]
        self._offset = len(context)
        self._job = self._check.job(context + self._pending, self.context.request)
        return self._job

    def _moderate(self) -> Verdict | None:
        job = self._window()
        if job is None:
            return None
        started = time.perf_counter()
        verdict = self._check.scanner.run([job])[0]
        self._timed(started)
        return verdict

    async def _amoderate(self) -> Verdict | None:
        job = self._window()
        if job is None:
            return None
        started = time.perf_counter()
        verdict = (await self._check.scanner.arun([job]))[0]
        self._timed(started)
        return verdict

    def _timed(self, started: float) -> None:
        self._checks += 1
        self._check_s += time.perf_counter() - started

    def _release(self, verdict: Verdict | None, *, final: bool) -> str:
        if verdict is not None and self._job is not None:
            result = self._check.assess(verdict, self._job)
            for category, score in verdict.category_scores.items():
                self._scores[category] = max(score, self._scores.get(category, 0.0))
            self._note(result.reasons)
            if result.action in (Action.BLOCK, Action.REDIRECT):
                replacement = self._check.replacement(
                    result.action, result.redirect_category, self.context.locale
                )
                message = (
                    replacement
                    if result.action is Action.REDIRECT
                    else self._check.settings.messages.stream_stopped
                )
                self._halt(result.action, message)
                return ""
            if result.action is Action.REDACT:
                spans = redactions(verdict, self._check.policy, offset=-self._offset)
                self._pending = apply(self._pending, spans)
            if result.action.rank > self._action.rank:
                self._action = result.action
        cut = len(self._pending) if final else self._cut()
        out, self._pending = self._pending[:cut], self._pending[cut:]
        if self.context_chars:
            self._tail = (self._tail + out)[-self.context_chars :]
        self._released += len(out)
        if out and not final:
            self.step = min(2 * self.step, self.max_step)
        return out

    def _cut(self) -> int:
        """Release all but the hold-back, ending at whitespace when one is in the second half, so
        that a word or an identifier is judged whole before any of it is released."""
        cut = len(self._pending) - self.hold_back
        space = max(self._pending.rfind(" ", 0, cut), self._pending.rfind("\n", 0, cut))
        return space + 1 if space + 1 >= cut // 2 else cut

    def _on_leak(self, leak: Leak) -> None:
        reason = self._check.leak_reason(leak)
        self._leaked = True
        self._note([reason])
        if reason.action.rank > Action.FLAG.rank:
            self._halt(reason.action, self._check.settings.messages.stream_stopped)

    def _note(self, reasons: list[Reason]) -> None:
        seen = {(r.check, r.category, r.action) for r in self._reasons}
        for reason in reasons:
            if (reason.check, reason.category, reason.action) not in seen:
                self._reasons.append(reason)
                seen.add((reason.check, reason.category, reason.action))

    def _halt(self, action: Action, message: str) -> None:
        self._stop = (action, message)
        self._withheld = len(self._pending)
        self._pending = ""

    def _close(self, text: str) -> StreamEnd:
        action, message = self._stop if self._stop is not None else (self._action, None)
        self._end = StreamEnd(
            request_id=self.context.request_id,
            policy=self._check.policy.ref,
            finish_reason="content_filter" if self._stop is not None else "stop",
            action=action,
            text="" if self._stop is not None else text,
            message=message,
            reasons=self._reasons,
            category_scores=dict(sorted(self._scores.items())),
            leaked=self._leaked,
            released_chars=self._released,
            withheld_chars=self._withheld,
            checks=self._checks,
            check_ms=round(self._check_s * 1000, 3),
        )
        return self._end
