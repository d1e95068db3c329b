"""The feedback step of the demo: every sample submission through real workers to an email."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

from gabay.jobs import JobStatus
from gabay.mail.delivery import describe_delivery
from gabay.ops.demo.context import Demo

TIMEOUT_SECONDS = 300.0


def demo_feedback(demo: Demo) -> None:
    """Exam feedback for the sample submissions (AI feedback -> Jinja email -> Brevo or outbox)."""
    # Imported when the step runs: importing gabay.actors reads the settings and builds the broker.
    from gabay.actors.feedback import context, process_form_response

    files = sorted((demo.examples / "submissions").glob("*.json"))
    jobs = [(path, process_form_response.send(json.loads(path.read_text(encoding="utf-8"))))
            for path in files]
    demo.say(f"Enqueued {len(jobs)} submissions on form-response-processing.")
    shown: Path | None = None
    for path, job_id in jobs:
        record = context.store.wait(job_id, TIMEOUT_SECONDS)
        if record.status is not JobStatus.SUCCEEDED or record.result is None:
            demo.say(f"  {path.name}: FAILED: {record.error}")
            continue
        result = record.result
        demo.say(f"  {path.name}: {result['score']['label']}  \"{result['subject']}\"")
        demo.say(f"      to {result['to']} via {describe_delivery(result)}"
                 f" (feedback by {result['feedback_source'].split(' (')[0]})")
        if shown is None and result.get("outbox_path"):
            shown = Path(result["outbox_path"])
    if shown is not None and shown.exists():
        demo.say(f"\nThe text part of {shown.name}:\n")
        demo.say(email_text(shown))


def email_text(path: Path) -> str:
    """The text/plain body of an ``.eml`` file."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",)) if isinstance(message, email.message.EmailMessage) else None
    return body.get_content().replace("\r\n", "\n") if body is not None else ""
