"""``edufed conformance URL``: check any node against ``protocol_spec/``, requirement by requirement.

The checker only reads public endpoints (plus refused writes: an unsigned inbox POST, a token-less publish),
goes through the guarded :class:`~node.net.client.SafeClient`, and reports every check as pass,
fail or not applicable with the evidence it saw (URL fetched, value seen against the value expected).
"""

from node.conformance.checks import CHECKS, Check, CheckResult, Probe, run_checks

__all__ = ["CHECKS", "Check", "CheckResult", "Probe", "run_checks"]
