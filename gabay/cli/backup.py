"""``gabay backup``: list the backups (checked against their checksums), run one, restore one.

``run`` writes a backup in this process (as the nightly ``run_backup`` job does; ``--enqueue``
sends that job to the ``backups`` queue instead). ``restore ID`` puts a backup into the
configured results database and Redis (or ``--database-url`` / ``--redis-url``), only when they
are empty, unless ``--force``. Stop the workers first.
"""

from __future__ import annotations

import json

import click
from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError

from gabay.backups.directory import BackupDirectory, BackupEntry
from gabay.backups.restore import restore_backup
from gabay.backups.run import human_size, run_backup
from gabay.cli import get_redis, get_settings, main
from gabay.cluster.connection import connect
from gabay.errors import ConfigError
from gabay.store.engine import POSTGRES_NAMES, database_url, describe_url
from gabay.store.schema import HEAD_REVISION


@main.group()
def backup() -> None:
    """Backups of the results store and Redis: list, run, restore."""


def describe(entry: BackupEntry) -> str:
    """One line of ``gabay backup list``."""
    if entry.manifest is None or entry.problem is not None:
        return f"{entry.id}  DAMAGED  {entry.problem}"
    parts = []
    if (store := entry.manifest.store) is not None:
        parts.append(f"store: {store.kind} {human_size(store.bytes)} (revision {store.revision or 'none'})")
    if (snapshot := entry.manifest.redis) is not None:
        parts.append(f"redis: db {snapshot.db}, {snapshot.keys} keys, {human_size(snapshot.bytes)}")
    return f"{entry.id}  ok       {'; '.join(parts)}"


def as_json(entry: BackupEntry) -> dict[str, object]:
    return {"id": entry.id, "path": str(entry.path), "good": entry.good, "problem": entry.problem,
            "manifest": entry.manifest.model_dump(mode="json") if entry.manifest else None}


@backup.command("list")
@click.option("--json", "as_json_output", is_flag=True, help="one JSON document")
@click.option("--no-verify", is_flag=True, help="read the manifests only (no checksums)")
@click.pass_context
def list_command(ctx: click.Context, as_json_output: bool, no_verify: bool) -> None:
    """Every backup, oldest first, with its state: ok, or DAMAGED and why."""
    settings = get_settings(ctx)
    entries = BackupDirectory(settings.backups_dir).entries(check=not no_verify)
    if as_json_output:
        click.echo(json.dumps({"directory": str(settings.backups_dir),
                               "backups": [as_json(e) for e in entries]}, indent=2))
        return
    if not entries:
        click.echo(f"no backups in {settings.backups_dir}")
        return
    click.echo(f"backups in {settings.backups_dir}:")
    for entry in entries:
        click.echo(describe(entry))


@backup.command("run")
@click.option("--enqueue", is_flag=True, help="send the run_backup job to the backups queue instead")
@click.pass_context
def run_command(ctx: click.Context, enqueue: bool) -> None:
    """Write a backup now (store and Redis), then apply the retention policy."""
    settings = get_settings(ctx)
    if enqueue:
        from gabay.actors import run_backup as backup_actor  # reads the settings, builds the broker

        message = backup_actor.send()
        click.echo(f"enqueued run_backup on queue backups: message {message.message_id}")
        return
    result = run_backup(settings, get_redis(ctx))
    click.echo(f"backup {result.backup.id} written to {result.backup.path}")
    click.echo(describe(result.backup))
    if result.removed:
        click.echo(f"retention removed {len(result.removed)}: {', '.join(e.id for e in result.removed)}")


@backup.command("restore")
@click.argument("backup_id")
@click.option("--force", is_flag=True, help="restore into a database or Redis that is not empty")
@click.option("--no-store", is_flag=True, help="leave the results database alone")
@click.option("--no-redis", is_flag=True, help="leave Redis alone")
@click.option("--database-url", "target_database", default=None,
              help="restore the store here (default DATABASE_URL)")
@click.option("--redis-url", "target_redis", default=None,
              help="restore Redis here (default the configured Redis)")
@click.pass_context
def restore_command(ctx: click.Context, backup_id: str, force: bool, no_store: bool, no_redis: bool,
                    target_database: str | None, target_redis: str | None) -> None:
    """Restore backup BACKUP_ID into an empty results database and an empty Redis database."""
    settings = get_settings(ctx)
    entry = BackupDirectory(settings.backups_dir).entry(backup_id, check=False)  # restore checks
    database = None if no_store else (_target_url(target_database) or database_url(settings))
    client = None if no_redis else (connect(settings, target_redis) if target_redis else get_redis(ctx))
    restored = restore_backup(entry, database=database, client=client,
                              timeout=settings.backup_timeout, force=force)
    if restored.store is not None and database is not None:
        click.echo(f"results store restored into {describe_url(database)} ({restored.store}, "
                   f"revision {restored.revision or 'none'})")
        if restored.revision != HEAD_REVISION:
            click.echo(f"the code needs revision {HEAD_REVISION}: run `gabay db upgrade`")
    if restored.redis_keys is not None:
        click.echo(f"redis restored: {restored.redis_keys} keys")


def _target_url(text: str | None) -> URL | None:
    """A ``--database-url`` as the store's engine would use it (``postgresql://`` on psycopg 3)."""
    if text is None:
        return None
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigError("--database-url: not a database URL") from None
    if url.drivername in POSTGRES_NAMES:
        return url.set(drivername="postgresql+psycopg")
    return url
