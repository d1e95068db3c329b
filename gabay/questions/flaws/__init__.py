"""Item-writing-flaw rules: cheap checks in code that run on every draft before any model.

Each rule is a function ``(draft, context) -> message or None`` registered in
:mod:`gabay.questions.flaws.registry`; :func:`find_flaws` runs them all.
"""

from gabay.questions.flaws.registry import RULES, Flaw, FlawContext, find_flaws

__all__ = ["RULES", "Flaw", "FlawContext", "find_flaws"]
