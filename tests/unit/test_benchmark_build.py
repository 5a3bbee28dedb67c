"""Building the benchmark end to end: COCO instances → targets → generated and verified
questions (a loopback OpenAI-compatible server with scripted answers) → review → export."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from sqlalchemy import select

from core.benchmark.generate import prompt_image
from core.benchmark.prompts import load_prompt
from core.benchmark.provenance import filter_by_verdict, latest_generation
from core.cli import main
from core.formats.sgdr import read_sgdr
from core.importers.coco import decode_segmentation, import_coco
from core.masks import decode_rle, encode_rle
from core.store import open_store, repo
from core.store.models import QuestionGeneration, Review, Target
from tests.unit.conftest import box_mask
from tests.unit.llm_server import ChatServer, Reply

HW = (60, 80)
GRAY = 128
KEY = "sk-test-secret-4711"


def uncompressed_rle(mask: np.ndarray) -> dict:
    """Column-major run lengths starting with zeros (the COCO uncompressed RLE), by hand."""
    flat = mask.T.reshape(-1)
    counts, cur, run = [], False, 0
    for v in flat:
        if bool(v) != cur:
            counts.append(run)
            cur, run = bool(v), 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


@pytest.fixture
def coco(tmp_path) -> Path:
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.full((*HW, 3), GRAY, np.uint8))
    cv2.imwrite(str(tmp_path / "img" / "b.png"), np.full((40, 40, 3), GRAY, np.uint8))
    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "height": HW[0], "width": HW[1]},
            {"id": 2, "file_name": "b.png", "height": 40, "width": 40},
        ],
        "categories": [{"id": 1, "name": "cup"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": [[5, 5, 20, 5, 20, 20, 5, 20]],
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": uncompressed_rle(box_mask(HW, 30, 45, 5, 20)),
            },
            {
                "id": 3,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": encode_rle(box_mask(HW, 10, 25, 40, 60)),
            },
            {
                "id": 4,
                "image_id": 1,
                "category_id": 2,
                "iscrowd": 0,
                "segmentation": [[60, 40, 75, 40, 75, 55, 60, 55]],
            },
            {
                "id": 5,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": [[1, 2, 3, 4]],
            },
            {
                "id": 6,
                "image_id": 99,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": [[1, 2, 3, 4, 5, 6]],
            },
            {
                "id": 7,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 1,
                "segmentation": [[0, 0, 9, 0, 9, 9]],
            },
            {
                "id": 8,
                "image_id": 2,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]],
            },
        ],
        "groups": [
            {"id": 1, "image_id": 1, "ann_ids": [1, 4], "description": "the cup and the dog"}
        ],
    }
    p = tmp_path / "instances.json"
    p.write_text(json.dumps(data))
    return p


def targets(st) -> dict[str, Target]:
    return st.run(lambda s: {t.external_id: t for t in s.scalars(select(Target))}, write=False)


def test_import_coco_reports_bad_annotations_and_is_idempotent(coco, tmp_path, capsys):
    db = str(tmp_path / "s.sqlite")
    assert main(["import", "coco", str(coco), "--images", str(tmp_path / "img"), "--db", db]) == 1
    out = capsys.readouterr().out
    assert "targets added 7" in out
    assert "annotation 5:" in out and "annotation 6: unknown image_id 99" in out
    assert "annotation 7" not in out  # crowd regions are not instances, not errors
    st = open_store(db)
    ts = targets(st)
    assert sorted(ts) == sorted(
        [
            "image1/cup/ann1",
            "image1/cup/ann2",
            "image1/cup/ann3",
            "image1/dog/ann4",
            "image2/cup/ann8",
            "group1/ann1",
            "group1/ann4",
        ]
    )
    # masks exact for all three encodings, tight boxes from the masks
    assert np.array_equal(decode_rle(ts["image1/cup/ann1"].rle), box_mask(HW, 5, 20, 5, 20))
    assert np.array_equal(decode_rle(ts["image1/cup/ann2"].rle), box_mask(HW, 30, 45, 5, 20))
    assert np.array_equal(decode_rle(ts["image1/cup/ann3"].rle), box_mask(HW, 10, 25, 40, 60))
    assert ts["image1/cup/ann3"].box_xyxy == [40, 10, 60, 25]
    # no samples: targets without questions stay out of the review queue
    assert st.run(lambda s: repo.list_samples(s), write=False) == []
    assert main(["import", "coco", str(coco), "--images", str(tmp_path / "img"), "--db", db]) == 1
    assert "targets added 0, already present 7" in capsys.readouterr().out
    assert len(targets(st)) == 7


def test_category_filter_and_size_mismatch(coco, tmp_path):
    st = open_store(tmp_path / "s.sqlite")
    rep = import_coco(st, coco, tmp_path / "img", category_filter=["dog"])
    assert rep.added == 1 and [n for n, _ in rep.errors if n.startswith("group")] == ["group 1"]
    data = json.loads(coco.read_text())
    data["images"][0]["height"] = 61
    coco.write_text(json.dumps(data))
    rep = import_coco(st, coco, tmp_path / "img", dataset="other")
    assert any("declared 61x80" in msg for _, msg in rep.errors)
    with pytest.raises(ValueError, match="horse"):
        import_coco(st, coco, tmp_path / "img", category_filter=["horse"])


def test_decode_segmentation_known_answers():
    # a polygon covers the pixels inside it: x, y in [10, 20)
    m = decode_segmentation([[10, 10, 20, 10, 20, 20, 10, 20]], (30, 40))
    assert np.array_equal(m, box_mask((30, 40), 10, 20, 10, 20))
    for bad in (
        [[1, 2, 3]],
        {"counts": [5, 5], "size": [30, 40]},
        {"counts": "x", "size": [3, 3]},
        "poly",
        [],
    ):
        with pytest.raises(ValueError):
            decode_segmentation(bad, (30, 40))


def test_prompt_image_red_target_blue_others(coco, tmp_path):
    st = open_store(tmp_path / "s.sqlite")
    import_coco(st, coco, tmp_path / "img")
    tid = targets(st)["image1/cup/ann2"].id
    img = prompt_image(st, tid)
    red, blue, gray = (255, 0, 0), (0, 0, 255), (GRAY,) * 3
    t = 3  # the box line width on a 60x80 image

    def outline(x0, y0, x1, y1) -> np.ndarray:
        m = np.zeros(HW, bool)
        m[y0:y1, x0:x1] = True
        m[y0 + t : y1 - t, x0 + t : x1 - t] = False
        return m

    target = outline(5, 30, 20, 45)
    others = outline(5, 5, 20, 20) | outline(40, 10, 60, 25)
    assert (img[target] == red).all()
    assert (img[others] == blue).all()
    rest = ~(target | others)
    assert (img[rest] == gray).all()  # the dog (another category) and the interiors are untouched


def _script(gen: list[Reply], ver: list[Reply], default_gen: Reply, default_ver: Reply):
    def answer(req) -> Reply:
        q = gen if req.role == "generator" else ver
        if q:
            return q.pop(0)
        if req.role == "verifier":
            return default_ver
        return MULTI if req.system.startswith("You are a Multi-step") else default_gen

    return answer


def _json(**kw) -> str:
    return json.dumps(kw)


ACCEPT = Reply(
    _json(
        thinking_process="Unique.",
        incorrect=0,
        ambiguous=0,
        trivial=0,
        question="Which cup is closest to the plate?",
    ),
    usage={"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59},
)
REJECT = Reply(
    _json(thinking_process="Two cups match.", incorrect=0, ambiguous=1, trivial="NA", question="NA")
)
PHRASE = Reply(
    _json(phrase="the cup closest to the plate", relation="closest to"),
    usage={"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132},
)
MULTI = Reply(
    "{\nDescription: cups and a dog\nDiscriminative condition: nearest the dog\n"
    "Final multi-step referring expression: the cup nearest the dog\n}"
)


def test_generate_verify_review_export_flow(coco, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REA2SEG_EVAL_API_KEY", KEY)
    db = str(tmp_path / "s.sqlite")
    main(["import", "coco", str(coco), "--images", str(tmp_path / "img"), "--db", db])
    capsys.readouterr()
    gen = [
        Reply("busy", status=429, headers={"Retry-After": "0"}),
        PHRASE,
        Reply("Sure! The left cup."),  # malformed: no JSON
        Reply(_json(phrase=f"the cup by {KEY}", relation="by")),
    ]  # echoes the key
    ver = [ACCEPT, REJECT]
    server = ChatServer(_script(gen, ver, PHRASE, ACCEPT))
    common = [
        "--db",
        db,
        "--endpoint",
        server.url,
        "--model",
        "gen-model",
        "--verifier-model",
        "ver-model",
        "--backoff",
        "0.01",
        "--quiet",
    ]
    try:
        rc = main(["questions", "generate", "--split", "spatial", "--concurrency", "1", *common])
        out, err = capsys.readouterr()
        assert rc == 1, out + err  # one target failed
        assert "accepted 1, rejected 1, error 1" in out and "no JSON object" in out
        assert KEY not in out + err
        st = open_store(db)
        ts = targets(st)
        recs = st.run(
            lambda s: {r.target.external_id: r for r in s.scalars(select(QuestionGeneration))},
            write=False,
        )
        ok, bad, rej = recs["image1/cup/ann1"], recs["image1/cup/ann2"], recs["image1/cup/ann3"]
        # provenance of the accepted one
        assert ok.verdict == "accepted" and ok.question == "Which cup is closest to the plate?"
        assert ok.generator_system == load_prompt("spatial_generator").text
        assert ok.verifier_system == load_prompt("spatial_verifier").text
        assert "the cup closest to the plate" in ok.verifier_user and '"cup"' in ok.generator_user
        assert ok.generator_model == "gen-model" and ok.verifier_model == "ver-model"
        assert ok.prompt_versions["generator"] == "spatial_generator@v1 (Figure S3)"
        assert ok.prompt_versions["verifier"] == "spatial_verifier@v1 (Figure S4)"
        assert (
            ok.usage["generator"]["total_tokens"] == 132
            and ok.usage["verifier"]["total_tokens"] == 59
        )
        assert json.loads(ok.generator_raw)["phrase"] == "the cup closest to the plate"
        assert ok.reasons == "Unique."
        # the malformed answer is kept, no sample, no verifier call for it
        assert (
            bad.verdict == "error"
            and bad.sample_id is None
            and bad.generator_raw == "Sure! The left cup."
        )
        # the rejection is kept as a rejected sample with the verifier's reasons; the key is masked
        assert (
            rej.verdict == "rejected"
            and "ambiguous=1" in rej.reasons
            and "Two cups match." in rej.reasons
        )
        assert KEY not in rej.generator_raw and "***" in rej.generator_raw
        samples = {x.external_id: x for x in st.run(lambda s: repo.list_samples(s), write=False)}
        assert {k: (v.status, v.category) for k, v in samples.items()} == {
            "spatial/image1/cup/ann1": ("pending", "spatial"),
            "spatial/image1/cup/ann3": ("rejected", "spatial"),
        }
        gt = st.run(lambda s: repo.gt_mask(s, samples["spatial/image1/cup/ann1"].id), write=False)
        assert np.array_equal(gt, decode_rle(ts["image1/cup/ann1"].rle))
        # what the server saw: the key only in the header, the 429 retried, the boxed image
        g = server.by_role("generator")
        assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in server.requests)
        assert len(g) == 4 and len(server.by_role("verifier")) == 2
        img = g[1].images()[0]
        assert (
            tuple(img[5, 10]) == (255, 0, 0)
            and tuple(img[30, 10]) == (0, 0, 255)
            and tuple(img[10, 50]) == (0, 0, 255)
        )
        assert tuple(img[12, 12]) == (GRAY,) * 3
        # again without --resume: refused; with it: the failed target's unusable reply was
        # paid for, so it is asked again only with --retry-paid
        assert main(["questions", "generate", "--split", "spatial", *common]) == 2
        assert "--resume" in capsys.readouterr().err
        n = len(server.requests)
        assert main(["questions", "generate", "--split", "spatial", "--resume", *common]) == 0
        assert "targets 0" in capsys.readouterr().out and len(server.requests) == n
        resume = ["questions", "generate", "--split", "spatial", "--resume", "--retry-paid"]
        assert main([*resume, *common]) == 0
        assert "accepted 1" in capsys.readouterr().out and len(server.requests) == n + 2
        # multi-step: the category group of 3 and the gRefCOCO group of 2
        assert main(["questions", "generate", "--split", "multi_step", *common]) == 0
        assert "accepted 5" in capsys.readouterr().out
        ms = [
            r
            for r in server.by_role("generator")
            if r.system == load_prompt("multi_step_generator").text
        ]
        assert len(ms) == 5 and any("Description: the cup and the dog" in r.text for r in ms)
    finally:
        server.close()
    # the queue by split and verdict; provenance for the review panel
    ids = st.run(lambda s: [x.id for x in repo.list_samples(s, category="spatial")], write=False)
    assert (
        len(filter_by_verdict(st, ids, "accepted")) == 2
        and len(filter_by_verdict(st, ids, "rejected")) == 1
    )
    sid = samples["spatial/image1/cup/ann1"].id
    view = latest_generation(st, sid)
    assert view.verdict == "accepted" and view.verifier_model == "ver-model"
    # two annotators; only verified samples are exported
    assert (
        main(
            [
                "questions",
                "review",
                "--db",
                db,
                "--sample",
                str(sid),
                "--decision",
                "accept",
                "--user",
                "ann",
            ]
        )
        == 0
    )
    other = samples["spatial/image1/cup/ann3"].id
    main(
        [
            "questions",
            "review",
            "--db",
            db,
            "--sample",
            str(other),
            "--decision",
            "accept",
            "--user",
            "ann",
        ]
    )
    main(
        [
            "questions",
            "review",
            "--db",
            db,
            "--sample",
            str(other),
            "--decision",
            "reject",
            "--user",
            "bob",
        ]
    )
    main(
        [
            "questions",
            "review",
            "--db",
            db,
            "--sample",
            str(sid),
            "--decision",
            "accept",
            "--user",
            "bob",
        ]
    )
    assert (
        st.run(lambda s: len(list(s.scalars(select(Review)))), write=False) == 4
    )  # both users' decisions kept
    capsys.readouterr()
    assert (
        main(
            [
                "export",
                "sgdr",
                "--db",
                db,
                "--out",
                str(tmp_path / "out.json"),
                "--status",
                "verified",
            ]
        )
        == 0
    )
    capsys.readouterr()
    exported, errors = read_sgdr(tmp_path / "out.json")
    assert not errors and [e.id for e in exported] == ["spatial/image1/cup/ann1"]
    assert (
        exported[0].question == "Which cup is closest to the plate?"
        and exported[0].category == "spatial"
    )
    assert main(["stats", "--db", db, "--agreement", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["per_category"]["spatial"]["n"] == 2 and rep["per_category"]["spatial"]["agree"] == 1
    assert [d["sample_id"] for d in rep["disagreements"]] == [other]
    assert rep["disagreements"][0]["decisions"] == {"ann": "accept", "bob": "reject"}
    assert main(["stats", "--db", db]) == 0  # the counts table still works
    assert "spatial" in capsys.readouterr().out


def test_concurrency_limit_and_fixed_questions(coco, tmp_path, capsys):
    db = str(tmp_path / "s.sqlite")
    main(["import", "coco", str(coco), "--images", str(tmp_path / "img"), "--db", db])
    server = ChatServer(
        lambda req: Reply(
            PHRASE.content if req.role == "generator" else ACCEPT.content, delay_s=0.05
        )
    )
    try:
        assert (
            main(
                [
                    "questions",
                    "generate",
                    "--split",
                    "multi_step",
                    "--db",
                    db,
                    "--endpoint",
                    server.url,
                    "--model",
                    "m",
                    "--concurrency",
                    "2",
                    "--quiet",
                ]
            )
            == 1
        )  # the JSON phrase is not S5's format
        assert server.max_in_flight == 2
    finally:
        server.close()
    capsys.readouterr()
    assert (
        main(
            [
                "questions",
                "generate",
                "--split",
                "discriminative",
                "--db",
                db,
                "--kind",
                "camouflage",
                "--quiet",
            ]
        )
        == 0
    )
    assert "fixed 5" in capsys.readouterr().out
    st = open_store(db)
    qs = {
        x.question
        for x in st.run(lambda s: repo.list_samples(s, category="discriminative"), write=False)
    }
    assert qs == {"Could you segment the animal or person in the image?"}
    assert (
        main(["questions", "generate", "--split", "discriminative", "--db", db]) == 2
    )  # --kind is required


def test_regenerate_one_sample_records_who_and_keeps_history(coco, tmp_path):
    from core.benchmark.generate import GenerationError, generate_questions
    from core.benchmark.provenance import regenerate
    from core.llm_client import ChatClient
    from core.store import review

    st = open_store(tmp_path / "s.sqlite")
    import_coco(st, coco, tmp_path / "img")
    ver = [REJECT]
    server = ChatServer(_script([], ver, PHRASE, ACCEPT))
    try:
        client = ChatClient(server.url, "g", backoff_s=0.01)
        generate_questions(st, "spatial", client, ChatClient(server.url, "v"), limit=1)
        sid = st.run(lambda s: repo.list_samples(s)[0].id, write=False)
        assert st.run(lambda s: repo.get_sample(s, sid).status, write=False) == "rejected"
        with pytest.raises(GenerationError):
            regenerate(st, sid, user=" ")
        view = regenerate(st, sid, user="carol", backoff_s=0.01)
    finally:
        server.close()
    assert view.verdict == "accepted" and view.count == 2 and view.requested_by == "carol"
    smp = st.run(lambda s: repo.get_sample(s, sid), write=False)
    assert smp.status == "pending" and smp.question == "Which cup is closest to the plate?"
    changes = [(h.user, h.field, h.before, h.after) for h in review.history(st, sid)]
    assert ("carol", "status", "rejected", "pending") in changes
    assert (
        "carol",
        "question",
        "the cup closest to the plate",
        "Which cup is closest to the plate?",
    ) in changes
    # a sample that was imported, not generated, has nothing to re-generate
    with pytest.raises(GenerationError):
        regenerate(st, 10_000, user="carol")


def test_generator_skip_and_verifier_garbage_change_no_sample(coco, tmp_path):
    from core.benchmark.generate import GenerationError, generate_questions
    from core.llm_client import ChatClient

    st = open_store(tmp_path / "s.sqlite")
    import_coco(st, coco, tmp_path / "img")
    gen = [Reply(_json(phrase="NA", relation="NA")), PHRASE]
    ver = [Reply('{"incorrect": "perhaps"}')]
    server = ChatServer(_script(gen, ver, PHRASE, ACCEPT))
    try:
        with pytest.raises(GenerationError, match="no dataset 'nope'"):
            generate_questions(
                st,
                "spatial",
                ChatClient(server.url, "g"),
                ChatClient(server.url, "v"),
                dataset="nope",
            )
        rep = generate_questions(
            st,
            "spatial",
            ChatClient(server.url, "g", concurrency=1),
            ChatClient(server.url, "v"),
            limit=2,
            dataset="instances",
        )
    finally:
        server.close()
    assert rep.verdicts == {"skipped": 1, "error": 1}
    assert "the verifier's 'incorrect' is 'perhaps'" in rep.errors[0][1]
    assert st.run(lambda s: repo.list_samples(s), write=False) == []
    recs = st.run(
        lambda s: list(s.scalars(select(QuestionGeneration).order_by(QuestionGeneration.id))),
        write=False,
    )
    assert [r.verdict for r in recs] == ["skipped", "error"] and recs[
        1
    ].verifier_raw == '{"incorrect": "perhaps"}'


@settings(max_examples=8, deadline=None)
@given(
    boxes=hst.lists(
        hst.tuples(
            hst.integers(0, 30),
            hst.integers(0, 20),
            hst.integers(1, 20),
            hst.integers(1, 15),
            hst.sampled_from(["cup", "dog"]),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_import_keeps_every_instance_exact_and_grouped(tmp_path_factory, boxes):
    d = tmp_path_factory.mktemp("coco")
    (d / "img").mkdir()
    cv2.imwrite(str(d / "img" / "a.png"), np.zeros((40, 60, 3), np.uint8))
    anns = [
        {
            "id": i + 1,
            "image_id": 1,
            "category_id": 1 if c == "cup" else 2,
            "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
        }
        for i, (x, y, w, h, c) in enumerate(boxes)
    ]
    (d / "c.json").write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.png"}],
                "annotations": anns,
                "categories": [{"id": 1, "name": "cup"}, {"id": 2, "name": "dog"}],
            }
        )
    )
    st_ = open_store(d / "s.sqlite")
    rep = import_coco(st_, d / "c.json", d / "img")
    assert rep.ok and rep.added == len(boxes)
    ts = targets(st_)
    for i, (x, y, w, h, c) in enumerate(boxes):
        t = ts[f"image1/{c}/ann{i + 1}"]
        want = box_mask((40, 60), y, min(y + h, 40), x, min(x + w, 60))
        assert np.array_equal(decode_rle(t.rle), want) and t.box_xyxy == [
            x,
            y,
            min(x + w, 60),
            min(y + h, 40),
        ]
    assert import_coco(st_, d / "c.json", d / "img").existing == len(boxes)
    st_.close()
