"""Abuse monitoring over the audit log: per-account signals, rules, strikes, clusters, reports."""
