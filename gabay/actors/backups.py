"""The backup worker: ``run_backup()`` on queue ``backups``, nightly by the default schedule.

One backup at a time in the whole cluster (``max_concurrency=1``: a second message waits for the
slot). A failed backup raises the ``backup_failed`` alert (:mod:`gabay.backups.run`) and is not
retried: the message goes to the dead-letter queue and the next night, or ``gabay backup run``,
is the next attempt.
"""

from __future__ import annotations

import dramatiq

from gabay.actors.bound import bound_broker
from gabay.backups.run import run_backup as write_backup
from gabay.errors import BackupFailed
from gabay.queues import BACKUPS

BACKUP_ACTOR = "run_backup"

broker = bound_broker()
settings = broker.settings


@dramatiq.actor(actor_name=BACKUP_ACTOR, queue_name=BACKUPS, max_concurrency=1, max_retries=0,
                throws=(BackupFailed,), time_limit=int((2 * settings.backup_timeout + 300) * 1000))
def run_backup() -> None:
    """Write one backup of the results store and Redis into ``BACKUP_DIR``, then apply retention."""
    write_backup(settings, broker.client)
