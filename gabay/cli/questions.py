"""``gabay questions FILE``: generate questions from a document; ``gabay job ID``: show any job."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gabay.cli import get_redis, get_settings, main
from gabay.errors import InvalidInput
from gabay.jobs import JobRecord, JobStatus, JobStore
from gabay.questions.models import ALL_TYPES
from gabay.web.private import operator_record

POLL_SECONDS = 0.2


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--count", "-n", default=5, show_default=True, help="How many questions (1-50).")
@click.option("--types", default=",".join(ALL_TYPES), show_default=True,
              help="Comma-separated question types.")
@click.option("--topic", default=None, help="Focus the questions on this topic.")
@click.option("--difficulty", type=click.Choice(["easy", "medium", "hard"]), default="medium",
              show_default=True)
@click.option("--language", default="en", show_default=True)
@click.option("--title", default=None, help="Document title (default: the file name).")
@click.option("--no-wait", is_flag=True, help="Print the job id and return at once.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for the result.")
@click.pass_context
def questions(ctx: click.Context, file: Path, count: int, types: str, topic: str | None,
              difficulty: str, language: str, title: str | None, no_wait: bool, timeout: float) -> None:
    """Enqueue FILE for question generation, follow its stages and print the questions."""
    get_settings(ctx)
    # Imported when the command runs: importing gabay.actors reads the settings and builds the broker.
    from gabay.actors.questions import generate_questions, store

    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{file} is not a UTF-8 text file") from None
    request = {
        "document": {"id": file.stem, "title": title or file.stem, "text": text},
        "count": count, "question_types": [t.strip() for t in types.split(",") if t.strip()],
        "difficulty": difficulty, "topic": topic, "language": language,
    }
    job_id = generate_questions.send(request)
    click.echo(f"Job {job_id} enqueued.")
    if no_wait:
        click.echo(f"Follow it with: gabay job {job_id}")
        return
    record = follow(store, job_id, timeout)
    show(record)
    if record.status == JobStatus.FAILED:
        ctx.exit(1)


@main.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="The whole record as JSON.")
@click.pass_context
def job(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Show a job (question generation or feedback): status, stages, cost, result or error."""
    settings = get_settings(ctx)
    record = JobStore(get_redis(ctx), settings).get(job_id)
    if as_json:
        click.echo(json.dumps(operator_record(record.model_dump(mode="json")), indent=2))
    else:
        show(record)


def follow(store: JobStore, job_id: str, timeout: float) -> JobRecord:
    """Print each stage as it starts and finishes; return the finished record."""
    seen: set[str] = set()

    def report(record: JobRecord) -> None:
        for stage, timing in record.stages.items():
            if stage not in seen:
                seen.add(stage)
                click.echo(f"  {stage} started")
            if timing.finished_at is not None and f"{stage}:done" not in seen:
                seen.add(f"{stage}:done")
                click.echo(f"  {stage} done in {(timing.seconds or 0) * 1000:.0f} ms")

    return store.wait(job_id, timeout, on_poll=report)


def show(record: JobRecord) -> None:
    """A readable summary of a job record."""
    click.echo(f"Job {record.id} ({record.kind}): {record.status}"
               + (f", stage {record.stage}" if record.stage else ""))
    for stage, timing in record.stages.items():
        took = f"{timing.seconds * 1000:.0f} ms" if timing.seconds is not None else "running"
        click.echo(f"  {stage}: {took}")
    for call in record.calls:
        state = "ok" if call.ok else f"failed: {call.error}"
        click.echo(f"  call {call.stage} {call.provider}/{call.model}: {call.prompt_tokens}+"
                   f"{call.completion_tokens} tokens, ${call.cost_usd:.6f}, "
                   f"{call.duration_ms:.0f} ms, {state}")
    click.echo(f"  total: {record.total_tokens} tokens, ${record.cost_usd:.6f}")
    if record.callback is not None:  # the delivery of the job's callback (gabay.callbacks)
        callback = record.callback
        click.echo(f"  callback: {callback.state} after {callback.attempts} attempt(s)"
                   + (f", last error: {callback.last_error}" if callback.last_error else ""))
    if record.error:
        click.echo(f"Error: {record.error}")
    if record.result is None:
        return
    if record.kind == "questions":
        show_questions(record.result)
    else:  # ids only: no student address, subject or feedback text on an operator's screen
        click.echo(json.dumps(operator_record({"result": record.result})["result"], indent=2,
                              ensure_ascii=False))


def show_questions(result: dict[str, object], limit: int | None = None) -> None:
    questions = result.get("questions")
    items = questions if isinstance(questions, list) else []
    for number, item in enumerate(items[:limit], start=1):
        click.echo(f"\n{number}. [{item['type']}] {item['question']}")
        for letter, option in zip("ABCDEF", item.get("options") or [], strict=False):
            click.echo(f"   {letter}. {option}")
        click.echo(f"   Answer: {item['answer']}  (passage {item['passage_id']})")
    if result.get("shortfall"):
        click.echo(f"\nShortfall: {result['shortfall']}")
