"""How a rate-limited message waits for its start: briefly inside its worker thread, else deferred.

A deferred message waits in the due set (:mod:`gabay.cluster.due`) and comes back to its queue
on time, but then waits for a consumer's fetch and a free thread. That is fine for waits of
minutes but would waste most of a short window (5 starts per 2 s). So the rate limit uses one rule:

* a wait of at most ``HOLD_MS`` is spent inside the worker thread (a sleep until the exact start
  time), which is precise to a few milliseconds;
* a longer wait defers the message (``gabay.cluster.deferral.defer``) to come back ``LEAD_MS``
  before its time; the rest of the wait is then short and spent in the thread.

A thread therefore holds a limited message for at most about ``HOLD_MS`` per delivery, and a
backlog costs one deferral per message in the common case instead of a re-check storm. (A cap
does not wait in the thread: see the waiting room in :mod:`gabay.limits.leases`.)
"""

from __future__ import annotations

#: Longest wait spent inside a worker thread (milliseconds).
HOLD_MS = 2000
#: A deferred message comes back this much before its expected start (milliseconds).
LEAD_MS = 1000


def should_hold(wait_ms: float, budget_ms: float) -> bool:
    """True when a wait of ``wait_ms`` is spent in the thread (it fits the remaining budget)."""
    return wait_ms <= min(HOLD_MS, budget_ms)


def deferral_delay(wait_ms: float) -> int:
    """Delay to defer a message whose start is ``wait_ms`` away: come back ``LEAD_MS`` early.

    A long wait comes back early so that the end of it is spent precisely in the thread; a short
    one (possible only once the hold budget is spent) is deferred by the whole wait.
    """
    wait = max(int(wait_ms), 1)
    return wait - LEAD_MS if wait > HOLD_MS else wait
