"""The demo: start real workers, enqueue real work from the sample files, show the results.

It runs on whatever Redis gabay resolves (the embedded one on a machine without Redis) and with
whatever providers are configured (the offline provider and the file outbox without keys).

It stops what it started, however it ends (done, a failed step, Ctrl-C, SIGTERM): the workers
with a graceful drain, then the embedded Redis if this run started it (its data stays on disk).
An embedded Redis that was already running is left running, and the demo says so and how to stop
it. The workers run in a session of their own, so a Ctrl-C reaches them once, through the demo.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from types import FrameType

from gabay.cluster.connection import describe_url, resolve_redis_url
from gabay.cluster.embedded_redis import EmbeddedRedis
from gabay.ops.demo.context import Demo
from gabay.ops.demo.feedback import demo_feedback
from gabay.ops.demo.questions import demo_questions
from gabay.ops.demo.round_trip import demo_round_trip
from gabay.settings import Settings

STEPS: list[Callable[[Demo], None]] = [demo_round_trip, demo_questions, demo_feedback]
#: Exit code of a demo stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def run_demo(settings: Settings, processes: int = 2, threads: int = 4) -> int:
    """Start workers, run every step, stop what was started; return an exit code."""
    demo = Demo(settings)
    embedded = EmbeddedRedis(settings.gabay_data_dir)
    embedded_before = embedded.is_running()
    url = resolve_redis_url(settings)
    on_embedded = url.startswith(embedded.url)
    demo.say(f"Redis: {describe_url(url)}"
             + (" (embedded, started for this demo)" if on_embedded and not embedded_before else ""))
    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM cleans up like Ctrl-C
    try:
        return _with_workers(demo, processes, threads)
    except KeyboardInterrupt:  # during the stop of the workers
        return INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
        if on_embedded and not embedded_before:
            embedded.stop()
            demo.say(f"Stopped the embedded Redis this demo started (its data stays in "
                     f"{embedded.directory}).")
        elif on_embedded:
            demo.say(f"The embedded Redis ({embedded.directory}) was running before the demo and "
                     f"keeps running; `gabay redis stop` stops it.")


def _with_workers(demo: Demo, processes: int, threads: int) -> int:
    settings = demo.settings
    settings.gabay_data_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.gabay_data_dir / "demo-workers.log"
    demo.say(f"Worker log: {log_path}")
    code = 0
    with open(log_path, "ab") as log:
        workers = subprocess.Popen(
            [sys.executable, "-m", "gabay.cli", "workers", "-p", str(processes), "-t", str(threads)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            for step in STEPS:
                demo.say(f"\n== {(step.__doc__ or step.__name__).strip()}")
                step(demo)
        except KeyboardInterrupt:
            demo.say("\nInterrupted.")
            code = INTERRUPTED
        finally:
            demo.say("\nStopping the workers (graceful drain)...")
            workers.send_signal(signal.SIGTERM)
            try:
                exit_code = workers.wait(timeout=settings.drain_timeout + 30)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                os.killpg(workers.pid, signal.SIGKILL)  # the supervisor and every worker process
                exit_code = workers.wait()
                code = code or INTERRUPTED
            demo.say(f"Workers stopped (exit code {exit_code}); their log is {log_path}")
    return code


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
