"""A command-line holder wallet: a ``did:key``, stored credentials, and holder-signed presentations.

Why it exists: a learner needs somewhere to keep credentials and a key to prove they are the holder when
presenting them (a VerifiablePresentation signed for one verifier's ``challenge`` and ``domain``, so it
cannot be replayed elsewhere). Any standards-following wallet will do; this one keeps everything in a folder::

    ~/.edufed-wallet/           (mode 0700; ``--wallet DIR`` or $EDUFED_WALLET elsewhere)
        key.pem                 Ed25519 private key, PKCS#8 PEM, mode 0600
        did.txt                 the holder's did:key (derived from key.pem; written for people to read)
        credentials/<sha256 of the credential id>.json

The holder DID is ``did:key:z6Mk…`` and its verification method ``did:key:z6Mk…#z6Mk…``: no network and no
registry are needed for anyone to check the holder's signature.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.credentials.datamodel import DataModelError
from node.credentials.datamodel import check_credential as check_data_model
from node.errors import Conflict, NotFound, Unprocessable
from node.ld.contexts import CREDENTIALS_V1_CONTEXT, CREDENTIALS_V2_CONTEXT
from node.trust.multikey import Ed25519Key
from node.trust.proofs import sign

WALLET_ENV = "EDUFED_WALLET"
DEFAULT_WALLET = "~/.edufed-wallet"
KEY_FILE = "key.pem"
DID_FILE = "did.txt"
CREDENTIALS_DIR = "credentials"
MAX_CREDENTIAL_BYTES = 1024 * 1024  # a credential is a few KiB; refuse to read a huge file into memory


class WalletError(Unprocessable):
    """The wallet folder is missing, not initialised, or damaged."""

    code = "wallet"


class NotACredential(Unprocessable):
    """A file or document that is not a VC 2.0 verifiable credential."""

    code = "not-a-credential"


def default_wallet_path() -> Path:
    """``$EDUFED_WALLET`` or ``~/.edufed-wallet``."""
    return Path(os.environ.get(WALLET_ENV) or DEFAULT_WALLET).expanduser()


def _write_private(path: Path, data: bytes, *, exclusive: bool) -> None:
    """Write ``path`` readable by its owner only: created 0600 before any byte goes in; replaced atomically."""
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    _write_private(temporary, data, exclusive=True)
    os.replace(temporary, path)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _id_of(value: Any) -> str | None:
    """``value`` if it is a string, else its ``id`` (issuer and subject may be objects)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def check_credential(document: Any) -> dict[str, Any]:
    """``document`` if it is a VC 2.0 (or VC 1.1, as older wallets hold them) credential with a proof;
    :class:`NotACredential` naming the field if not."""
    if not isinstance(document, dict):
        raise NotACredential("Not a verifiable credential", detail="expected a JSON object")
    contexts = _as_list(document.get("@context"))
    if not contexts or contexts[0] not in (CREDENTIALS_V2_CONTEXT, CREDENTIALS_V1_CONTEXT):
        raise NotACredential("Not a VC 2.0 (or VC 1.1) credential", field="@context",
                             detail=f"the first @context must be {CREDENTIALS_V2_CONTEXT}")
    if "VerifiableCredential" not in _as_list(document.get("type")):
        raise NotACredential("Not a verifiable credential", field="type",
                             detail="type must include VerifiableCredential")
    if _id_of(document.get("issuer")) is None:
        raise NotACredential("Credential has no issuer", field="issuer")
    if not isinstance(document.get("credentialSubject"), dict | list):
        raise NotACredential("Credential has no credentialSubject", field="credentialSubject")
    if not all(isinstance(p, dict) for p in _as_list(document.get("proof"))) or not document.get("proof"):
        raise NotACredential("Credential is not signed", field="proof",
                             detail="a wallet keeps verifiable credentials: one with a proof")
    try:  # the rest of the data model, as a verifier will check it
        check_data_model(document, expand_terms=False)
    except DataModelError as error:
        raise NotACredential(error.title, field=error.field, detail=error.detail) from None
    return document


def _file_name(document: dict[str, Any]) -> str:
    """``<sha256 of the id>.json``; a credential without an id is named by the hash of its content."""
    credential_id = document.get("id")
    key = credential_id if isinstance(credential_id, str) else json.dumps(document, sort_keys=True)
    return hashlib.sha256(key.encode("utf-8")).hexdigest() + ".json"


def credential_name(document: dict[str, Any]) -> str:
    """A display name: the credential's ``name``, else its achievement's (Open Badges 3.0), else ``-``."""
    candidates: list[Any] = [document.get("name")]
    for subject in _as_list(document.get("credentialSubject")):
        if isinstance(subject, dict) and isinstance(subject.get("achievement"), dict):
            candidates.append(subject["achievement"].get("name"))
    for name in candidates:
        if isinstance(name, str) and name:
            return name
        if isinstance(name, dict) and isinstance(name.get("@value"), str):
            return str(name["@value"])
        if isinstance(name, list) and name and isinstance(name[0], dict) and isinstance(name[0].get("@value"), str):
            return str(name[0]["@value"])
    return "-"


class Wallet:
    """A wallet folder. Nothing is read until used, so ``Wallet(path)`` never fails."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._key: Ed25519Key | None = None

    @property
    def key_file(self) -> Path:
        return self.path / KEY_FILE

    @property
    def credentials_dir(self) -> Path:
        return self.path / CREDENTIALS_DIR

    def exists(self) -> bool:
        return self.key_file.is_file()

    def init(self) -> str:
        """Make the key, ``did.txt`` and ``credentials/``; returns the DID. Refuses to replace an existing key."""
        if self.key_file.exists():
            raise Conflict("Wallet already initialised", detail=f"{self.key_file} exists; it is never replaced")
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519Key.generate()
        try:
            _write_private(self.key_file, key.to_pem(), exclusive=True)
        except FileExistsError:
            raise Conflict("Wallet already initialised", detail=f"{self.key_file} exists") from None
        self._key = key
        self.credentials_dir.mkdir(mode=0o700, exist_ok=True)
        (self.path / DID_FILE).write_text(self.did + "\n", encoding="utf-8")
        return self.did

    @property
    def key(self) -> Ed25519Key:
        if self._key is None:
            if not self.key_file.is_file():
                raise WalletError("No wallet here", detail=f"{self.key_file} is missing: run `edufed wallet init`")
            self._key = Ed25519Key.from_pem(self.key_file.read_bytes())
        return self._key

    @property
    def did(self) -> str:
        """The holder's ``did:key``, derived from the key (``did.txt`` is only a copy for people)."""
        return f"did:key:{self.key.public_multibase}"

    @property
    def verification_method(self) -> str:
        return f"{self.did}#{self.key.public_multibase}"

    def add(self, document: dict[str, Any], *, replace: bool = False) -> Path:
        """Store a credential; returns its file. A different credential already stored under the same id is
        refused (:class:`Conflict`) unless ``replace``; storing the same one again changes nothing."""
        check_credential(document)
        _ = self.key  # an uninitialised wallet stores nothing
        self.credentials_dir.mkdir(mode=0o700, exist_ok=True)
        target = self.credentials_dir / _file_name(document)
        data = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
        if target.exists() and not replace:
            if json.loads(target.read_bytes()) == document:
                return target
            raise Conflict("A different credential with this id is stored", field="id",
                           detail=f"{document.get('id')} is in {target}; use --replace to overwrite it")
        _write_private(target, data, exclusive=False)
        return target

    def add_file(self, file: Path, *, replace: bool = False) -> Path:
        """Store the credential in ``file`` (JSON, at most :data:`MAX_CREDENTIAL_BYTES`)."""
        try:
            size = file.stat().st_size
            if size > MAX_CREDENTIAL_BYTES:
                raise NotACredential("Credential file too large",
                                     detail=f"{file} is {size} bytes; the limit is {MAX_CREDENTIAL_BYTES}")
            text = file.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NotACredential("Cannot read credential file", detail=f"{file}: {exc}") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NotACredential("Credential file is not JSON", detail=f"{file}: {exc}") from None
        return self.add(document, replace=replace)

    def credentials(self) -> list[dict[str, Any]]:
        """Every stored credential, oldest ``validFrom`` first (then by id)."""
        if not self.credentials_dir.is_dir():
            return []
        found = []
        for file in sorted(self.credentials_dir.glob("*.json")):
            try:
                found.append(json.loads(file.read_text("utf-8")))
            except (OSError, ValueError) as exc:
                raise WalletError("Damaged credential file in the wallet", detail=f"{file}: {exc}") from None
        return sorted(found, key=lambda c: (str(c.get("validFrom", "")), str(c.get("id", ""))))

    def _select(self, credential_ids: Iterable[str] | None) -> list[dict[str, Any]]:
        stored = self.credentials()
        if credential_ids is None:
            return stored
        by_id = {c.get("id"): c for c in stored}
        chosen = []
        for credential_id in credential_ids:
            if credential_id not in by_id:
                raise NotFound("No such credential in the wallet", field="credential", detail=credential_id)
            chosen.append(by_id[credential_id])
        return chosen

    def present(
        self,
        challenge: str,
        domain: str,
        credential_ids: Iterable[str] | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """A VerifiablePresentation of the chosen credentials (all when ``credential_ids`` is None), signed by
        the holder with proof purpose ``authentication`` for this ``challenge`` and ``domain``."""
        for name, value in (("challenge", challenge), ("domain", domain)):
            if not isinstance(value, str) or not value:
                raise Unprocessable(f"A presentation needs a {name}", field=name,
                                    detail="the verifier gives it, so the presentation cannot be replayed")
        presentation = {
            "@context": [CREDENTIALS_V2_CONTEXT],
            "type": ["VerifiablePresentation"],
            "holder": self.did,
            "verifiableCredential": self._select(credential_ids),
        }
        return sign(presentation, self.key, self.verification_method, now or datetime.now(UTC),
                    proof_purpose="authentication", challenge=challenge, domain=domain)


# ---- command line: `edufed wallet …` -------------------------------------------------------------------------


def _cmd_init(wallet: Wallet, args: argparse.Namespace) -> int:
    did = wallet.init()
    print(f"Wallet created in {wallet.path}")
    print(did)
    return 0


def _cmd_did(wallet: Wallet, args: argparse.Namespace) -> int:
    print(wallet.did)
    return 0


def _cmd_add(wallet: Wallet, args: argparse.Namespace) -> int:
    target = wallet.add_file(Path(args.file), replace=args.replace)
    document = json.loads(target.read_text("utf-8"))
    print(f"Stored {document.get('id', '(no id)')} in {target}")
    subjects = {_id_of(s) for s in _as_list(document.get("credentialSubject"))}
    if wallet.did not in subjects:
        print(f"note: the credential's subject is not this wallet's DID ({wallet.did}); verifiers that bind "
              "the holder to the subject will refuse to accept it from you", file=sys.stderr)
    return 0


def _cmd_list(wallet: Wallet, args: argparse.Namespace) -> int:
    rows = [
        {"id": c.get("id", "-"), "issuer": _id_of(c.get("issuer")) or "-", "name": credential_name(c),
         "validFrom": c.get("validFrom", "-")}
        for c in wallet.credentials()
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for row in rows:
        print("\t".join(str(row[k]) for k in ("id", "issuer", "name", "validFrom")))
    if not rows:
        print("(no credentials)", file=sys.stderr)
    return 0


def _cmd_present(wallet: Wallet, args: argparse.Namespace) -> int:
    presentation = wallet.present(args.challenge, args.domain, args.credential)
    text = json.dumps(presentation, ensure_ascii=False, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        _write_private(Path(args.out), text.encode("utf-8"), exclusive=False)
        count = len(presentation["verifiableCredential"])
        print(f"Presentation of {count} credential(s) for {args.domain} written to {args.out}", file=sys.stderr)
    return 0


_COMMANDS = {"init": _cmd_init, "did": _cmd_did, "add": _cmd_add, "list": _cmd_list, "present": _cmd_present}


def main_wallet(args: argparse.Namespace) -> int:
    """Run a parsed ``wallet`` command. EduFedError propagates: ``edufed``'s main prints it and exits 2."""
    wallet = Wallet(args.wallet if args.wallet is not None else default_wallet_path())
    return _COMMANDS[args.wallet_command](wallet, args)


def add_wallet_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``wallet init|did|add|list|present`` to ``subparsers`` (from ``add_subparsers``); each sets
    ``func=main_wallet``. Returns the ``wallet`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--wallet", type=Path, default=None, metavar="DIR",
                        help=f"wallet folder (default: ${WALLET_ENV} or {DEFAULT_WALLET})")
    wallet = subparsers.add_parser("wallet", help="a learner's wallet: did:key, credentials, presentations")
    commands = wallet.add_subparsers(dest="wallet_command", required=True)

    commands.add_parser("init", parents=[common], help="make the holder key and did:key (never overwrites)")
    commands.add_parser("did", parents=[common], help="print the holder's DID")
    add = commands.add_parser("add", parents=[common], help="store a credential (a VC 2.0 JSON file)")
    add.add_argument("file", type=Path)
    add.add_argument("--replace", action="store_true", help="overwrite a different credential with the same id")
    listing = commands.add_parser("list", parents=[common], help="stored credentials: id, issuer, name, validFrom")
    listing.add_argument("--json", action="store_true", help="print JSON instead of tab-separated lines")
    present = commands.add_parser("present", parents=[common],
                                  help="sign a presentation for a verifier's challenge and domain")
    present.add_argument("--challenge", required=True, help="the verifier's challenge (a nonce)")
    present.add_argument("--domain", required=True, help="the verifier's domain")
    present.add_argument("--credential", action="append", metavar="ID",
                         help="a credential id to include (repeatable; default: all)")
    present.add_argument("--out", type=Path, help="write the presentation here (mode 0600) instead of stdout")
    for parser in commands.choices.values():
        parser.set_defaults(func=main_wallet)
    return wallet
