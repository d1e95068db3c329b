"""A worker process refuses to start on a results database older than the code.

At boot it checks the schema's revision (:func:`gabay.store.schema.check_schema`); the embedded
SQLite file is migrated instead (nobody else administers it). On an old (or unknown) schema the
process logs one line and exits with code 2, which Dramatiq and ``gabay workers`` treat as a
configuration error: not restarted until someone runs ``gabay db upgrade``. A database that does
not answer at boot is only a warning: jobs retry their writes until it answers.
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.middleware import Middleware

from gabay.errors import SchemaOutdated, StoreUnavailable
from gabay.settings import Settings
from gabay.store.engine import build_engine, is_embedded
from gabay.store.schema import prepare_schema

logger = logging.getLogger(__name__)

#: Dramatiq's exit code for an import or configuration error (RET_IMPORT): not restarted.
EXIT_CONFIGURATION = 2


class SchemaCheck(Middleware):
    """Checks (embedded: migrates) the results database before the worker threads start."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        engine = build_engine(self.settings)
        try:
            prepare_schema(engine, auto_upgrade=is_embedded(self.settings))
        except SchemaOutdated as exc:
            logger.critical("gabay: %s", exc)
            raise SystemExit(EXIT_CONFIGURATION) from None
        except StoreUnavailable as exc:
            logger.warning("gabay: %s; starting anyway, jobs retry their writes", exc)
        finally:
            engine.dispose()
