"""READ/WRITE policies: pure decisions over an explicit state.

A policy sees a :class:`PolicyView` (the source read so far, what is committed, the model's
candidate continuation) and returns :class:`Read` or :class:`Write`. Models are never looked up
here; the translator computes the candidate only when :meth:`Policy.wants_candidate` asks.
"""

from simulinterp.policy.base import (
    CandidateUnit,
    Policy,
    PolicyView,
    Read,
    Write,
    policy_stop_strings,
)
from simulinterp.policy.registry import POLICIES, make_policy

__all__ = [
    "POLICIES",
    "CandidateUnit",
    "Policy",
    "PolicyView",
    "Read",
    "Write",
    "make_policy",
    "policy_stop_strings",
]
