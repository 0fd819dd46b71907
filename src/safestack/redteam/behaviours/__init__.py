"""What to ask: behaviours (harmful objectives and benign look-alikes) from sources that ship offline.

The interface and registry are in `behaviour.py`; the built-in sets in `behaviour_sets.py`.
"""

from safestack.redteam.behaviours.behaviour import (
    Behaviour,
    BehaviourSet,
    BehaviourSource,
    SourceOptions,
    behaviour_source,
    behaviour_sources,
)

__all__ = [
    "Behaviour",
    "BehaviourSet",
    "BehaviourSource",
    "SourceOptions",
    "behaviour_source",
    "behaviour_sources",
]
