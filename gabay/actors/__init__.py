"""Entry point of the worker system: ``dramatiq gabay.actors``.

Importing this package reads the settings once, builds the broker with gabay's middleware, makes it
Dramatiq's broker and declares every actor. The platform API imports it too and enqueues with
``actor.send()``.
"""

from __future__ import annotations

from gabay.broker import GabayBroker, setup_broker
from gabay.cluster.connection import ping
from gabay.cluster.startup import in_dramatiq_worker_process, stop_on
from gabay.errors import GabayError
from gabay.settings import Settings, load_settings


def _start() -> tuple[Settings, GabayBroker]:
    """The settings and the broker; a wrong setting or, in a dramatiq worker process, a Redis that
    does not answer stops with one line (gabay.cluster.startup) instead of a traceback."""
    try:
        settings = load_settings()
        broker = setup_broker(settings)
        if in_dramatiq_worker_process():
            ping(broker.client)
    except GabayError as exc:
        stop_on(exc)
    return settings, broker


settings, broker = _start()

from gabay.actors import analytics, feedback, grading, questions  # noqa: E402,F401
from gabay.actors.analytics import analyse_exam  # noqa: E402
from gabay.actors.backups import run_backup  # noqa: E402
from gabay.actors.digests import send_digests, send_teacher_digest  # noqa: E402
from gabay.actors.feedback import process_form_response  # noqa: E402
from gabay.actors.grading import grade_form_response  # noqa: E402
from gabay.actors.questions import generate_questions  # noqa: E402
from gabay.actors.reports import send_due_reports, send_exam_report  # noqa: E402
from gabay.actors.system import probe  # noqa: E402

__all__ = ["analyse_exam", "broker", "generate_questions", "grade_form_response", "probe",
           "process_form_response", "run_backup", "send_digests", "send_due_reports", "send_exam_report",
           "send_teacher_digest", "settings"]
