"""the initial logit map L in its own column

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 02:30:00

``run_samples.logits`` holds L of the trace (zlib-compressed ``.npy`` bytes, float16 (H, W)),
which the trace JSON in ``run_samples.trace`` carried before (``"initial_logits"``: base64 of the
same float16 values). Viewers load a trace without L and no longer decompress and parse it.
Upgrading moves every saved L into the new column; downgrading moves it back. The float16
values are moved, never re-quantised, so both directions keep them bit for bit.
"""

from __future__ import annotations

import base64
import io
import json
import zlib

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_rows = sa.table(
    "run_samples",
    sa.column("id", sa.Integer),
    sa.column("trace", sa.LargeBinary),
    sa.column("logits", sa.LargeBinary),
)


def _npy(raw: bytes, dtype: str, shape: list[int]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(raw, dtype=dtype).reshape(shape), allow_pickle=False)
    return zlib.compress(buf.getvalue(), 1)


def upgrade() -> None:
    with op.batch_alter_table("run_samples", schema=None) as batch_op:
        batch_op.add_column(sa.Column("logits", sa.LargeBinary(), nullable=True))
    conn = op.get_bind()
    for row_id, blob in conn.execute(sa.select(_rows.c.id, _rows.c.trace)).all():
        d = json.loads(zlib.decompress(blob).decode("utf-8"))
        arr = d.get("initial_logits")
        if arr is None:
            continue
        d["initial_logits"] = None
        conn.execute(
            _rows.update()
            .where(_rows.c.id == row_id)
            .values(
                trace=zlib.compress(json.dumps(d, separators=(",", ":")).encode("utf-8"), 6),
                logits=_npy(base64.b64decode(arr["b64"]), arr["dtype"], arr["shape"]),
            )
        )


def downgrade() -> None:
    conn = op.get_bind()
    for row_id, blob, logits in conn.execute(
        sa.select(_rows.c.id, _rows.c.trace, _rows.c.logits)
    ).all():
        if logits is None:
            continue
        a = np.load(io.BytesIO(zlib.decompress(logits)), allow_pickle=False)
        d = json.loads(zlib.decompress(blob).decode("utf-8"))
        d["initial_logits"] = {
            "dtype": a.dtype.str,
            "shape": list(a.shape),
            "b64": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii"),
        }
        conn.execute(
            _rows.update()
            .where(_rows.c.id == row_id)
            .values(trace=zlib.compress(json.dumps(d, separators=(",", ":")).encode("utf-8"), 6))
        )
    with op.batch_alter_table("run_samples", schema=None) as batch_op:
        batch_op.drop_column("logits")
