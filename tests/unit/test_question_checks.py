"""Question quality checks (blind answerability, uniqueness) against a loopback
OpenAI-compatible server with scripted answers: verdicts, provenance, resume, errors, stats."""

from __future__ import annotations

import json
from collections import Counter

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from sqlalchemy import inspect, select

from core.benchmark import claims
from core.benchmark.answers import AnswerError
from core.benchmark.checks import (
    CheckError,
    check_questions,
    latest_checks,
    parse_blind,
    parse_unique,
    sample_instances,
)
from core.benchmark.generate import generate_questions
from core.benchmark.render import BLUE, draw_numbered_boxes
from core.cli import main
from core.importers.coco import import_coco
from core.llm_client import ChatClient
from core.store import open_store, review
from core.store.models import QuestionCheck, QuestionCheckClaim
from tests.unit.llm_server import ChatServer, Reply
from tests.unit.test_benchmark_build import ACCEPT, PHRASE

HW = (60, 80)
# three cups and a dog, boxes (x0, y0, x1, y1) with exclusive max
BOXES = {1: (5, 5, 20, 20), 2: (30, 5, 45, 20), 3: (5, 40, 20, 55), 4: (60, 40, 75, 55)}


def _blind(req) -> bool:
    return "NOT shown the image" in req.system


def build_store(tmp_path, url: str | None = None):
    """A store (SQLite in ``tmp_path``, or ``url``) with three generated spatial questions (one
    per cup) on one image of three cups and a dog."""
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.full((*HW, 3), 128, np.uint8))
    anns = [
        {
            "id": i,
            "image_id": 1,
            "category_id": 2 if i == 4 else 1,
            "iscrowd": 0,
            "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
        }
        for i, (x0, y0, x1, y1) in BOXES.items()
    ]
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": HW[0], "width": HW[1]}],
        "categories": [{"id": 1, "name": "cup"}, {"id": 2, "name": "dog"}],
        "annotations": anns,
    }
    (tmp_path / "c.json").write_text(json.dumps(data))
    st = open_store(url or tmp_path / "s.sqlite")
    import_coco(st, tmp_path / "c.json", tmp_path / "img")
    server = ChatServer(lambda req: PHRASE if req.role == "generator" else ACCEPT)
    client = ChatClient(server.url, "g", concurrency=1)
    try:
        generate_questions(st, "spatial", client, client)
    finally:
        server.close()
    return st


@pytest.fixture
def gen_store(tmp_path):
    st = build_store(tmp_path)
    yield st, tmp_path
    st.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request, tmp_path):
    """:func:`gen_store` on each backend (PostgreSQL: ``check`` is a reserved word there)."""
    url = request.getfixturevalue("pg_server").new_database() if request.param != "sqlite" else None
    st = build_store(tmp_path, url)
    yield st, tmp_path
    st.close()


@pytest.fixture
def checker():
    """A checking server whose answers tests queue per check; a default when the queue is empty."""
    queues: dict[str, list[Reply]] = {"blind": [], "unique": []}
    defaults = {"blind": Reply('{"category": "NA"}'), "unique": Reply('{"boxes": [1]}')}

    def script(req):
        check = "blind" if _blind(req) else "unique"
        return queues[check].pop(0) if queues[check] else defaults[check]

    server = ChatServer(script)
    yield server, queues, ChatClient(server.url, "checker", concurrency=1, max_retries=0)
    server.close()


def _sample_ids(st) -> list[int]:
    from core.benchmark.checks import checkable_sample_ids

    return st.run(lambda s: checkable_sample_ids(s), write=False)


def test_blind_check_flags_a_text_shortcut_without_sending_the_image(gen_store, checker):
    st, _ = gen_store
    server, queues, client = checker
    queues["blind"] += [
        Reply('{"category": "cup", "reason": "cups hold drinks"}', usage={"total_tokens": 50}),
        Reply('```json\n{"category": "NA", "reason": "could be anything"}\n```'),
        Reply('{"category": " Dog "}'),
    ]
    rep = check_questions(st, ["blind"], client)
    assert rep.verdicts["blind"] == Counter(shortcut=1, needs_image=2) and rep.paid == 3
    assert rep.tokens["total_tokens"] == 50
    reqs = server.requests
    assert len(reqs) == 3 and all(r.images() == [] for r in reqs)
    assert "Which cup is closest to the plate?" in reqs[0].text
    assert "- cup (3 instances)" in reqs[0].text and "- dog (1 instance)" in reqs[0].text
    first = latest_checks(st, _sample_ids(st)[0])["blind"]
    assert first.verdict == "shortcut" and first.details["named"] == "cup" and first.current
    assert first.details["categories"] == {"cup": 3, "dog": 1}
    assert first.model == "checker" and first.endpoint == server.url
    assert first.prompt_versions == {
        "system": "question_blind_check@v1",
        "user": "question_blind_check_user@v1",
    }
    rows = st.run(lambda s: list(s.scalars(select(QuestionCheck))), write=False)
    assert all(r.system.startswith("You are checking") and r.paid == 1 for r in rows)


def test_blind_check_on_a_single_category_image_asks_nothing(gen_store, checker):
    st, _ = gen_store
    server, _, client = checker
    # the dog's box drops out: only cups are left, so naming "cup" would prove nothing
    st.run(lambda s: s.execute(QuestionCheck.__table__.delete()))
    from core.store.models import Target

    st.run(lambda s: s.execute(Target.__table__.delete().where(Target.category_name == "dog")))
    rep = check_questions(st, ["blind"], client)
    assert rep.verdicts["blind"] == Counter(uninformative=3) and server.requests == []


def test_uniqueness_check_sends_numbered_boxes_and_grades_the_pick(gen_store, checker):
    st, _ = gen_store
    server, queues, client = checker
    ids = _sample_ids(st)
    targets = {
        sid: st.run(lambda s, sid=sid: sample_instances(s, sid), write=False).target + 1
        for sid in ids
    }
    assert sorted(targets.values()) == [1, 2, 3]  # the three cups, numbered in id order
    by_target = {t: sid for sid, t in targets.items()}
    picks = {1: [1], 2: [1, 2], 3: []}  # sample of box 1: unique, 2: ambiguous, 3: none
    queues["unique"] += [Reply(json.dumps({"boxes": picks[targets[sid]]})) for sid in ids]
    rep = check_questions(st, ["unique"], client)
    assert rep.verdicts["unique"] == Counter(unique=1, ambiguous=1, none=1)
    [img] = server.requests[0].images()
    assert img.shape == (*HW, 3)
    assert tuple(img[54, 67]) == BLUE and tuple(img[50, 74]) == BLUE  # the dog's box, in blue
    assert "4 numbered boxes" in server.requests[0].text
    assert latest_checks(st, by_target[1])["unique"].details == {
        "boxes": [list(b) for b in BOXES.values()],
        "target": 1,
        "picked": [1],
    }
    assert latest_checks(st, by_target[2])["unique"].verdict == "ambiguous"
    # one other box: the question describes the wrong instance
    queues["unique"].append(Reply('{"boxes": ["#3"]}'))
    st.run(lambda s: s.execute(QuestionCheck.__table__.delete()))
    check_questions(st, ["unique"], client, limit=1)
    assert latest_checks(st, by_target[1])["unique"].verdict == "wrong"


def test_resume_never_pays_twice_and_rechecks_an_edited_question(any_store, checker):
    st, _ = any_store
    server, _, client = checker
    check_questions(st, ["blind", "unique"], client)
    assert len(server.requests) == 6
    with pytest.raises(CheckError, match="pass --resume"):
        check_questions(st, ["blind"], client)
    rep = check_questions(st, ["blind", "unique"], client, resume=True)
    assert len(server.requests) == 6 and rep.paid == 0
    sid = _sample_ids(st)[1]
    review.edit_question(st, sid, "Which cup is left of the dog?", user="ann")
    assert not latest_checks(st, sid)["blind"].current
    rep = check_questions(st, ["blind", "unique"], client, resume=True)
    assert len(server.requests) == 8 and rep.paid == 2
    assert "left of the dog" in server.requests[-1].text
    assert latest_checks(st, sid)["blind"].current


@pytest.mark.parametrize(
    "reply, check, message",
    [
        (Reply("I think it is the cup."), "blind", "no JSON object"),
        (Reply('{"category": "horse"}'), "blind", "not one of the listed categories"),
        (Reply('{"category": 3}'), "blind", "not text"),
        (Reply('{"boxes": [9]}'), "unique", "not among the 4 numbered boxes"),
        (Reply('{"boxes": "two"}'), "unique", "no 'boxes' list"),
        (Reply('{"boxes": [true]}'), "unique", "not a box number"),
        (Reply(raw=b"\x00garbage"), "unique", ""),
    ],
)
def test_garbage_replies_are_recorded_as_paid_errors(gen_store, checker, reply, check, message):
    st, _ = gen_store
    server, queues, client = checker
    queues[check].append(reply)
    rep = check_questions(st, [check], client, limit=1)
    assert rep.verdicts[check] == Counter(error=1) and rep.paid == 1
    [(_, err)] = rep.errors
    assert message in err
    sid = _sample_ids(st)[0]
    got = latest_checks(st, sid)[check]
    assert got.verdict == "error" and got.error == err
    n = len(server.requests)
    check_questions(st, [check], client, resume=True)  # paid: not asked again, the others are
    assert len(server.requests) == n + 2 and latest_checks(st, sid)[check].verdict == "error"
    check_questions(st, [check], client, resume=True, retry_paid=True)
    assert len(server.requests) == n + 3 and latest_checks(st, sid)[check].verdict != "error"


def test_unpaid_failure_is_retried_on_resume(gen_store, checker):
    st, _ = gen_store
    server, queues, client = checker
    queues["blind"].append(Reply("overloaded", status=503))
    rep = check_questions(st, ["blind"], client, limit=1)
    assert rep.verdicts["blind"] == Counter(error=1) and rep.paid == 0
    check_questions(st, ["blind"], client, resume=True, limit=1)
    assert len(server.requests) == 2
    assert latest_checks(st, _sample_ids(st)[0])["blind"].verdict == "needs_image"


def test_a_sample_claimed_by_another_run_is_left_to_it(any_store, checker):
    st, _ = any_store
    server, _, client = checker
    sid = _sample_ids(st)[0]
    assert claims.claim(st, sid, "blind", "other-run", 600, lambda s, i: False, QuestionCheckClaim)
    rep = check_questions(st, ["blind"], client)
    assert rep.claimed_elsewhere == 1 and len(server.requests) == 2
    assert "blind" not in latest_checks(st, sid)


def test_cli_check_and_rates_in_stats(gen_store, checker, capsys):
    st, tmp = gen_store
    server, queues, _ = checker
    db = str(tmp / "s.sqlite")
    queues["blind"].append(Reply('{"category": "cup"}'))
    args = ["questions", "check", "--db", db, "--endpoint", server.url, "--model", "m", "--quiet"]
    assert main([*args, "--check", "blind"]) == 0
    assert "blind: 3 samples: shortcut 1, needs_image 2" in capsys.readouterr().out
    assert main([*args, "--check", "blind"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "unique: 3 samples" in out and "blind: 0 samples" in out
    assert main(["stats", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "question checks" in out and "1 (33%)" in out and "3 (100%)" not in out
    assert main(["stats", "--db", db, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["question_checks"]["spatial"]["blind"] == {"needs_image": 2, "shortcut": 1}
    assert sum(data["question_checks"]["spatial"]["unique"].values()) == 3
    assert main(["questions", "check", "--db", db]) == 2  # no endpoint: a usage error


def test_numbered_boxes_known_answer():
    img = draw_numbered_boxes(np.zeros((40, 60, 3), np.uint8), [(2, 2, 30, 30), (35, 10, 55, 35)])
    assert tuple(img[29, 15]) == BLUE and tuple(img[34, 45]) == BLUE  # bottom edges
    assert tuple(img[20, 15]) == (0, 0, 0)  # inside stays untouched
    assert (img[2:12, 2:12] == 255).any()  # the white number on its tag


@settings(max_examples=200, deadline=None)
@given(hst.text(max_size=200))
def test_parsers_raise_only_answer_errors(text):
    for parse in (lambda t: parse_blind(t, ["cup", "dog"]), lambda t: parse_unique(t, 4)):
        try:
            parse(text)
        except AnswerError:
            pass


def test_parsers_known_answers():
    assert parse_blind('{"category": "na"}', ["cup"]) is None
    assert parse_blind('{"category": "CUP"}', ["cup", "dog"]) == "cup"
    assert parse_unique('{"boxes": [3, "1", 3]}', 4) == [1, 3]
    assert parse_unique('{"boxes": []}', 4) == []


def test_migration_0006_down_and_up(store):
    from tests.unit.test_store_logits import _to_revision

    def tables() -> set[str]:
        return set(inspect(store.engine).get_table_names()) & {
            "question_checks",
            "question_check_claims",
        }

    assert len(tables()) == 2
    _to_revision(store, "0005", down=True)
    assert tables() == set()
    _to_revision(store, "head", down=False)
    assert len(tables()) == 2
