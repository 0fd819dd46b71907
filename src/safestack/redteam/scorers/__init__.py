"""How to judge it: scorers read an Attempt and return a Score (refusal, severity, leak, ...).

The interface and registry are in `scorer.py`; each built-in scorer has its own module.
"""

from safestack.redteam.scorers.scorer import Scorer, ScorerOptions, scorer, scorers

__all__ = ["Scorer", "ScorerOptions", "scorer", "scorers"]
