"""Submissions keep the answer key version they were graded against; indexes for retention and costs.

Revision ID: 0002_answer_key_version
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_answer_key_version"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("answer_key_version", sa.String(80)))
    op.create_index("ix_submissions_submitted_at", "submissions", ["submitted_at"])
    op.create_index("ix_cost_ledger_at", "cost_ledger", ["at"])


def downgrade() -> None:
    op.drop_index("ix_cost_ledger_at", table_name="cost_ledger")
    op.drop_index("ix_submissions_submitted_at", table_name="submissions")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("answer_key_version")
