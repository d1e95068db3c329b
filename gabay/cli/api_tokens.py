"""``gabay api-token create NAME``: a bearer token for a client of the HTTP enqueue API.

The token is printed once; the server keeps only its SHA-256 (the ``API_TOKENS`` entry printed
with it), so a leaked configuration does not leak a token. Revoking a client is removing its
entry and restarting the dashboard.
"""

from __future__ import annotations

import re
import secrets

import click

from gabay.cli import main

TOKEN_BYTES = 32


@main.group("api-token")
def api_token() -> None:
    """Bearer tokens of the HTTP enqueue API (/api/v1/)."""


@api_token.command("create")
@click.argument("name")
def create(name: str) -> None:
    """Make a token for client NAME; print it and the API_TOKENS entry to add."""
    from gabay.web.enqueue_api import token_digest  # here: the web stack is heavy for the other commands

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise click.BadParameter("letters, digits, '_', '.' and '-' only (at most 64)", param_hint="NAME")
    token = "gbt_" + secrets.token_urlsafe(TOKEN_BYTES)
    click.echo(f"token (give it to {name}; it is not shown again): {token}")
    click.echo(f"API_TOKENS entry (comma-separated with the others): {name}:{token_digest(token)}")
