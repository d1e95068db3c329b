"""The demo: start real workers, enqueue real work from the sample files, show the results.

It runs on whatever Redis gabay resolves (the embedded one on a machine without Redis) and with
whatever providers are configured (the offline provider and the file outbox without keys).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable

from gabay.cluster.connection import describe_url, resolve_redis_url
from gabay.ops.demo.context import Demo
from gabay.ops.demo.feedback import demo_feedback
from gabay.ops.demo.questions import demo_questions
from gabay.ops.demo.round_trip import demo_round_trip
from gabay.settings import Settings

STEPS: list[Callable[[Demo], None]] = [demo_round_trip, demo_questions, demo_feedback]


def run_demo(settings: Settings, processes: int = 2, threads: int = 4) -> int:
    """Start workers, run every step, stop the workers gracefully; return an exit code."""
    demo = Demo(settings)
    demo.say(f"Redis: {describe_url(resolve_redis_url(settings))}")
    settings.gabay_data_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.gabay_data_dir / "demo-workers.log"
    demo.say(f"Worker log: {log_path}")
    log = open(log_path, "ab")  # noqa: SIM115 (closed below, after the workers stopped)
    workers = subprocess.Popen(
        [sys.executable, "-m", "gabay.cli", "workers", "-p", str(processes), "-t", str(threads)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        for step in STEPS:
            demo.say(f"\n== {(step.__doc__ or step.__name__).strip()}")
            step(demo)
    finally:
        demo.say("\nStopping the workers (graceful drain)...")
        workers.send_signal(signal.SIGTERM)
        code = workers.wait(timeout=settings.drain_timeout + 30)
        log.close()
        demo.say(f"Workers stopped (exit code {code}); their log is {log_path}")
    return 0

