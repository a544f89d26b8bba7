"""datasets: a snapshot is reused for its own commit only (unique on commit and hash)

Two commits with the same content used to share one snapshot, so a snapshot asked for version 5
came back labelled 6. The hash stays a content hash: equal hashes still mean equal splits.

Revision ID: datasets_0002
Revises: datasets_0001
"""

from __future__ import annotations

from alembic import op

revision = "datasets_0002"
down_revision = "datasets_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_snapshots") as batch:
        batch.drop_constraint("uq_dataset_snapshots_dataset_id", type_="unique")
        batch.create_unique_constraint("uq_dataset_snapshots_commit_hash",
                                       ["dataset_id", "commit_id", "hash"])


def downgrade() -> None:
    # Fails where two commits of equal content each have a snapshot: remove one first.
    with op.batch_alter_table("dataset_snapshots") as batch:
        batch.drop_constraint("uq_dataset_snapshots_commit_hash", type_="unique")
        batch.create_unique_constraint("uq_dataset_snapshots_dataset_id", ["dataset_id", "hash"])
