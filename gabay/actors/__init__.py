"""Entry point of the worker system: ``dramatiq gabay.actors``.

Importing this package reads the settings once, builds the broker with gabay's middleware, makes it
Dramatiq's broker and declares every actor. The platform API imports it too and enqueues with
``actor.send()``.
"""

from __future__ import annotations

from gabay.errors import ConfigError
from gabay.settings import Settings, load_settings

try:
    settings: Settings = load_settings()
except ConfigError as exc:  # one clear line instead of a traceback
    raise SystemExit(f"gabay: {exc}") from None

from gabay.broker import GabayBroker, setup_broker

broker: GabayBroker = setup_broker(settings)

from gabay.actors import analytics, feedback, grading, questions  # noqa: E402,F401
from gabay.actors.analytics import analyse_exam  # noqa: E402
from gabay.actors.feedback import process_form_response  # noqa: E402
from gabay.actors.grading import grade_form_response  # noqa: E402
from gabay.actors.questions import generate_questions  # noqa: E402
from gabay.actors.system import probe  # noqa: E402

__all__ = ["analyse_exam", "broker", "generate_questions", "grade_form_response", "probe",
           "process_form_response", "settings"]
