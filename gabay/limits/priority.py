"""Priorities: a name or an integer per actor and per message, honoured across every process.

``@dramatiq.actor(priority=...)`` (Dramatiq's own option, lower runs sooner) or
``actor.send_with_options(args=..., priority="urgent")``; the message option wins. Names:
``urgent`` (-100), ``high`` (-50), ``normal`` (0), ``low`` (50), ``bulk`` (100).

Where it acts:

* At enqueue, an urgent or high message (priority < 0) goes to the **head** of its queue: the
  next fetch of any process takes it, ahead of a backlog of normal ones.
* In a cap's waiting room (:mod:`gabay.limits.leases`) the rank moves by ``priority`` jobs: an
  urgent message ranks ahead of every waiting backlog (also its own tenant's), a bulk one behind
  the next 100 jobs of each backlogged tenant. A message that has waited 10 minutes goes next
  whatever its rank, so a stream of urgent messages cannot starve the others.
* An invalid priority fails the ``send`` with a one-line ``ValueError``.
"""

from __future__ import annotations

from typing import Any

#: The named priorities (lower runs sooner).
PRIORITIES = {"urgent": -100, "high": -50, "normal": 0, "low": 50, "bulk": 100}
#: The message option (a name or an integer).
PRIORITY_OPTION = "priority"


def parse_priority(value: Any) -> int:
    """An integer priority from a name or an integer; ValueError for anything else."""
    if isinstance(value, str) and value.strip().lower() in PRIORITIES:
        return PRIORITIES[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and -1000 <= value <= 1000:
        return value
    raise ValueError(f"priority must be one of {', '.join(PRIORITIES)} or an integer in "
                     f"[-1000, 1000], not {value!r}")


def priority_name(priority: int) -> str:
    """``urgent`` for -100 and so on; other integers as they are (for the status)."""
    return next((name for name, value in PRIORITIES.items() if value == priority), str(priority))


def priority_of(broker: Any, message: Any) -> int:
    """The message's priority: its option, else its actor's, else normal (0)."""
    value = message.options.get(PRIORITY_OPTION)
    if value is None:
        try:
            value = broker.get_actor(message.actor_name).priority
        except Exception:  # an actor this process does not know: no priority of its own
            return 0
    try:
        return parse_priority(value)
    except ValueError:
        return 0
