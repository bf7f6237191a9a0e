"""``edufed conformance URL``: run every check against a node and print the report.

Exit status: 0 when no MUST check failed, 1 when one did, 2 when URL is not an origin. Also runnable as
``python -m node.conformance.cli URL`` (the same arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from node.config import ALLOW_PRIVATE_ENV
from node.conformance.checks import Probe, run_checks
from node.conformance.report import exit_code, to_json, to_text
from node.net.client import FetchPolicy, SafeClient

# Contexts such as schema.org are larger than a federation answer; the checker reads them whole.
MAX_BYTES = 8 * 1024 * 1024


async def run_conformance(url: str, *, allow_private: bool = False, as_json: bool = False,
                          max_records: int = 10, all_evidence: bool = True) -> int:
    """Check the node at ``url``, print the report on stdout, return the exit status."""
    policy = FetchPolicy(allow_private=allow_private, max_bytes=MAX_BYTES, user_agent="EduFed-conformance/0.1")
    async with SafeClient(policy) as client:
        try:
            probe = Probe(url, client, max_records=max_records)
        except ValueError as exc:
            print(f"edufed conformance: {exc}", file=sys.stderr)
            return 2
        results = await run_checks(probe)
    print(to_json(results, probe.base) if as_json else to_text(results, probe.base, all_evidence=all_evidence))
    return exit_code(results)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="the node's base URL (an origin, e.g. https://learn.example.org)")
    parser.add_argument("--allow-private-networks", action="store_true",
                        help="let the checker reach loopback and private addresses (local nodes, CI)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--records", type=int, default=10, help="how many records to sample (default 10)")
    parser.add_argument("-q", "--quiet", action="store_true", help="show evidence only for checks that did not pass")


def cmd_conformance(args: argparse.Namespace) -> int:
    allow_private = args.allow_private_networks or os.environ.get(ALLOW_PRIVATE_ENV) == "1"
    return asyncio.run(run_conformance(args.url, allow_private=allow_private, as_json=args.json,
                                       max_records=args.records, all_evidence=not args.quiet))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edufed conformance", description=__doc__)
    add_arguments(parser)
    return cmd_conformance(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
