"""The manifest of one backup: what it holds and the SHA-256 of every file, written last.

A backup directory counts as a backup only once ``manifest.json`` is in it (it is written after
every file, and the directory then renamed into place), and it is good only while every file still
has the size and checksum its manifest names: ``gabay backup list`` and ``restore`` check both.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from gabay.errors import BackupDamaged

MANIFEST = "manifest.json"
CHUNK = 1024 * 1024


class FilePart(BaseModel):
    """One file of a backup: its name in the backup's directory, its size and SHA-256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    bytes: int
    sha256: str


class StorePart(FilePart):
    """The results store's dump: ``postgresql`` (pg_dump custom format) or ``sqlite`` (a copy)."""

    kind: Literal["postgresql", "sqlite"]
    #: The Alembic revision the database was at (None: never migrated).
    revision: str | None


class RedisPart(FilePart):
    """Redis's RDB snapshot; ``db`` is the database gabay used, ``keys`` its size at the save."""

    db: int
    keys: int
    redis_version: str


class Manifest(BaseModel):
    """What ``manifest.json`` says about one backup."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = 1
    id: str
    started_at: dt.datetime
    finished_at: dt.datetime
    gabay_version: str
    store: StorePart | None
    redis: RedisPart | None

    @property
    def parts(self) -> list[FilePart]:
        return [part for part in (self.store, self.redis) if part is not None]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe_file(path: Path) -> tuple[int, str]:
    """``(bytes, sha256)`` of a finished file, flushed to disk first."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
    return path.stat().st_size, sha256_of(path)


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` atomically (a temporary file renamed) and durably."""
    temporary = directory / f".{MANIFEST}.tmp"
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(manifest.model_dump_json(indent=2))
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(directory / MANIFEST)


def read_manifest(directory: Path) -> Manifest:
    """The manifest of a backup directory; BackupDamaged when it is missing or unreadable."""
    path = directory / MANIFEST
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise BackupDamaged(f"backup {directory.name} is incomplete: it has no {MANIFEST}") from None
    except (OSError, ValidationError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a valid manifest"
        raise BackupDamaged(f"backup {directory.name}: {MANIFEST} cannot be read ({reason})") from None


def verify(directory: Path, manifest: Manifest) -> None:
    """Check every file's size and SHA-256 against the manifest; BackupDamaged naming the first bad one."""
    for part in manifest.parts:
        path = directory / part.file
        try:
            size = path.stat().st_size
        except OSError:
            raise BackupDamaged(f"backup {manifest.id} is damaged: {part.file} is missing") from None
        if size != part.bytes or sha256_of(path) != part.sha256:
            raise BackupDamaged(f"backup {manifest.id} is damaged: {part.file} does not match its "
                                "checksum")
