"""Corpus filters: each small, each with its own reason codes and thresholds from the policy."""
