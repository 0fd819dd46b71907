"""The output check: what the guard does with a model's answer, whole (`Guard.check_output`) or
streamed (`OutputStream`). One object both use: slicing into detector jobs, assessing a verdict,
the leak checks and their reason, and the text answered instead of a blocked one.
"""

from __future__ import annotations

import time

from safestack.guard.assessment import Assessment, assess
from safestack.guard.decision import GuardContext, OutputDecision, Reason
from safestack.guard.elections import redirect_for, redirect_text
from safestack.guard.leak import Leak, LeakScanner
from safestack.guard.redact import apply, redactions
from safestack.guard.scanning import Job, Scanner
from safestack.policy import Policy
from safestack.policy.model import GuardSettings
from safestack.records import Action, Trust, Verdict

FORWARDED = (Action.ALLOW, Action.FLAG, Action.REDACT)


def replacement_text(
    settings: GuardSettings, action: Action, category: str | None, locale: str | None
) -> str:
    """The text answered instead of the model's, for a block or a redirect."""
    if action is Action.REDIRECT:
        if category == "elections":
            return redirect_text(redirect_for(settings.elections, locale)[1])
        return settings.messages.redirect
    return settings.messages.block


class OutputCheck:
    """Checks model output under one policy with the guard's scanner. Thread-safe, shared."""

    def __init__(self, policy: Policy, scanner: Scanner):
        self.policy = policy
        self.settings = policy.guard
        self.scanner = scanner

    def job(self, text: str, request: str | None = None) -> Job | None:
        """One detector job over `text` (answering `request`), or None when there is nothing."""
        sample = self.scanner.prepare("output", text, field="output", request=request)
        return None if sample is None else Job("output", sample)

    def jobs(self, text: str, request: str | None = None) -> list[Job]:
        """Jobs over a complete output; a very long output is judged in slices."""
        limit = self.policy.judge.max_input_chars
        found = (
            self.job(text[start : start + limit], request) for start in range(0, len(text), limit)
        )
        return [job for job in found if job is not None]

    def assess(self, verdict: Verdict, job: Job) -> Assessment:
        return assess(
            verdict, self.policy, scope="output", trust=Trust.USER, texts=[job.sample.normalised]
        )

    def leak_scanner(self, context: GuardContext) -> LeakScanner:
        return LeakScanner(context.canary, context.protected, self.settings.overlap)

    def leak_reason(self, leak: Leak) -> Reason:
        action = self.policy.action("system-prompt-extraction", leak.severity)
        if action in (Action.REDACT, Action.REDIRECT):
            action = Action.BLOCK  # a leak cannot be redacted or redirected
        return Reason(
            check="canary" if leak.check == "canary" else "overlap",
            category="system-prompt-extraction",
            action=action,
            scope="output",
            detector=f"guard.{leak.check}",
            detail=leak.detail,
        )

    def replacement(self, action: Action, category: str | None, locale: str | None) -> str:
        return replacement_text(self.settings, action, category, locale)

    def check(self, context: GuardContext, text: str) -> OutputDecision:
        started = time.perf_counter()
        jobs = self.jobs(text, context.request)
        return self.decide(context, text, jobs, self.scanner.run(jobs), started)

    async def acheck(self, context: GuardContext, text: str) -> OutputDecision:
        started = time.perf_counter()
        jobs = self.jobs(text, context.request)
        return self.decide(context, text, jobs, await self.scanner.arun(jobs), started)

    def decide(
        self,
        context: GuardContext,
        text: str,
        jobs: list[Job],
        verdicts: list[Verdict],
        started: float,
    ) -> OutputDecision:
        limit = self.policy.judge.max_input_chars
        scanner = self.leak_scanner(context)
        leak = scanner.feed(text) or scanner.finish()
        action = Action.ALLOW
        reasons: list[Reason] = []
        redirect_category = None
        spans = []
        for number, (job, verdict) in enumerate(zip(jobs, verdicts, strict=True)):
            result = self.assess(verdict, job)
            reasons.extend(result.reasons)
            if result.action.rank > action.rank:
                action = result.action
            redirect_category = redirect_category or result.redirect_category
            if result.action is Action.REDACT:
                spans.extend(redactions(verdict, self.policy, offset=number * limit))
        if leak is not None:
            reason = self.leak_reason(leak)
            reasons.append(reason)
            if reason.action.rank > action.rank:
                action = reason.action
        if action is Action.REDACT:
            out = apply(text, spans)
        elif action in FORWARDED:
            out = text
        else:
            out = self.replacement(action, redirect_category, context.locale)
        strictest = max(verdicts, key=lambda v: v.action.rank, default=None)
        return OutputDecision(
            request_id=context.request_id,
            policy=self.policy.ref,
            action=action,
            text=out,
            verdict=strictest,
            reasons=reasons,
            leaked=leak is not None,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
        )
