"""Job runs record who runs them, so a run whose worker died can be told from a live one.

A worker SIGKILLed (a platform's kill, out of memory) leaves its job run `running`; Run now on
the System page refused for up to two hours. Each run now records its RQ job, its RQ worker
and its process (`<boot id>/<PID namespace>/<pid>/<start time>`), and a `running` row whose
process is gone, whose worker no longer reports to Redis or whose RQ job is no longer started
is closed as failed with the reason (app.jobs.runs.close_abandoned_runs).

Revision ID: 0013_job_run_runner
Revises: 0012_status_callbacks
Create Date: 2026-12-01 18:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_job_run_runner"
down_revision = "0012_status_callbacks"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("job_runs", sa.Column("rq_job_id", sa.String(length=200), nullable=True))
    op.add_column("job_runs", sa.Column("worker_name", sa.String(length=200), nullable=True))
    op.add_column("job_runs", sa.Column("process", sa.String(length=120), nullable=True))


def downgrade():
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("process")
        batch.drop_column("worker_name")
        batch.drop_column("rq_job_id")
