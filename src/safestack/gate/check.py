"""The release check: may exactly this model version ship under the current framework?

`check_release` passes only when the decision log verifies, the model version's evidence is
unchanged and not stale, the framework's deploy rule holds, and the newest unreversed leadership
decision on this model version and this framework file allows deployment of this scorecard.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from safestack.errors import GateError
from safestack.gate.decisions import ALLOWS_DEPLOY, read_log, standing_decision, verify_entries
from safestack.gate.framework import Framework
from safestack.gate.scorecard import Scorecard, assess_model
from safestack.store import Store


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    passed: bool
    model: str
    version: str | None
    framework: str
    reasons: list[str]
    decision: int | None = None
    scorecard_hash: str | None = None


def check_release(
    store: Store, framework: Framework, model: str, version: str | None = None
) -> CheckResult:
    def fail(
        *reasons: str, scorecard: Scorecard | None = None, decision: int | None = None
    ) -> CheckResult:
        return CheckResult(
            passed=False,
            model=model,
            version=scorecard.version if scorecard else version,
            framework=framework.ref,
            reasons=list(reasons),
            decision=decision,
            scorecard_hash=scorecard.digest() if scorecard else None,
        )

    entries = read_log(store)
    verification = verify_entries(entries, store.gate.signers())
    if not verification.ok:
        return fail(f"the decision log does not verify: {verification.problem}")
    try:
        scorecard = assess_model(store, framework, model, version)
    except GateError as exc:
        return fail(str(exc))
    digest = scorecard.digest()
    reasons = []
    if scorecard.stale:
        reasons += [f"stale evidence: {s}" for s in scorecard.stale]
    if not scorecard.deploy.holds:
        reasons.append(
            f"deploy rule '{scorecard.deploy.rule}' does not hold: {scorecard.deploy.reason}"
        )
    decision = standing_decision(entries, framework, scorecard.model, scorecard.version)
    if decision is None:
        reasons.append(
            f"no unreversed decision on {scorecard.model_version_id} under {framework.ref} "
            f"(framework digest {framework.digest()[:12]})"
        )
    else:
        if decision.outcome not in ALLOWS_DEPLOY:
            reasons.append(f"decision {decision.seq} by {decision.author} is '{decision.outcome}'")
        if decision.scorecard_hash != digest:
            reasons.append(
                f"decision {decision.seq} was made on scorecard {decision.scorecard_hash[:12]}, "
                f"the evidence now gives {digest[:12]}: evidence changed since the decision"
            )
    if reasons:
        return fail(*reasons, scorecard=scorecard, decision=decision.seq if decision else None)
    assert decision is not None
    return CheckResult(
        passed=True,
        model=scorecard.model,
        version=scorecard.version,
        framework=framework.ref,
        reasons=[
            f"decision {decision.seq} by {decision.author} ({decision.outcome}) on scorecard "
            f"{digest[:12]}; post-mitigation {scorecard.overall_post}"
        ],
        decision=decision.seq,
        scorecard_hash=digest,
    )
