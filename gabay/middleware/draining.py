"""Draining: on SIGTERM/SIGINT (or SIGHUP) a worker process finishes its work and loses nothing.

Steps, in this process only (the rest of the cluster keeps running):

1. At the signal: stop fetching from every queue, tell the worker threads to take no new job,
   and put back at once every message fetched but not started (the in-memory work queue, the
   consumers' caches, the delayed messages held in memory) so that other processes can take
   them now.
2. Wait up to ``DRAIN_TIMEOUT`` seconds (counted from the signal) for the running jobs.
3. At the deadline, put the jobs still running back at the head of their queues, unchanged (same
   message, same retry count: no retry is used). Their threads are dropped from Dramatiq's
   shutdown join, so the process closes its connections and exits 0 at once.

The waiting happens in ``before_worker_shutdown``, before Dramatiq starts its own
``--worker-shutdown-timeout``, so that timeout never cuts the drain short. A message that waits
at a gate (a cap slot, a rate-limit start) when the drain begins goes back at once: after the
signal no new job begins in this process.

A SIGTERM sent to the whole process group (systemd's default ``KillMode=control-group``, ``docker
stop`` of a shell entrypoint, ``kill -- -PGID``) reaches each worker process twice at once: from
the group and from Dramatiq's main process, which forwards its own. A repeat of the first signal
within ``REPEAT_WINDOW`` seconds is therefore the same request and is ignored. A signal sent again
later still stops the process at once (Dramatiq's behaviour), and so does SIGKILL; the messages
of a process stopped that way come back after ``HEARTBEAT_TIMEOUT``.

The exit follows the last job within a few tens of milliseconds:

- When the drain ends, the consumer threads are stopped and woken (they fetch nothing any more),
  instead of Dramatiq stopping them after its join and each finishing its ``IDLE_CHECK`` pause.
- Dramatiq's main process copies its worker processes' log pipes on a thread that waits up to
  1 s per turn, and it joins that thread before it exits: woken by this process's pipe closing
  *before* it noticed the exit, it would wait another full second. So at exit a small helper
  process keeps a copy of the pipe open until this process has been reaped, plus
  ``LOG_PIPE_GRACE``; the pipe then closes after the main process stopped its log thread, which
  ends at once. (Without the helper, or if it comes too late, the main process just exits 1 s
  later, as before.)
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from types import FrameType
from typing import Any

import redis
from dramatiq import Broker, Message, Middleware, Worker
from dramatiq.common import iter_queue
from dramatiq.compat import StreamablePipe

from gabay.cluster.intake import Intake

logger = logging.getLogger(__name__)

#: While waiting for the active jobs, look for newly delivered unstarted messages this often (s).
RESWEEP_EVERY = 0.25
#: A repeat of the signal within this many seconds is the same stop request (a group signal).
REPEAT_WINDOW = 1.0
#: How long the log pipe stays open after this process was reaped (the main process then stops
#: its log thread: a few Python lines), in seconds.
LOG_PIPE_GRACE = 0.02

#: The helper of ``_hold_log_pipe_past_exit``: its stdin ends when this process exits; it waits
#: until the main process reaped it (the pid is gone), then the grace, then exits, closing the
#: copy of the log pipe it inherited. It gives up after 10 s.
_LOG_PIPE_HOLDER = """
import os, sys, time
pid, grace = int(sys.argv[1]), float(sys.argv[2])
os.read(0, 1)
give_up = time.monotonic() + 10
while time.monotonic() < give_up:
    try:
        os.kill(pid, 0)
    except OSError:
        break
    time.sleep(0.002)
time.sleep(grace)
"""

Handler = Callable[[int, FrameType | None], Any]


class Draining(Middleware):
    """See the module docstring."""

    def __init__(self, intake: Intake, drain_timeout: float) -> None:
        self.intake = intake
        self.drain_timeout = drain_timeout
        self._cond = threading.Condition()
        self._active: dict[str, tuple[Any, int]] = {}  # redis id -> (message, thread ident)
        self._begun_at: float | None = None
        self._signalled: tuple[int, float] | None = None  # the first signal and when it came
        self._reason = ""
        self._wake = threading.Event()
        self._swept = threading.Lock()
        self._sweep_done = False
        self._worker: Worker | None = None
        self._exit_pipe: int | None = None  # the log pipe helper's stdin; kept open until exit

    # -- the signal ---------------------------------------------------------------------------------

    def after_process_boot(self, broker: Broker) -> None:
        """Wrap the dramatiq CLI's handlers so that the drain starts at the signal, not ~1 s later."""
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous = signal.getsignal(signum)
            if callable(previous):
                try:
                    signal.signal(signum, self._wrap(previous))
                except ValueError:  # not the main thread
                    return

    def _wrap(self, previous: Handler) -> Handler:
        def handler(signum: int, frame: FrameType | None) -> None:
            now = time.monotonic()
            if self._signalled is None:
                self._signalled = (signum, now)
            elif self._signalled[0] == signum and now - self._signalled[1] < REPEAT_WINDOW:
                return  # the same request again (sent to the whole process group)
            self.begin(f"Received {signal.Signals(signum).name}")
            previous(signum, frame)

        return handler

    def begin(self, reason: str) -> None:
        """Stop taking work now; the sweep runs on the drain thread (no I/O in a signal handler)."""
        if self._begun_at is not None:
            return
        self._begun_at = time.monotonic()
        self._reason = reason
        self.intake.draining.set()
        self._wake.set()

    # -- the worker's life --------------------------------------------------------------------------

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        """A fresh start (an in-process Worker may be started again on the same broker)."""
        self._worker = None
        self._begun_at, self._sweep_done = None, False
        self._signalled = None
        self._wake.clear()
        with self._cond:
            self._active.clear()
        self.intake.draining.clear()

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._worker = worker
        threading.Thread(target=self._on_wake, name="gabay-drain", daemon=True).start()

    def _on_wake(self) -> None:
        self._wake.wait()
        self._sweep()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._worker = worker
        self.begin("Shutdown requested")
        self.intake.draining.set()
        self._sweep()
        assert self._begun_at is not None
        deadline = self._begun_at + self.drain_timeout
        while True:
            with self._cond:
                remaining = deadline - time.monotonic()
                if not self._active or remaining <= 0:
                    unfinished = list(self._active.values())
                    break
                self._cond.wait(min(remaining, RESWEEP_EVERY))
            self._sweep()  # anything a fetch in flight at the signal delivered since
        if not unfinished:
            logger.info("All active jobs completed")
        else:
            count = self._put_back([(m.queue_name, m) for m, _ in unfinished], acked_later=True)
            busy = {ident for _, ident in unfinished}
            for thread in worker.workers:
                if thread.ident in busy:
                    thread.stop()
            worker.workers[:] = [t for t in worker.workers if t.ident not in busy]
            logger.warning("Drain timeout reached: requeued %d unfinished job(s)", count)
        self._stop_consumers(worker)

    def _stop_consumers(self, worker: Worker) -> None:
        """Nothing is fetched or handed over any more: let the consumer threads end now.

        Dramatiq stops them only after joining the worker threads, and each then finishes its
        pause. The finished jobs' acks do not need them (a worker thread acks through the
        consumer object, which stays open until Dramatiq closes it).
        """
        for thread in list(worker.consumers.values()):
            thread.stop()
            consumer = getattr(thread, "consumer", None)
            if consumer is not None and hasattr(consumer, "wake"):
                consumer.wake()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._begun_at is not None:
            logger.info("Graceful shutdown completed in %.1f s", time.monotonic() - self._begun_at)
        self._exit_pipe = _hold_log_pipe_past_exit()

    # -- messages -----------------------------------------------------------------------------------

    def before_process_message(self, broker: Broker, message: Message) -> None:
        with self._cond:
            if not self.intake.draining.is_set():
                self._active[message.options.get("redis_message_id", message.message_id)] = (
                    message, threading.get_ident())
                return
        self.intake.leave_if_draining(message)

    def after_process_message(self, broker: Broker, message: Message, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        self._finished(message)

    def after_skip_message(self, broker: Broker, message: Message) -> None:
        self._finished(message)

    def _finished(self, message: Message) -> None:
        with self._cond:
            ended = self._active.pop(message.options.get("redis_message_id", message.message_id), None)
            if ended is not None and self._begun_at is not None:  # only a drain waits on it
                self._cond.notify_all()

    # -- putting back -------------------------------------------------------------------------------

    def _sweep(self) -> None:
        """Put back everything fetched but not started; the first time, also stop the threads."""
        with self._swept:
            if self._worker is None:
                return
            first, self._sweep_done = not self._sweep_done, True
            if first:
                logger.info("%s, shutting down gracefully...", self._reason)
                for thread in self._worker.workers:
                    thread.stop()  # each finishes its current job and takes no other
            count = self._put_back(self._take_unstarted(self._worker), acked_later=False)
            if count:
                logger.info("Put back %d fetched but unstarted message(s) for other workers", count)
            with self._cond:
                active = len(self._active)
            if first and active:
                logger.info("Waiting for %d active jobs to complete...", active)

    def _take_unstarted(self, worker: Worker) -> list[tuple[str, Any]]:
        """Empty the in-memory work queue and the delayed messages held by the consumers."""
        taken: list[tuple[str, Any]] = []
        for _, message in iter_queue(worker.work_queue):
            worker.work_queue.task_done()
            taken.append((message.queue_name, message))
        for name, thread in list(worker.consumers.items()):
            for _, message in iter_queue(thread.delay_queue):
                thread.delay_queue.task_done()
                taken.append((name, message))
        for name, message in taken:
            consumer = getattr(worker.consumers.get(name), "consumer", None)
            if consumer is not None and hasattr(consumer, "forget"):
                consumer.forget(message)
        return taken

    def _put_back(self, items: list[tuple[str, Any]], *, acked_later: bool) -> int:
        if not items:
            return 0
        by_queue: dict[str, list[Any]] = defaultdict(list)
        for name, message in items:
            by_queue[name].append(message)
        count = 0
        for name, messages in by_queue.items():
            try:
                count += self.intake.put_back(name, messages, acked_later=acked_later)
            except redis.RedisError as exc:
                logger.error("Could not put back %d message(s) of %s (they come back after the "
                             "heartbeat timeout): %s", len(messages), name, exc)
        return count


# -- the exit ---------------------------------------------------------------------------------------

def _hold_log_pipe_past_exit() -> int | None:
    """In a worker process of the ``dramatiq`` command: start the helper of the module docstring.

    Returns the write end of the helper's stdin, to be kept open until this process ends.
    """
    log_pipe = sys.stderr
    if not isinstance(log_pipe, StreamablePipe) or not sys.executable:
        return None  # an in-process Worker: no main process waits on a pipe
    read_end, write_end = os.pipe()
    try:
        subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LOG_PIPE_HOLDER, str(os.getpid()),
             str(LOG_PIPE_GRACE)],
            stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(log_pipe.fileno(),))
    except (OSError, ValueError) as exc:
        os.close(write_end)
        logger.debug("No log pipe helper (the main process exits up to 1 s later): %s", exc)
        return None
    finally:
        os.close(read_end)
    return write_end
