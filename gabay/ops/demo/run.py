"""The demo: start real workers, enqueue real work from the sample files, show the results.

It runs on whatever Redis gabay resolves (the embedded one on a machine without Redis) and with
whatever providers are configured (the offline provider and the file outbox without keys).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from gabay.errors import GabayError
from gabay.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass
class Demo:
    """What every demo step needs: the settings and where the sample files are."""

    settings: Settings
    examples: Path = EXAMPLES

    def say(self, text: str = "") -> None:
        click.echo(text)


def step_round_trip(demo: Demo) -> None:
    """A probe through a real worker process."""
    from gabay.actors import broker, probe

    token = uuid.uuid4().hex
    started = time.monotonic()
    probe.send(token)
    answer = bytes(_poll(lambda: broker.client.get(demo.settings.keys.probe(token)), 30))  # type: ignore[call-overload]
    demo.say(f"Round trip through worker {answer.decode()}: {(time.monotonic() - started) * 1000:.0f} ms")


def step_questions(demo: Demo) -> None:
    """Question generation from the sample documents (retrieval -> generation -> validation)."""
    from gabay.ops.demo.questions import demo_questions

    demo_questions(demo)


def step_feedback(demo: Demo) -> None:
    """Exam feedback for the sample submissions (AI feedback -> Jinja email -> Brevo or outbox)."""
    from gabay.ops.demo.feedback import demo_feedback

    demo_feedback(demo)


STEPS: list[Callable[[Demo], None]] = [step_round_trip, step_questions, step_feedback]


def run_demo(settings: Settings, processes: int = 2, threads: int = 4) -> int:
    """Start workers, run every step, stop the workers gracefully; return an exit code."""
    from gabay.cluster.connection import describe_url, resolve_redis_url

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


def _poll(read: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if value:
            return value
        time.sleep(0.05)
    raise GabayError(f"no result within {timeout:g} s; see the worker log above")
