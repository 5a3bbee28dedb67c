"""Repeated command-line options: lists accumulate, single values refuse a second value
(argparse would silently keep the last one)."""

from __future__ import annotations

import argparse

import pytest

from core.cli import build_parser, main


def _walk(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _walk(sub)


def test_run_sample_repeated_runs_every_sample():
    args = build_parser().parse_args(
        [
            "run",
            "--db",
            "x",
            "--preset",
            "tiny-random",
            "--sample",
            "1",
            "--sample",
            "2",
            "--sample",
            "3",
        ]
    )
    assert args.sample == ["1", "2", "3"]
    mixed = build_parser().parse_args(
        ["run", "--db", "x", "--preset", "tiny-random", "--sample", "1", "2", "--sample", "3"]
    )
    assert mixed.sample == ["1", "2", "3"]


def test_run_with_repeated_samples_plans_all_of_them(tmp_path):
    from core.cli import ray_run
    from core.demo import ensure_demo_store
    from core.pipeline.plan import RunRequest, plan_run
    from core.store import open_store

    args = build_parser().parse_args(
        [
            "run",
            "--db",
            "x",
            "--preset",
            "tiny-random",
            "--sample",
            "1",
            "--sample",
            "2",
            "--sample",
            "3",
        ]
    )
    store = open_store(ensure_demo_store(tmp_path / "demo.sqlite"))
    try:
        plan = plan_run(
            store, RunRequest(args.preset, samples=args.sample), ray_run.make_engine(args)
        )
        assert list(plan.todo) == [1, 2, 3]
    finally:
        store.close()


@pytest.mark.parametrize(
    "argv",
    [
        [
            "export",
            "sgdr",
            "--db",
            "x",
            "--out",
            "o.json",
            "--status",
            "pending",
            "--status",
            "verified",
        ],
        ["run", "--db", "a.sqlite", "--db", "b.sqlite", "--preset", "tiny-random"],
        ["trace", "--db", "x", "--sample", "1", "--sample", "2"],
    ],
)
def test_a_second_value_of_a_single_value_option_is_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "was given twice" in err and "one value" in err


def test_the_same_value_twice_is_harmless():
    args = build_parser().parse_args(["trace", "--db", "x", "--sample", "4", "--sample", "4"])
    assert args.sample == "4"


def test_every_option_either_accumulates_or_refuses_repetition():
    """The audit: no option of any command silently keeps only its last value."""
    silent = []
    for parser in _walk(build_parser()):
        for a in parser._actions:
            if not a.option_strings or isinstance(a, argparse._SubParsersAction):
                continue
            ok = (
                isinstance(
                    a,
                    argparse._StoreConstAction  # flags: store_true / store_false
                    | argparse._AppendAction
                    | argparse._ExtendAction
                    | argparse._HelpAction
                    | argparse._VersionAction
                    | argparse._CountAction
                    | argparse.BooleanOptionalAction,
                )
                or "Once" in type(a).__name__
            )
            if not ok:
                silent.append((parser.prog, a.option_strings, type(a).__name__))
    assert not silent, silent
