"""The backup directory (``BACKUP_DIR``): one sub-directory per backup, named by its id.

A backup is written into ``.partial-<id>/`` and renamed to ``<id>/`` only after its manifest
(:mod:`gabay.backups.manifest`) is in it, so a run that fails or is killed never leaves a
directory that looks like a backup; the next run removes such leftovers. The id is the UTC time
the backup started, ``20261203T173000Z`` (``-2``, ``-3`` ... when one second holds more than
one), which sorts by time and is what retention counts days and weeks by. Runs on one backup
directory take ``.lock`` (an flock) in turn.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gabay.backups.manifest import Manifest, read_manifest, verify, write_manifest
from gabay.errors import BackupDamaged, BackupFailed

BACKUP_ID = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d+))?$")
PARTIAL_PREFIX = ".partial-"
LOCK_FILE = ".lock"


def backup_id(moment: dt.datetime) -> str:
    """The id of a backup started at ``moment``: its UTC time to the second."""
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def started_at(identifier: str) -> dt.datetime:
    """The UTC start time an id names; ValueError for a name that is not a backup id."""
    match = BACKUP_ID.match(identifier)
    if match is None:
        raise ValueError(f"not a backup id: {identifier!r}")
    return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Attempt:
    """A backup being written: its id and its partial directory."""

    id: str
    path: Path
    started_at: dt.datetime


@dataclass(frozen=True)
class BackupEntry:
    """One backup of the directory; ``problem`` is None for a good one (when it was checked)."""

    id: str
    path: Path
    started_at: dt.datetime
    manifest: Manifest | None
    problem: str | None

    @property
    def good(self) -> bool:
        return self.manifest is not None and self.problem is None


class BackupDirectory:
    """The backups under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextmanager
    def locked(self, timeout: float) -> Iterator[None]:
        """Hold the directory's lock (waiting up to ``timeout`` seconds for another run)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = (self.root / LOCK_FILE).open("a")
        except OSError as exc:
            raise BackupFailed(f"the backup directory {self.root} cannot be used: "
                               f"{exc.strerror or exc}") from None
        with handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise BackupFailed(f"another backup held {self.root / LOCK_FILE} for "
                                           f"{timeout:g} s") from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def remove_partials(self) -> list[str]:
        """Remove what failed or killed runs left (call with the lock held)."""
        removed = []
        for path in sorted(self.root.glob(f"{PARTIAL_PREFIX}*")):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
        return removed

    def start(self, moment: dt.datetime) -> Attempt:
        """A new partial directory for a backup started at ``moment`` (with the lock held)."""
        base = backup_id(moment)
        identifier, number = base, 1
        while (self.root / identifier).exists() or (self.root / f"{PARTIAL_PREFIX}{identifier}").exists():
            number += 1
            identifier = f"{base}-{number}"
        path = self.root / f"{PARTIAL_PREFIX}{identifier}"
        path.mkdir(parents=True)
        return Attempt(identifier, path, moment)

    def finish(self, attempt: Attempt, manifest: Manifest) -> BackupEntry:
        """Write the manifest, check every file against it, then rename the backup into place."""
        write_manifest(attempt.path, manifest)
        verify(attempt.path, manifest)
        final = self.root / attempt.id
        attempt.path.rename(final)
        return BackupEntry(attempt.id, final, started_at(attempt.id), manifest, None)

    def discard(self, attempt: Attempt) -> None:
        shutil.rmtree(attempt.path, ignore_errors=True)

    def entries(self, *, check: bool = True) -> list[BackupEntry]:
        """Every backup, oldest first; ``check`` verifies every file's checksum (reads them all)."""
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.iterdir()):
            if not path.is_dir() or BACKUP_ID.match(path.name) is None:
                continue
            found.append(self._entry(path, check))
        return sorted(found, key=lambda e: (e.started_at, e.id))

    def entry(self, identifier: str, *, check: bool = True) -> BackupEntry:
        """One backup by id; BackupDamaged when there is none of that name."""
        path = self.root / identifier
        if BACKUP_ID.match(identifier) is None or not path.is_dir():
            known = ", ".join(e.id for e in self.entries(check=False)[-5:]) or "none"
            raise BackupDamaged(f"no backup {identifier!r} in {self.root} (latest: {known})")
        return self._entry(path, check)

    def remove(self, entry: BackupEntry) -> None:
        shutil.rmtree(entry.path)

    def _entry(self, path: Path, check: bool) -> BackupEntry:
        moment = started_at(path.name)
        try:
            manifest = read_manifest(path)
        except BackupDamaged as exc:
            return BackupEntry(path.name, path, moment, None, str(exc))
        problem = None
        if check:
            try:
                verify(path, manifest)
            except BackupDamaged as exc:
                problem = str(exc)
        return BackupEntry(path.name, path, moment, manifest, problem)
