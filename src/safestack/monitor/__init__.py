"""Abuse monitoring over the gateway's audit log: who the requests are for, per-account signals,
rules, privacy-preserving clusters and reports, and the enforcement decisions (the strike ladder)
the gateway obeys (docs/monitor.md, docs/monitor-enforcement.md)."""
