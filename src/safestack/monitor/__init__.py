"""Abuse monitoring over the gateway's audit log: who the requests are for, signals and rules that
find accounts pushing against the policy, and the enforcement decisions (the strike ladder) the
gateway obeys (docs/monitor.md, docs/monitor-enforcement.md)."""
