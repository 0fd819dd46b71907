"""How to deliver it, part two: attacks turn behaviours into probes and run them against a target.

The interface and registry are in `attack.py`; the built-ins in `single_turn.py`, `injection.py`
and `multi_turn.py`.
"""

from safestack.redteam.attacks.attack import (
    Attack,
    AttackContext,
    AttackOptions,
    Probe,
    Transcript,
    attack,
    attacks,
)

__all__ = ["Attack", "AttackContext", "AttackOptions", "Probe", "Transcript", "attack", "attacks"]
