"""``gabay questions FILE`` and ``gabay job ID`` against real worker processes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from gabay.cli import main
from gabay.jobs import JobStatus, JobStore
from gabay.settings import Settings
from tests.support.polling import wait_for

pytestmark = pytest.mark.slow

DOCUMENT = Path(__file__).resolve().parent.parent / "examples" / "documents" / "water-cycle.md"


def test_questions_follows_the_stages_and_prints_questions_with_answers(start_workers: Callable) -> None:
    start_workers(processes=1, threads=4)
    result = CliRunner().invoke(main, ["questions", str(DOCUMENT), "--count", "3",
                                       "--types", "multiple_choice,short_answer"])

    assert result.exit_code == 0, result.output
    for stage in ("retrieval", "generation", "validation"):
        assert f"{stage} done in" in result.output
    assert "succeeded" in result.output
    assert result.output.count("Answer:") == 3
    assert "[multiple_choice]" in result.output and "   A. " in result.output
    assert "[true_false]" not in result.output


def test_no_wait_returns_the_job_id_and_job_shows_it(start_workers: Callable,
                                                     store_for_cli: JobStore) -> None:
    start_workers(processes=1, threads=2)
    runner = CliRunner()
    enqueued = runner.invoke(main, ["questions", str(DOCUMENT), "--count", "2", "--no-wait"])
    assert enqueued.exit_code == 0, enqueued.output
    match = re.search(r"Job (\w+) enqueued", enqueued.output)
    assert match
    job_id = match.group(1)
    wait_for(lambda: store_for_cli.get(job_id).status == JobStatus.SUCCEEDED, timeout=60, message="the job")

    shown = runner.invoke(main, ["job", job_id, "--json"])
    assert shown.exit_code == 0, shown.output
    record = json.loads(shown.output)
    assert record["id"] == job_id and record["kind"] == "questions"
    assert len(record["result"]["questions"]) == 2
    readable = runner.invoke(main, ["job", job_id])
    assert "offline/extractive-v1" in readable.output and readable.output.count("Answer:") == 2


def test_bad_input_and_unknown_jobs_are_one_line_errors(tmp_path: Path, store_for_cli: JobStore) -> None:
    runner = CliRunner()
    empty = tmp_path / "empty.md"
    empty.write_text("   \n")
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")

    result = runner.invoke(main, ["questions", str(empty)])
    assert result.exit_code == 1 and "gabay: invalid question request: document.text" in result.output
    result = runner.invoke(main, ["questions", str(binary)])
    assert result.exit_code == 1 and "is not a UTF-8 text file" in result.output
    result = runner.invoke(main, ["questions", str(DOCUMENT), "--types", "essay"])
    assert result.exit_code == 1 and "question_types.0" in result.output
    result = runner.invoke(main, ["job", "no-such-job"])
    assert result.exit_code == 1 and "gabay: no job 'no-such-job'" in result.output


@pytest.fixture
def store_for_cli(redis_client: redis.Redis, settings: Settings) -> JobStore:
    return JobStore(redis_client, settings)
