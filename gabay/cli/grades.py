"""``gabay grades regrade KEY.json``: re-grade an exam's stored submissions with a new answer key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gabay.cli import get_settings, main
from gabay.errors import InvalidInput
from gabay.grading.key import parse_answer_key


@main.group()
def grades() -> None:
    """Grades kept in the results store."""


@grades.command()
@click.argument("answer_key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def regrade(ctx: click.Context, answer_key: Path) -> None:
    """Enqueue a re-grade of the key's exam (queue ``grading``); no student is emailed again."""
    get_settings(ctx)
    data = _read(answer_key)
    key = parse_answer_key(data)  # refused here, in one line, before anything is enqueued
    # Imported when the command runs: importing gabay.actors reads the settings and builds the broker.
    from gabay.actors.grading import regrade_exam

    message = regrade_exam.send(data)
    click.echo(f"Re-grade of exam {key.exam_id} with key version {key.version} enqueued "
               f"(message {message.message_id}).")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path} is not a JSON file: {exc}") from None
