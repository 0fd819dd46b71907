"""The preparedness gate: framework files, scorecards from pinned evidence, signed decisions, cards.

`framework` reads the lab-style framework files (thresholds are `query` queries over evidence
metrics); `evidence` pins red-team runs and imported evaluations by id and content hash;
`scorecard.assess` scores a model version; `decisions` keeps the hash-chained, Ed25519-signed log
of reviews and decisions; `check` is what a release pipeline runs; `card` writes the system card.
Every public function returns pydantic records, so the CLI and a web page call the same code.
"""
