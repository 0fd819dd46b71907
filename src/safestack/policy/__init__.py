"""The policy every stage reads: taxonomy, severity 0-7, thresholds, actions, framework mappings."""

from safestack.policy.loader import PolicyFile, load_policy, parse_policy, read_policy
from safestack.policy.model import (
    BANDS,
    CategoryPolicy,
    DetectorSpec,
    Policy,
    default_policy,
    default_policy_text,
)

__all__ = [
    "BANDS",
    "CategoryPolicy",
    "DetectorSpec",
    "Policy",
    "PolicyFile",
    "default_policy",
    "default_policy_text",
    "load_policy",
    "parse_policy",
    "read_policy",
]
