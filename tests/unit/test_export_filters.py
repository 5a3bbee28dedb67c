"""``rea2seg export sgdr --status / --dataset`` on a known-answer store: the filters select exactly
the samples they name, a bad filter or an unwritable output is one line and writes nothing."""

from __future__ import annotations

import pytest

from core.cli import main
from core.exporters import dataset_names, export_dataset
from core.fileio import WriteError, write_problem
from core.formats.sgdr import read_sgdr
from tests.export_data import fill_two_datasets


@pytest.fixture
def two(sqlite_store, tmp_path):
    fill_two_datasets(sqlite_store, tmp_path / "src")
    return sqlite_store


def _ids(path) -> list[str]:
    samples, errors = read_sgdr(path)
    assert not errors
    return sorted(s.id for s in samples)


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        ([], ["a_no", "a_ok", "b_new", "b_no", "b_ok"]),
        (["--status", "verified"], ["a_ok", "b_ok"]),
        (["--status", "rejected"], ["a_no", "b_no"]),
        (["--dataset", "alpha"], ["a_no", "a_ok"]),
        (["--dataset", "beta", "--status", "verified"], ["b_ok"]),
        (["--dataset", "alpha", "--status", "pending"], []),
    ],
)
def test_cli_filters_select_exactly_the_named_samples(two, tmp_path, argv, want, capsys):
    out = tmp_path / "out" / "x.json"
    assert main(["export", "sgdr", "--db", two.url, "--out", str(out), *argv]) == 0
    assert _ids(out) == want
    assert f"wrote {len(want)} samples" in capsys.readouterr().out
    # the statuses written are the ones filtered on
    if "--status" in argv and want:
        assert {s.status for s in read_sgdr(out)[0]} == {argv[argv.index("--status") + 1]}


def test_dataset_names_and_an_unknown_dataset_is_refused(two, tmp_path, capsys):
    assert dataset_names(two) == ["alpha", "beta"]
    out = tmp_path / "x.json"
    assert main(["export", "sgdr", "--db", two.url, "--out", str(out), "--dataset", "gamma"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "rea2seg: no dataset named 'gamma' in the store; it has: alpha, beta"
    assert not out.exists()
    with pytest.raises(ValueError, match="unknown status 'accepted'"):
        export_dataset(two, "sgdr", out, status="accepted")
    assert not out.exists()


def test_an_unwritable_output_is_one_line_and_writes_nothing(two, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("keep")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    bad = blocker / "sub" / "x.json"  # its folder would have to be made inside a file
    assert main(["export", "sgdr", "--db", two.url, "--out", str(bad)]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and f"cannot create folder {blocker / 'sub'} ({blocker} is a file)" in err
    )
    with pytest.raises(WriteError, match="is a folder"):
        export_dataset(two, "sgdr", tmp_path, status="verified")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before and blocker.read_text() == "keep"


def test_write_problem_names_the_reason(tmp_path):
    (tmp_path / "f").write_text("x")
    assert write_problem(tmp_path / "new" / "deeper" / "x.json") is None  # folders are made
    assert write_problem(tmp_path / "x.json") is None
    assert write_problem("  ") == "no file name given"
    assert write_problem(tmp_path) == f"{tmp_path}: is a folder; give a file name"
    assert (
        write_problem(tmp_path / "f" / "x.json")
        == f"{tmp_path / 'f' / 'x.json'}: cannot create folder {tmp_path / 'f'} ({tmp_path / 'f'} is a file)"
    )
    assert not (tmp_path / "new").exists()  # the check creates nothing


def test_write_problem_without_permission(tmp_path, monkeypatch):
    import core.fileio

    monkeypatch.setattr(
        core.fileio.os, "access", lambda path, mode: False
    )  # as a user without rights there
    assert (
        write_problem(tmp_path / "x.json")
        == f"{tmp_path / 'x.json'}: cannot write in {tmp_path} (Permission denied)"
    )
