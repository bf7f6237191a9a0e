"""The ``edufed`` command line."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from urllib.parse import urlsplit

from node.backup import add_backup_commands
from node.bootstrap import ADMIN_TOKEN_FILE, init_node
from node.config import ALLOW_PRIVATE_ENV, NodeConfig, load, save, with_server
from node.credentials.wallet import add_wallet_commands
from node.errors import BadRequest, EduFedError
from node.net.addresses import is_public_address
from node.trust.keyring import KeyRing


def cmd_init(args: argparse.Namespace) -> int:
    config, token = asyncio.run(
        init_node(
            args.data,
            base_url=args.base_url,
            name=args.name,
            country=args.country,
            city=args.city,
            languages=tuple(args.language or ["en"]),
            database_url=args.database_url,
            allow_private_networks=args.allow_private_networks,
        )
    )
    print(f"Initialised EduFed node {config.name!r} at {config.base_url} in {config.data_dir}")
    print(f"Admin token (shown once; also saved in {config.data_dir / ADMIN_TOKEN_FILE}, mode 0600):")
    print(token)
    return 0


PRIVATE_FLAG_HINT = f"add --allow-private-networks (or set {ALLOW_PRIVATE_ENV}=1) to reach it"


def private_networks(args: argparse.Namespace) -> bool:
    """``--allow-private-networks`` or ``EDUFED_ALLOW_PRIVATE_NETWORKS=1``: may this command reach loopback and
    private addresses?"""
    return bool(getattr(args, "allow_private_networks", False)) or os.environ.get(ALLOW_PRIVATE_ENV) == "1"


def load_for_fetching(args: argparse.Namespace) -> NodeConfig:
    """The node's config, with private networks allowed when this command was told so."""
    config = load(args.data)
    return replace(config, allow_private_networks=True) if private_networks(args) else config


def refuse_private_target(url: str, *, allowed: bool) -> None:
    """Refuse at once a URL given on the command line that is not an http(s) URL or whose host is (or resolves
    only to) a loopback or private address, naming the flag that allows it; the outbound client would refuse it
    later, less clearly (``peer add`` would store a peer that fails for ever)."""
    parts = urlsplit(url)
    try:
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        host = None
    if parts.scheme not in ("http", "https") or not host:
        raise BadRequest("Not an http(s) URL", detail=url, field="url")
    if allowed:
        return
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return  # not resolvable now: the running node's own checks report it
    refused = sorted(a for a in addresses if not is_public_address(ipaddress.ip_address(a.split("%", 1)[0])))
    if refused and len(refused) == len(addresses):
        raise BadRequest("A loopback or private address", detail=f"{url} is {', '.join(refused)}; {PRIVATE_FLAG_HINT}",
                         field="url")


def cmd_serve(args: argparse.Namespace) -> int:
    from node.app import serve

    config = with_server(load(args.data), args.host, args.port)
    asyncio.run(serve(config, ready=lambda where: print(where, flush=True)))
    return 0


def cmd_key_rotate(args: argparse.Namespace) -> int:
    config = load(args.data)
    entry = KeyRing(config.keys_dir).rotate()
    print(f"New signing key {entry.public_multibase}; earlier keys stay in the DID document as retired.")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from node.catalog.importer import run_import

    config = load_for_fetching(args)
    if args.file.startswith(("http://", "https://")):  # an OAI-PMH base URL: harvest it
        from node.oai.harvest import run_harvest

        refuse_private_target(args.file, allowed=config.private_networks_allowed)
        return asyncio.run(run_harvest(config, args.file, progress=not args.quiet, report_path=args.report,
                                       strict=args.strict))
    return asyncio.run(run_import(config, Path(args.file), report_path=args.report, progress=not args.quiet,
                                  strict=args.strict))


def cmd_peer(args: argparse.Namespace) -> int:
    from node.federation.cli import run_peer_command

    config = load_for_fetching(args)
    if args.peer_command == "add":
        refuse_private_target(args.url, allowed=config.private_networks_allowed)
    return asyncio.run(run_peer_command(config, args.peer_command, args.url))


def cmd_policy(args: argparse.Namespace) -> int:
    """Edit the [federation] policy in edufed.toml; a running node applies it on its next request."""
    config = load(args.data)
    policy = config.federation

    def edited(values: tuple[str, ...], add: list[str] | None, drop: list[str] | None) -> tuple[str, ...]:
        hosts = [h for h in values if h not in (drop or [])] + [h for h in (add or []) if h not in values]
        return tuple(host_of_argument(h) for h in hosts)

    changes: dict[str, object] = {
        "deny": edited(policy.deny, args.deny, args.undeny),
        "allow": edited(policy.allow, args.allow, args.disallow),
    }
    if args.auto_follow is not None:
        changes["auto_follow"] = args.auto_follow == "yes"
    for name in ("max_peers", "max_hops"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    config = replace(config, federation=replace(policy, **changes))  # type: ignore[arg-type]
    save(config)
    for key, value in asdict(config.federation).items():
        print(f"{key} = {list(value) if isinstance(value, tuple) else value}")
    return 0


def host_of_argument(value: str) -> str:
    """``host[:port]`` from a host or a base URL, as policies name peers."""
    return urlsplit(value).netloc if "://" in value else value


def cmd_sync(args: argparse.Namespace) -> int:
    from node.federation.cli import run_sync

    return asyncio.run(run_sync(load_for_fetching(args), progress=not args.quiet))


def cmd_issue(args: argparse.Namespace) -> int:
    from node.credentials.cli import run_issue

    return asyncio.run(run_issue(load(args.data), args.subject, args.name, args.credits, args.system))


def cmd_verify(args: argparse.Namespace) -> int:
    from node.credentials.cli import run_verify

    return asyncio.run(run_verify(args.file, challenge=args.challenge, domain=args.domain,
                                  allow_private=private_networks(args)))


def cmd_conformance(args: argparse.Namespace) -> int:
    from node.conformance.cli import cmd_conformance as run_conformance

    refuse_private_target(args.url, allowed=private_networks(args))
    return run_conformance(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from node.demo import run_demo

    return run_demo(args.dir, args.base_port)


def add_private_networks_flag(parser: argparse.ArgumentParser, purpose: str) -> None:
    parser.add_argument("--allow-private-networks", action="store_true",
                        help=f"{purpose}; also {ALLOW_PRIVATE_ENV}=1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edufed", description="EduFed node: a federated education catalog.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="create a node's data folder, key, database and admin token")
    init.add_argument("--data", type=Path, required=True, help="data folder to create")
    init.add_argument("--base-url", required=True, help="public origin of the node, e.g. https://learn.example.org")
    init.add_argument("--name", required=True, help="the node's display name")
    init.add_argument("--country", help="ISO 3166-1 alpha-2 country code")
    init.add_argument("--city")
    init.add_argument("--language", action="append", help="catalog language (BCP 47); repeatable")
    init.add_argument("--database-url", help="default: SQLite inside the data folder")
    init.add_argument("--allow-private-networks", action="store_true",
                      help="let the node contact loopback and private addresses (tests, demos)")
    init.set_defaults(func=cmd_init)

    serve = commands.add_parser("serve", help="serve a node")
    serve.add_argument("--data", type=Path, required=True)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    key = commands.add_parser("key", help="manage signing keys").add_subparsers(dest="key_command", required=True)
    rotate = key.add_parser("rotate", help="add a new signing key; old keys stay listed so old proofs verify")
    rotate.add_argument("--data", type=Path, required=True)
    rotate.set_defaults(func=cmd_key_rotate)

    imp = commands.add_parser("import", help="publish the records of a CSV or JSON-LD file or an OAI-PMH "
                              "repository; refused rows are reported and the others imported")
    imp.add_argument("--data", type=Path, required=True)
    imp.add_argument("file", help="a .csv/.json/.jsonld file, or an OAI-PMH base URL (http:// or https://)")
    imp.add_argument("--report", type=Path, help="write the refused rows as JSON to this file")
    imp.add_argument("--strict", action="store_true", help="all or nothing: import nothing if any row is refused")
    imp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_private_networks_flag(imp, "harvest an OAI-PMH repository on a loopback or private address")
    imp.set_defaults(func=cmd_import)

    peer = commands.add_parser("peer", help="the peers this node federates with")
    peer_commands = peer.add_subparsers(dest="peer_command", required=True)
    for name, text in (("add", "know a peer (the running node checks it, gossips and follows per policy)"),
                       ("remove", "forget a peer and stop following it"), ("list", "peers with state, lag, errors")):
        command = peer_commands.add_parser(name, help=text)
        command.add_argument("--data", type=Path, required=True)
        if name != "list":
            command.add_argument("url", help="the peer's base URL")
        if name == "add":
            add_private_networks_flag(command, "add a peer on a loopback or private address (local demos)")
        command.set_defaults(func=cmd_peer, url=None)

    policy = commands.add_parser("policy", help="show or change whom this node federates with")
    policy.add_argument("--data", type=Path, required=True)
    for flag, text in (("--deny", "refuse this host (repeatable)"), ("--undeny", "take a host off the deny-list"),
                       ("--allow", "admit only allow-listed hosts (repeatable)"),
                       ("--disallow", "take a host off the allow-list")):
        policy.add_argument(flag, action="append", metavar="HOST", help=text)
    policy.add_argument("--auto-follow", choices=("yes", "no"))
    policy.add_argument("--max-peers", type=int)
    policy.add_argument("--max-hops", type=int)
    policy.set_defaults(func=cmd_policy)

    sync = commands.add_parser("sync", help="pull now from every followed peer (the node also does it on a schedule)")
    sync.add_argument("--data", type=Path, required=True)
    sync.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_private_networks_flag(sync, "pull from peers on loopback and private addresses (local demos)")
    sync.set_defaults(func=cmd_sync)

    issue = commands.add_parser("issue", help="issue an Open Badges 3.0 achievement credential to a learner's DID")
    issue.add_argument("--data", type=Path, required=True)
    issue.add_argument("--subject", required=True, help="the learner's DID (e.g. from `edufed wallet did`)")
    issue.add_argument("--name", required=True, help="the achievement, e.g. a course name")
    issue.add_argument("--credits", help="credits earned, a decimal number")
    issue.add_argument("--system", help="credit system notation or IRI (default ECTS)")
    issue.set_defaults(func=cmd_issue)

    verify = commands.add_parser("verify", help="verify a credential or presentation file; exit 1 if it fails")
    verify.add_argument("file", type=Path)
    verify.add_argument("--challenge", help="the challenge a presentation must carry")
    verify.add_argument("--domain", help="the domain a presentation must carry")
    add_private_networks_flag(verify, "resolve issuers on loopback and private addresses (local demos)")
    verify.set_defaults(func=cmd_verify)

    add_wallet_commands(commands)
    add_backup_commands(commands)

    conformance = commands.add_parser("conformance", help="check the node at URL (any implementation) against "
                                      "protocol_spec/; exit 1 when a MUST fails")
    conformance.add_argument("url", help="the node's base URL (an origin, e.g. https://learn.example.org)")
    add_private_networks_flag(conformance, "let the checker reach loopback and private addresses (local nodes, CI)")
    conformance.add_argument("--json", action="store_true", help="print the report as JSON")
    conformance.add_argument("--records", type=int, default=10, help="how many records to sample (default 10)")
    conformance.add_argument("-q", "--quiet", action="store_true",
                             help="show evidence only for checks that did not pass")
    conformance.set_defaults(func=cmd_conformance)

    demo = commands.add_parser("demo", help="run three city nodes with sample catalogs on loopback")
    demo.add_argument("--dir", type=Path, default=Path("demo-data"), help="where the demo nodes keep their data")
    demo.add_argument("--base-port", type=int, default=8001, help="first of three consecutive ports")
    demo.set_defaults(func=cmd_demo)
    return parser


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, for log collectors (EDUFED_LOG_FORMAT=json)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, verbose: bool) -> None:
    handler = logging.StreamHandler()
    if os.environ.get("EDUFED_LOG_FORMAT") == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(verbose=args.verbose)
    try:
        return int(args.func(args))
    except EduFedError as error:
        where = f" [{error.field}]" if error.field else ""
        print(f"edufed: {error.title}{where}" + (f": {error.detail}" if error.detail else ""), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
