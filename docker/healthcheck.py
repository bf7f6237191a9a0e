"""Container health check: exit 0 when the node on this container answers ``/healthz`` (``--ready``:
``/readyz``, which also needs the database). Standard library only, so it runs in the slim image as is.

    python healthcheck.py [--ready] [--url URL]

The default URL is ``http://127.0.0.1:$EDUFED_PORT/healthz`` (port 8000).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request


def check(url: str, timeout: float) -> tuple[bool, str]:
    """(healthy, reason): a 200 whose JSON says ``ok`` or ``ready``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read(4096) or b"{}")
            healthy = response.status == 200 and body.get("status") in ("ok", "ready")
            return healthy, f"{response.status} {body.get('status')}"
    except urllib.error.HTTPError as error:
        return False, f"{error.code} {error.reason}"
    except (OSError, ValueError) as error:
        return False, f"{type(error).__name__}: {error}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready", action="store_true", help="check /readyz (database reachable) instead")
    parser.add_argument("--url", help="the URL to check")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    port = os.environ.get("EDUFED_PORT", "8000")
    url = args.url or f"http://127.0.0.1:{port}/{'readyz' if args.ready else 'healthz'}"
    healthy, reason = check(url, args.timeout)
    print(f"{url}: {reason}", file=sys.stderr if not healthy else sys.stdout)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
