"""items: a serial key and an identity key"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("item", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text))
    op.execute("CREATE TABLE item_event (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item_id int)")


def downgrade() -> None:
    op.drop_table("item_event")
    op.drop_table("item")
