"""Redis's part of a backup: ``BGSAVE``, wait for ``LASTSAVE`` to move, copy the RDB file.

The RDB file is the one Redis names (``CONFIG GET dir`` and ``dbfilename``), so it must be
readable on this host: true for the embedded Redis and a Redis on the same machine. A Redis on
another host writes the file there; then the backup fails with one line saying so (back Redis up
where it runs, or set ``BACKUP_REDIS=false``). ``LASTSAVE`` counts whole seconds, so the save is
started in a later second than the last one: a save that changed nothing would otherwise be
indistinguishable from a save that never happened.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import redis

from gabay.backups.manifest import CHUNK, RedisPart
from gabay.errors import BackupFailed

RDB_FILE = "redis.rdb"
POLL_SECONDS = 0.05
#: Replies of a BGSAVE that Redis cannot start yet (another save or an AOF rewrite runs).
BUSY = ("in progress", "another child process is active")


def snapshot(client: redis.Redis, directory: Path, timeout: float) -> RedisPart:
    """Save Redis now and copy its RDB file into ``directory``; BackupFailed when it cannot."""
    deadline = time.monotonic() + timeout
    source = _rdb_path(client)
    started = _bgsave(client, deadline, timeout)
    _wait_for_save(client, started, deadline, timeout)
    _check_readable(source, started)
    size, digest = _copy(source, directory / RDB_FILE)
    info = client.info("server")
    db = int(client.connection_pool.connection_kwargs.get("db", 0) or 0)
    return RedisPart(file=RDB_FILE, bytes=size, sha256=digest, db=db, keys=int(client.dbsize()),
                     redis_version=str(info.get("redis_version", "unknown")))


def _rdb_path(client: redis.Redis) -> Path:
    try:
        directory = client.config_get("dir").get("dir")
        name = client.config_get("dbfilename").get("dbfilename")
    except redis.ResponseError as exc:
        raise BackupFailed(f"Redis refused CONFIG GET dir/dbfilename ({exc}); a managed Redis that "
                           "hides its files is backed up by its provider (set BACKUP_REDIS=false)") from None
    if not directory or not name:
        raise BackupFailed("Redis did not name its RDB file (CONFIG GET dir/dbfilename)")
    return Path(str(directory)) / str(name)


def _bgsave(client: redis.Redis, deadline: float, timeout: float) -> int:
    """Start a BGSAVE in a second later than LASTSAVE; return LASTSAVE before it (epoch s)."""
    before = _epoch(client.lastsave())
    while int(client.time()[0]) <= before and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    while True:
        try:
            client.bgsave()
            return before
        except redis.ResponseError as exc:
            if not any(word in str(exc).lower() for word in BUSY):
                raise BackupFailed(f"Redis refused BGSAVE: {exc}") from None
            if time.monotonic() > deadline:
                raise BackupFailed(f"Redis was busy saving for {timeout:g} s; BGSAVE never "
                                   f"started ({exc})") from None
            time.sleep(0.2)


def _wait_for_save(client: redis.Redis, before: int, deadline: float, timeout: float) -> None:
    """Wait until LASTSAVE moves past ``before``; BackupFailed when the save fails or is late."""
    while True:
        pipe = client.pipeline(transaction=True)  # one snapshot of both: the save ends atomically
        pipe.info("persistence")
        pipe.lastsave()
        persistence, lastsave = pipe.execute()
        if _epoch(lastsave) > before:
            return
        if not int(persistence.get("rdb_bgsave_in_progress", 0)):
            status = persistence.get("rdb_last_bgsave_status", "unknown")
            raise BackupFailed(f"Redis's BGSAVE failed (rdb_last_bgsave_status: {status}); the "
                               "Redis log says why")
        if time.monotonic() > deadline:
            raise BackupFailed(f"Redis's BGSAVE did not finish within {timeout:g} s")
        time.sleep(POLL_SECONDS)


def _check_readable(source: Path, before: int) -> None:
    """The RDB file must be here and be the one just written (not a same-named local file)."""
    try:
        modified = source.stat().st_mtime
        readable = os.access(source, os.R_OK)
    except OSError:
        modified, readable = 0.0, False
    if not readable or modified < before:
        raise BackupFailed(f"Redis's snapshot {source} is not readable on this host (Redis runs on "
                           "another machine?); run the backup where Redis runs, or set "
                           "BACKUP_REDIS=false and back Redis up there")


def _copy(source: Path, destination: Path) -> tuple[int, str]:
    """Copy and hash in one pass; the open file stays the saved one even if Redis saves again."""
    digest = hashlib.sha256()
    size = 0
    try:
        with source.open("rb") as reader, destination.open("wb") as writer:
            while chunk := reader.read(CHUNK):
                writer.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            writer.flush()
            os.fsync(writer.fileno())
    except OSError as exc:
        raise BackupFailed(f"copying Redis's snapshot {source} failed: {exc.strerror or exc}") from None
    return size, digest.hexdigest()


def _epoch(value: Any) -> int:
    """LASTSAVE as epoch seconds (redis-py returns a naive local datetime)."""
    if hasattr(value, "timestamp"):
        return int(value.timestamp())
    return int(value)
