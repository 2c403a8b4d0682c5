"""tags"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("tag", sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True), sa.Column("t", sa.Text))


def downgrade() -> None:
    op.drop_table("tag")
