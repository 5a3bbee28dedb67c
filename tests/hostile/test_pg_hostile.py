"""The same hostile cases on PostgreSQL (a throw-away server, tests/pg.py; skipped without one):
a full disk is one line, odd model replies are stored (PostgreSQL refuses NUL in text and NaN
in JSON, which SQLite takes), and two generators pay once per target."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest
from sqlalchemy import create_engine, select, text

from core.benchmark.generate import generate_questions
from core.llm_client import ChatClient
from core.store import open_store
from core.store.models import QuestionGeneration
from tests.hostile.conftest import cli
from tests.hostile.test_disk_hostile import one_line_error, sgdr_file
from tests.hostile.test_questions_hostile import (
    ACCEPT,
    ODD_GENERATOR_REPLIES,
    coco_store,
    generate_cmd,
    odd_server,
    run_together,
    slow_server,
)
from tests.unit.llm_server import ChatServer, Reply

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg():
    from tests.pg import PostgresServer

    try:
        server = PostgresServer()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    yield server
    server.stop()


def pg_coco_store(pg, tmp_path, n: int) -> str:
    """``n`` spatial targets imported into a fresh PostgreSQL database (through SQLite's file
    layout helper: the same COCO file, imported again with --db URL)."""
    coco_store(tmp_path, n)
    url = pg.new_database()
    r = cli("import", "coco", str(tmp_path / "c.json"), "--images", str(tmp_path / "img"),
            "--db", url)  # fmt: skip
    assert r.returncode == 0 and f"targets added {n}" in r.stdout, r.stdout + r.stderr
    return url


def test_full_disk_on_postgresql_is_one_line(pg, tmp_path):
    """The database's tables live on a 600 KiB tmpfs (a tablespace): PostgreSQL's own
    ``could not extend file`` (SQLSTATE 53100) becomes the same one line as SQLite's."""
    mnt = pg.dir / f"disk-{uuid.uuid4().hex[:8]}"  # the server's folder: postgres reaches it
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)],
                       capture_output=True)  # fmt: skip
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    space = "t" + uuid.uuid4().hex[:10]
    try:
        if pg.as_user:
            shutil.chown(mnt, "postgres")
        url = pg.new_database()
        eng = create_engine(pg.url(), isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(f"CREATE TABLESPACE {space} LOCATION '{mnt}'"))
            c.execute(text(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" SET default_tablespace = {space}'))  # fmt: skip
        eng.dispose()
        f = sgdr_file(tmp_path / "data", 300)
        r = cli("import", "sgdr", str(f), "--db", url, timeout=120)
        one_line_error(r, "the disk is full")
        st = open_store(url, create=False)  # still a readable store
        st.run(lambda s: s.execute(text("SELECT count(*) FROM samples")).scalar(), write=False)
        st.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_odd_replies_are_stored_on_postgresql(pg, tmp_path):
    n = len(ODD_GENERATOR_REPLIES)
    url = pg_coco_store(pg, tmp_path, n)
    server = odd_server(list(ODD_GENERATOR_REPLIES.values()))
    st = open_store(url)
    try:
        client = ChatClient(server.url, "m", concurrency=1, backoff_s=0.01)
        rep = generate_questions(st, "spatial", client, client)
        recs = st.run(lambda s: list(s.scalars(select(QuestionGeneration))), write=False)
    finally:
        server.close()
        st.close()
    assert len(recs) == n and sum(x.paid for x in recs) == len(server.requests) == rep.paid
    assert "error" in rep.verdicts and "accepted" in rep.verdicts


def test_nul_and_nan_in_a_verifier_answer_are_stored_on_postgresql(pg, tmp_path):
    url = pg_coco_store(pg, tmp_path, 2)

    def script(req) -> Reply:
        if req.role == "generator":
            return Reply('{"phrase": "cup\\u0000", "relation": NaN}')
        a = json.loads(ACCEPT)
        return Reply(json.dumps({**a, "question": "Which\x00 cup?", "extra": float("inf")}))

    server = ChatServer(script)
    st = open_store(url)
    try:
        client = ChatClient(server.url, "m")
        rep = generate_questions(st, "spatial", client, client)
    finally:
        server.close()
        st.close()
    assert rep.verdicts["accepted"] == 2 and rep.paid == 4


def test_two_generators_on_one_postgresql_store_pay_once(pg, tmp_path):
    n = 12
    url = pg_coco_store(pg, tmp_path, n)
    server = slow_server()
    try:
        runs = run_together([generate_cmd(url, server.url), generate_cmd(url, server.url)])
    finally:
        server.close()
    for r in runs:
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(server.requests) == 2 * n  # figure: 24 requests for 12 targets
    st = open_store(url, create=False)
    ids = st.run(lambda s: list(s.scalars(select(QuestionGeneration.target_id))), write=False)
    st.close()
    assert len(ids) == len(set(ids)) == n
    print(f"FIGURE two generators on PostgreSQL: {len(server.requests)} requests for {n} targets")
