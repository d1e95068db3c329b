"""One upsert for SQLite and PostgreSQL: ``INSERT ... ON CONFLICT (key) DO UPDATE``.

Both dialects have the same statement (SQLite since 3.24), so a retried job's write updates the
row of its natural key instead of adding one, also when two attempts write at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

_INSERTS: dict[str, Callable[[Table], Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def upsert(connection: Connection, table: Table, values: Mapping[str, Any], key: Iterable[str],
           keep: Iterable[str] = ()) -> None:
    """Insert ``values``, or update the row with the same ``key`` (all columns but ``keep``)."""
    insert = _INSERTS.get(connection.dialect.name)
    if insert is None:
        raise NotImplementedError(f"no upsert for the {connection.dialect.name} dialect")
    key_columns = list(key)
    statement = insert(table).values(**values)
    unchanged = set(key_columns) | set(keep)
    changes = {name: statement.excluded[name] for name in values if name not in unchanged}
    connection.execute(statement.on_conflict_do_update(index_elements=key_columns, set_=changes))


def insert_absent(connection: Connection, table: Table, values: Mapping[str, Any],
                  key: Iterable[str]) -> bool:
    """Insert ``values`` unless a row with the same ``key`` exists; True when this call inserted it."""
    insert = _INSERTS.get(connection.dialect.name)
    if insert is None:
        raise NotImplementedError(f"no upsert for the {connection.dialect.name} dialect")
    statement = (insert(table).values(**values).on_conflict_do_nothing(index_elements=list(key))
                 .returning(*table.primary_key.columns))  # a row back: inserted (rowcount is -1 here)
    return connection.execute(statement).first() is not None
