"""The file outbox: with no ``BREVO_API_KEY`` every email becomes one ``.eml`` file (RFC 5322).

A file is named after its submission and appears atomically: it is written to a temporary file,
then hard-linked to its final name, which fails if that name exists. So a submission never has
two files, and a reader never sees half a file.
"""

from __future__ import annotations

import email.policy
import os
import re
import uuid
from email.message import EmailMessage
from pathlib import Path


def eml_name(response_id: str, job_id: str) -> str:
    """``resp-0004--b9cd9760.eml``: readable, and unique even when the id had odd characters."""
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", response_id)[:80].lstrip(".") or "submission"
    return f"{readable}--{job_id.removeprefix('fb-')[:8]}.eml"


def write_once(directory: Path, name: str, message: EmailMessage) -> tuple[Path, bool]:
    """Write ``message`` as ``directory/name`` unless it exists; return the path and whether we wrote it."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    if final.exists():
        return final, False
    temporary = directory / f".{name}.{uuid.uuid4().hex}.tmp"
    data = message.as_bytes(policy=email.policy.SMTP)
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, final)
        created = True
    except FileExistsError:
        created = False
    finally:
        temporary.unlink(missing_ok=True)
    return final, created
