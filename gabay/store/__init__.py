"""The durable results store: exams, submissions, question results and the LLM cost ledger in SQL."""

import logging

# Alembic logs "setup plugin ..." at INFO when it is imported: seven lines in front of every
# worker process's start-up (and of its one-line errors) that say nothing to an operator.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
