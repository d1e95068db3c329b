"""Restoring one backup: check it, check both targets are empty, then the store and Redis.

Nothing is written before everything was checked: the backup's files against their checksums,
and each target (the results database, the Redis database) empty, or ``force``. A restore is
meant for a stopped cluster (``gabay workers`` and the web app stopped): workers running on the
target would write into it while it is restored.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy import URL

from gabay.backups.directory import BackupEntry
from gabay.backups.manifest import verify
from gabay.backups.redis_restore import check_redis_target, restore_rdb
from gabay.backups.store_dump import check_store_target, restore_store
from gabay.errors import BackupDamaged, RestoreRefused


@dataclass(frozen=True)
class Restored:
    """What a restore put back: the store's kind and revision, the Redis keys copied."""

    store: str | None
    revision: str | None
    redis_keys: int | None


def restore_backup(entry: BackupEntry, *, database: URL | None, client: redis.Redis | None,
                   timeout: float, force: bool = False) -> Restored:
    """Restore ``entry``'s store into ``database`` and its Redis into ``client`` (None: skip that part)."""
    if entry.manifest is None:
        raise BackupDamaged(entry.problem or f"backup {entry.id} is incomplete")
    manifest = entry.manifest
    verify(entry.path, manifest)
    if database is not None and manifest.store is None:
        raise RestoreRefused(f"backup {entry.id} holds no results store")
    if client is not None and manifest.redis is None:
        raise RestoreRefused(f"backup {entry.id} holds no Redis snapshot (BACKUP_REDIS was false)")
    if database is None and client is None:
        raise RestoreRefused("nothing to restore: both the store and Redis were left out")
    if database is not None and manifest.store is not None:
        check_store_target(manifest.store, database, force=force)
    if client is not None:
        check_redis_target(client, force=force)
    store_kind = revision = None
    if database is not None and manifest.store is not None:
        restore_store(manifest.store, entry.path, database, timeout, force=force)
        store_kind, revision = manifest.store.kind, manifest.store.revision
    keys = None
    if client is not None and manifest.redis is not None:
        keys = restore_rdb(entry.path / manifest.redis.file, manifest.redis.db, client, force=force)
    return Restored(store_kind, revision, keys)
