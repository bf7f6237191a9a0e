"""The node's signing keys on disk: one PKCS#8 PEM file per key (mode 0600) and a small JSON index.

Rotation never deletes a key: the old one is marked retired and stays in the DID document, so every record
and credential signed before the rotation still verifies. Files are written before the index that names them
and the index is replaced atomically, so a crash mid-rotation leaves the previous ring intact.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from node.trust.did import KeyEntry
from node.trust.multikey import Ed25519Key

INDEX_FILE = "keyring.json"


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only, before any byte is written to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Slot:
    file: str
    entry: KeyEntry


class KeyRing:
    """Signing keys of one node; the newest key that is not retired signs."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir
        self._index_stamp = (keys_dir / INDEX_FILE).stat().st_mtime_ns
        self._slots = self._read_index()
        self._active_key: Ed25519Key | None = None

    def _refresh(self) -> None:
        """Pick up a rotation made by another process (``edufed key rotate`` while the node is serving)."""
        stamp = (self.keys_dir / INDEX_FILE).stat().st_mtime_ns
        if stamp != self._index_stamp:
            self._index_stamp = stamp
            self._slots = self._read_index()

    @classmethod
    def create(cls, keys_dir: Path, now: datetime | None = None) -> KeyRing:
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (keys_dir / INDEX_FILE).exists():
            raise FileExistsError(f"{keys_dir / INDEX_FILE} already exists")
        cls._write_index(keys_dir, [])
        ring = cls(keys_dir)
        ring._add_key(now or datetime.now(UTC))
        return ring

    def entries(self) -> list[KeyEntry]:
        self._refresh()
        return [slot.entry for slot in self._slots]

    def active(self) -> tuple[Ed25519Key, KeyEntry]:
        """The signing key and its public entry."""
        self._refresh()
        slot = next(s for s in reversed(self._slots) if s.entry.retired is None)
        if self._active_key is None or self._active_key.public_multibase != slot.entry.public_multibase:
            self._active_key = Ed25519Key.from_pem((self.keys_dir / slot.file).read_bytes())
        return self._active_key, slot.entry

    def rotate(self, now: datetime | None = None) -> KeyEntry:
        """Add a new signing key and retire the current one (it stays listed).

        Proofs carry whole seconds, so the retirement date is the next whole second: a proof the old key made
        in the second of the rotation is still earlier than ``revoked`` and verifies.
        """
        moment = now or datetime.now(UTC)
        self._refresh()
        revoked = moment.replace(microsecond=0) + timedelta(seconds=1)
        retired = [
            _Slot(s.file, KeyEntry(s.entry.public_multibase, s.entry.created, s.entry.retired or revoked))
            for s in self._slots
        ]
        self._slots = retired
        return self._add_key(moment)

    def _add_key(self, moment: datetime) -> KeyEntry:
        key = Ed25519Key.generate()
        file = f"ed25519-{moment.strftime('%Y%m%dT%H%M%S%f')}.pem"
        _write_private(self.keys_dir / file, key.to_pem())
        entry = KeyEntry(key.public_multibase, moment.replace(microsecond=0), None)
        self._slots = [*self._slots, _Slot(file, entry)]
        self._write_index(self.keys_dir, self._slots)
        self._index_stamp = (self.keys_dir / INDEX_FILE).stat().st_mtime_ns
        self._active_key = key
        return entry

    def _read_index(self) -> list[_Slot]:
        raw = json.loads((self.keys_dir / INDEX_FILE).read_text("utf-8"))
        return [
            _Slot(
                item["file"],
                KeyEntry(
                    item["publicKeyMultibase"],
                    datetime.fromisoformat(item["created"]),
                    datetime.fromisoformat(item["retired"]) if item.get("retired") else None,
                ),
            )
            for item in raw["keys"]
        ]

    @staticmethod
    def _write_index(keys_dir: Path, slots: list[_Slot]) -> None:
        raw = {
            "keys": [
                {
                    "file": s.file,
                    "publicKeyMultibase": s.entry.public_multibase,
                    "created": _iso(s.entry.created),
                    "retired": _iso(s.entry.retired) if s.entry.retired else None,
                }
                for s in slots
            ]
        }
        tmp = keys_dir / (INDEX_FILE + ".tmp")
        tmp.write_text(json.dumps(raw, indent=2) + "\n", "utf-8")
        os.replace(tmp, keys_dir / INDEX_FILE)
