"""Which backups to keep: the newest of each of the last N days and of the last M weeks.

Days and weeks are UTC calendar days and ISO weeks (Monday to Sunday) of the backups' start
times, counted over the days and weeks that have a backup (a week with no backup does not use up
a weekly slot). Daily and weekly are judged independently and a backup kept by either stays, as
in restic's and Borg's ``--keep-daily`` / ``--keep-weekly``. Only backups with a manifest count;
a directory without one is never what keeps a day, and is removed with the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Iterable, Sequence

from gabay.backups.directory import BackupDirectory, BackupEntry


def kept_ids(backups: Iterable[tuple[str, dt.datetime]], keep_daily: int, keep_weekly: int) -> set[str]:
    """The ids to keep out of ``(id, started at)`` pairs."""
    newest_first = sorted(backups, key=lambda b: (b[1], b[0]), reverse=True)
    keep = _newest_per_period(newest_first, keep_daily, lambda at: at.astimezone(dt.UTC).date())
    keep |= _newest_per_period(newest_first, keep_weekly,
                               lambda at: at.astimezone(dt.UTC).isocalendar()[:2])
    return keep


def _newest_per_period(newest_first: Sequence[tuple[str, dt.datetime]], count: int,
                       period: Callable[[dt.datetime], Hashable]) -> set[str]:
    seen: set[Hashable] = set()
    keep: set[str] = set()
    for identifier, at in newest_first:
        if len(seen) >= count:
            break
        key = period(at)
        if key not in seen:
            seen.add(key)
            keep.add(identifier)
    return keep


def apply_retention(directory: BackupDirectory, keep_daily: int, keep_weekly: int) -> list[BackupEntry]:
    """Remove the backups the policy does not keep (with the directory's lock held); return them.

    Reads the manifests only (no checksums): a backup with a manifest counts as complete.
    """
    entries = directory.entries(check=False)
    keep = kept_ids([(e.id, e.started_at) for e in entries if e.manifest is not None],
                    keep_daily, keep_weekly)
    removed = [e for e in entries if e.id not in keep]
    for entry in removed:
        directory.remove(entry)
    return removed
