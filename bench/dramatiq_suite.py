"""Dramatiq's own Redis broker tests, run against gabay's broker.

Dramatiq's tests (``tests/test_redis.py`` of its repository at the installed version's tag; the
sdist and the wheel carry no ``conftest.py``) run with their ``redis_broker`` fixture building a
:class:`gabay.broker.GabayBroker` (gabay's whole middleware stack) instead of a plain
``RedisBroker``, on a redis-server of their own (a free port: the tests' FLUSHALL touches nothing
else). The one change made to the tests themselves: their hard-coded key prefix ``"dramatiq:``
follows the broker's namespace (``gabay:dramatiq:`` with the default ``GABAY_KEY_PREFIX``).

Every test must pass, except those in :data:`DIFFERENCES`: behaviour gabay changes on purpose,
each with the reason (see README, "Differences from plain Dramatiq"). The exit code is 1 when
another test fails (a regression) and 0 otherwise; an expected difference that passes is reported
so that the list can shrink. Run (about a minute):

    .venv/bin/python bench/dramatiq_suite.py                     # clones the tag from GitHub
    .venv/bin/python bench/dramatiq_suite.py --source ../dramatiq  # a checkout at that tag
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as ``python bench/<file>``

import dramatiq

from gabay.keys import Keys
from tests.chaos.redis_server import RedisServer

REPOSITORY = "https://github.com/Bogdanp/dramatiq"
TESTS = "tests/test_redis.py"

#: Tests that fail against gabay's broker because gabay changes that behaviour on purpose.
DIFFERENCES = {
    "test_redis_unacked_messages_can_be_requeued":
        "Dramatiq's random maintenance pass is off (maintenance_chance is ignored); gabay's "
        "recovery pass requeues a dead worker's messages instead (gabay.cluster.dead_workers)",
    "test_redis_dead_lettered_messages_are_cleaned_up":
        "dead letters older than dead_message_ttl expire in gabay's recovery pass (once a second, "
        "with the TTL the broker was built with), not in a maintenance pass of do_qsize",
    "test_redis_broker_maintains_backwards_compat_with_old_acks":
        "the same maintenance pass migrates Dramatiq's pre-1.0 acks; gabay never wrote them",
    "test_redis_requeues_unhandled_delay_messages_on_shutdown":
        "delayed messages wait in gabay's due set, not in Dramatiq's .DQ queue",
    "test_redis_join_race_condition":
        "a delayed message's data stays in its queue's message hash (the due set holds its id), so "
        "do_qsize counts it once in the queue, not in .DQ plus its ack: 3 where Dramatiq says 4 "
        "(join still waits for it)",
}
#: Tests of a plain ``RedisBroker`` built by the test itself (on 127.0.0.1:6379): not our broker.
NOT_OURS = ("test_redis_broker_can_connect_via_url", "test_redis_broker_can_connect_via_client",
            "test_redis_broker_warns_about_deprecated_parameters")

CONFTEST = '''
"""The fixtures of Dramatiq's tests that test_redis.py uses, on gabay's broker."""

import os

import dramatiq
import pytest
import redis
from dramatiq import Worker

from gabay.broker import GabayBroker
from gabay.settings import load_settings


@pytest.fixture()
def redis_broker():
    settings = load_settings()
    broker = GabayBroker(settings=settings, client=redis.Redis.from_url(os.environ["REDIS_URL"]))
    broker.client.flushall()  # the suite's own redis-server
    broker.emit_after("process_boot")
    dramatiq.set_broker(broker)
    yield broker
    broker.client.flushall()
    broker.close()


@pytest.fixture()
def redis_worker(redis_broker):
    worker = Worker(redis_broker, worker_threads=32)
    worker.start()
    yield worker
    worker.stop()
'''

COMMON = '''
"""What test_redis.py imports from Dramatiq's tests/common.py (which also needs RabbitMQ's pika)."""

from contextlib import contextmanager

from dramatiq import Worker


@contextmanager
def worker(*args, **kwargs):
    try:
        worker = Worker(*args, **kwargs)
        worker.start()
        yield worker
    finally:
        worker.stop()
'''


def fetch_tests(source: Path | None, into: Path) -> Path:
    """Dramatiq's tests at the installed version: from ``source`` or a shallow clone of the tag."""
    if source is None:
        source = into / "dramatiq"
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch",
                        f"v{dramatiq.__version__}", REPOSITORY, str(source)], check=True)
    tests = source / "tests" if (source / "tests").is_dir() else source
    if not (tests / "test_redis.py").is_file():
        raise SystemExit(f"no test_redis.py in {tests}")
    return tests


def prepare(tests: Path, work: Path, namespace: str) -> Path:
    """A package ``tests`` in ``work``: test_redis.py with the prefix patched, our fixtures."""
    package = work / "tests"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (package / "common.py").write_text(textwrap.dedent(COMMON))
    text = (tests / "test_redis.py").read_text()
    (package / "test_redis.py").write_text(text.replace('"dramatiq:', f'"{namespace}:'))
    return package / "test_redis.py"


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """Test name -> (passed / failed / skipped, the first line of the failure)."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        problem = next((child for child in case if child.tag in ("failure", "error")), None)
        skipped = next((child for child in case if child.tag == "skipped"), None)
        if problem is not None:
            found[case.attrib["name"]] = ("failed", (problem.attrib.get("message") or "").split("\n")[0])
        elif skipped is not None:
            found[case.attrib["name"]] = ("skipped", skipped.attrib.get("message", ""))
        else:
            found[case.attrib["name"]] = ("passed", "")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, help="a checkout of Dramatiq (or its tests/) "
                                                    f"at v{dramatiq.__version__}")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="dramatiq-suite-") as tmp:
        work = Path(tmp)
        test_file = prepare(fetch_tests(args.source, work), work / "suite", Keys().namespace)
        server = RedisServer(work / "redis", appendonly=False).start()
        try:
            env = {name: value for name, value in os.environ.items()
                   if not name.startswith(("REDIS_", "GABAY_", "DATABASE_URL"))}
            env.update(REDIS_URL=server.url, GABAY_DATA_DIR=str(work / "data"), DRAIN_TIMEOUT="2",
                       PYTHONPATH=os.pathsep.join([str(work / "suite"), str(root)]))
            junit = work / "junit.xml"
            deselect = [f"--deselect={test_file}::{name}" for name in NOT_OURS]
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "--rootdir", str(work / "suite"), f"--junitxml={junit}",
                            "-o", "timeout=60", *deselect, str(test_file)],
                           env=env, cwd=work / "suite", check=False)
            found = outcomes(junit)
        finally:
            server.stop()
    return report(found)


def report(found: dict[str, tuple[str, str]]) -> int:
    passed = [name for name, (state, _) in found.items() if state == "passed"]
    failed = {name: why for name, (state, why) in found.items() if state == "failed"}
    regressions = {name: why for name, why in failed.items() if name not in DIFFERENCES}
    print(f"\nDramatiq {dramatiq.__version__} {TESTS} against GabayBroker: {len(passed)} passed, "
          f"{len(failed)} failed ({len(failed) - len(regressions)} expected), "
          f"{len(NOT_OURS)} not run (they build a plain RedisBroker)")
    for name, why in sorted(failed.items()):
        reason = DIFFERENCES.get(name)
        print(f"  {'expected' if reason else 'REGRESSION'}: {name}: {reason or why}")
    for name in sorted(set(DIFFERENCES) & set(passed)):
        print(f"  now passes (remove it from DIFFERENCES): {name}")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
