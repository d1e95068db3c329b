"""The first schema: exams, submissions, question results, the cost ledger.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exams",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("form_id", sa.String(200), nullable=False, unique=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("teacher_id", sa.String(80)),
        sa.Column("answer_key_version", sa.String(80), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("response_id", sa.String(200), nullable=False, unique=True),
        sa.Column("exam_id", sa.Integer, sa.ForeignKey("exams.id"), nullable=False),
        sa.Column("student_id", sa.String(80)),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("language", sa.String(40), nullable=False),
        sa.Column("answers", sa.JSON),
        sa.Column("grades", sa.JSON, nullable=False),
        sa.Column("earned", sa.Float, nullable=False),
        sa.Column("possible", sa.Float, nullable=False),
        sa.Column("pending_points", sa.Float, nullable=False),
        sa.Column("percent", sa.Integer),
        sa.Column("feedback_summary", sa.Text),
        sa.Column("feedback_source", sa.String(200), nullable=False),
        sa.Column("email_state", sa.String(20), nullable=False),
        sa.Column("email_via", sa.String(20)),
        sa.Column("email_message_id", sa.String(300)),
        sa.Column("outbox_file", sa.String(300)),
        sa.Column("job_id", sa.String(100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("anonymised_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_submissions_student_id", "submissions", ["student_id"])
    op.create_table(
        "question_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(100), nullable=False, unique=True),
        sa.Column("document_id", sa.String(200), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("accepted", sa.JSON, nullable=False),
        sa.Column("rejected", sa.JSON, nullable=False),
        sa.Column("shortfall", sa.Text),
        sa.Column("job_id", sa.String(100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "cost_ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(100), nullable=False),
        sa.Column("call_index", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("job_id", "call_index", name="uq_cost_ledger_job_call"),
    )


def downgrade() -> None:
    op.drop_table("cost_ledger")
    op.drop_table("question_results")
    op.drop_index("ix_submissions_student_id", table_name="submissions")
    op.drop_table("submissions")
    op.drop_table("exams")
