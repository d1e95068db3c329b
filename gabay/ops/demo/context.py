"""What every demo step is given: the settings, where the sample files are, and how to speak."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from gabay.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"  # the repository's sample files


@dataclass
class Demo:
    """What every demo step needs: the settings and where the sample files are."""

    settings: Settings
    examples: Path = EXAMPLES

    def say(self, text: str = "") -> None:
        click.echo(text)
