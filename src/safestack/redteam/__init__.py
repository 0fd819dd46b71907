"""Red-teaming and automated safety evaluation.

Four independent axes, each a registry: what to ask (`behaviours`), how to deliver it (`converters`,
`attacks` incl. multi-turn), how to judge it (`scorers`), which target (`safestack.models`). A
`campaign` picks from each; the `runner` writes one Attempt per interaction; `metrics` and `report`
read them back.
"""
