"""TraceStages: one ``process <actor>`` span per run, current while the run's hooks and actor run.

Added to the stack only when ``TRACING_ENABLED`` (see :mod:`gabay.tracing`). It sits near the top
of the stack so that its span covers every gate and the actor; a run that was held back, skipped
or failed still ends its span (with the error's type as its status).
"""

from __future__ import annotations

import threading
from typing import Any

from dramatiq import Broker, Middleware, Worker

from gabay.tracing import Tracing


class TraceStages(Middleware):
    """Opens the run's span before the gates and closes it after the last hook."""

    def __init__(self, tracing: Tracing) -> None:
        self.tracing = tracing
        self._open: dict[int, object] = {}  # id of the delivery -> its span handle
        self._lock = threading.Lock()

    def before_process_message(self, broker: Broker, message: Any) -> None:
        handle = self.tracing.begin(message)
        if handle is not None:
            with self._lock:
                self._open[id(message)] = handle

    def after_process_message(self, broker: Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        self._end(message, exception)

    def after_skip_message(self, broker: Broker, message: Any) -> None:
        self._end(message, getattr(message, "_exception", None))

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self.tracing.shutdown()

    def _end(self, message: Any, exception: BaseException | None) -> None:
        with self._lock:
            handle = self._open.pop(id(message), None)
        if handle is not None:
            self.tracing.end(handle, exception)
