"""Submissions keep their grade, exams their answer key; the analytics of each exam.

Revision ID: 0003_exam_analytics
Revises: 0002_answer_key_version
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_exam_analytics"
down_revision = "0002_answer_key_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("grade", sa.JSON()))
    with op.batch_alter_table("exams") as batch:
        batch.add_column(sa.Column("answer_key", sa.JSON()))
    op.create_table(
        "exam_analytics",
        sa.Column("form_id", sa.String(200), primary_key=True),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("submissions", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("exam_analytics")
    with op.batch_alter_table("exams") as batch:
        batch.drop_column("answer_key")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("grade")
