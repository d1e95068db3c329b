"""Backups: the results store (pg_dump or SQLite's backup API) and Redis (BGSAVE, its RDB file),
written with a checksummed manifest to a backup directory, kept by a retention policy, restored
into an empty database or Redis."""
