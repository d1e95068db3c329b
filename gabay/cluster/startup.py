"""Start-up checks of ``dramatiq gabay.actors``: one clear line instead of a traceback.

A wrong setting (``REDIS_URL=http://...``), a Redis that does not answer (a wrong port) or a
queue name gabay does not know (``--queues bogus``) stops a worker process before it consumes
anything, with one line on stderr such as ``gabay: Redis does not answer at 127.0.0.1:6390:
ConnectionError`` and Dramatiq's own exit codes, which ``gabay workers`` does not restart:
2 for a configuration error (Dramatiq's "import failed"), 3 for Redis (its "broker connection
failed during worker startup").

Every worker process of the command meets the same problem; only the first one
(``Process-1``) prints it, so ``-p 8`` still gives one line. Dramatiq's main process adds its
own lines ("booting up", "exited unexpectedly"); those cannot be silenced from a worker process.
Outside a ``dramatiq`` worker process (the platform API importing the actors, a script) the exit
code is 1 and no Redis check is made at import.
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import NoReturn

from dramatiq.compat import StreamablePipe

from gabay.errors import ConfigError, GabayError, RedisUnavailable, UnknownQueue

#: Dramatiq's exit codes (dramatiq.cli): module import failed, broker connection failed.
RET_IMPORT = 2
RET_CONNECT = 3


def in_dramatiq_worker_process() -> bool:
    """True in a worker process of the ``dramatiq`` command (its stderr is the log pipe)."""
    return isinstance(sys.stderr, StreamablePipe)


def exit_code(exc: GabayError) -> int:
    """The exit code for a start-up error: Dramatiq's meaning in a worker process, else 1."""
    if not in_dramatiq_worker_process():
        return 1
    if isinstance(exc, RedisUnavailable):
        return RET_CONNECT
    if isinstance(exc, ConfigError | UnknownQueue):
        return RET_IMPORT
    return 1


def stop_on(exc: GabayError) -> NoReturn:
    """Print ``gabay: <message>`` once per command and exit (see the module docstring)."""
    first = not in_dramatiq_worker_process() or multiprocessing.current_process().name == "Process-1"
    if first:
        print(f"gabay: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(exit_code(exc))
