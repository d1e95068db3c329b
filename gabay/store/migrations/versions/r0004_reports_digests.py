"""Teachers (the address of their reports and digests), the exams' PDF reports, the digests sent,
the feedback emails that failed for good (counted by the digests).

Revision ID: 0004_reports_digests
Revises: 0003_exam_analytics
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_reports_digests"
down_revision = "0003_exam_analytics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teachers",
        sa.Column("teacher_id", sa.String(80), primary_key=True),
        sa.Column("email", sa.String(320)),
        sa.Column("name", sa.String(200)),
        sa.Column("time_zone", sa.String(64)),
        sa.Column("digests_opt_out", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "exam_reports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("report_id", sa.String(100), nullable=False, unique=True),
        sa.Column("form_id", sa.String(200), nullable=False),
        sa.Column("teacher_id", sa.String(80)),
        sa.Column("analytics_computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("email_state", sa.String(20), nullable=False),
        sa.Column("email_via", sa.String(20)),
        sa.Column("email_message_id", sa.String(300)),
        sa.Column("outbox_file", sa.String(300)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_exam_reports_form_id", "exam_reports", ["form_id"])
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("teacher_id", sa.String(80), nullable=False),
        sa.Column("period", sa.String(20), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("job_id", sa.String(100), nullable=False),
        sa.Column("email_via", sa.String(20)),
        sa.Column("email_message_id", sa.String(300)),
        sa.Column("outbox_file", sa.String(300)),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("teacher_id", "period", "period_start", name="uq_digests_teacher_period"),
    )
    op.create_table(
        "email_failures",
        sa.Column("response_id", sa.String(200), primary_key=True),
        sa.Column("form_id", sa.String(200), nullable=False),
        sa.Column("teacher_id", sa.String(80)),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_email_failures_teacher_id", "email_failures", ["teacher_id"])


def downgrade() -> None:
    op.drop_index("ix_email_failures_teacher_id", table_name="email_failures")
    op.drop_table("email_failures")
    op.drop_table("digests")
    op.drop_index("ix_exam_reports_form_id", table_name="exam_reports")
    op.drop_table("exam_reports")
    op.drop_table("teachers")
