"""The whole ``rea2seg`` argparse tree: every option and positional of every (nested) subcommand
explains itself, and the light commands import no model library."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from core.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _walk(parser: argparse.ArgumentParser, path: str):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{path} {name}")


def _commands() -> dict[str, argparse.ArgumentParser]:
    return dict(_walk(build_parser(), "rea2seg"))


def test_the_tree_reaches_nested_commands():
    cmds = _commands()
    for path in (
        "rea2seg questions generate",
        "rea2seg import coco",
        "rea2seg export evaluator-train",
        "rea2seg generate geometric",
        "rea2seg runs",
        "rea2seg run",
        "rea2seg eval",
    ):
        assert path in cmds, sorted(cmds)


def _without_help(commands: dict[str, argparse.ArgumentParser]) -> list[str]:
    missing = []
    for path, parser in commands.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_of_every_command_has_help():
    missing = _without_help(_commands())
    assert not missing, missing


def test_the_help_check_finds_a_nested_option_without_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    nested = next(
        a for a in sub.choices["questions"]._actions if isinstance(a, argparse._SubParsersAction)
    )
    nested.choices["generate"].add_argument("--undocumented")
    assert _without_help(dict(_walk(parser, "rea2seg"))) == [
        "rea2seg questions generate --undocumented"
    ]


def test_every_subcommand_has_help_in_its_parent_listing():
    missing = []
    for path, parser in _commands().items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                shown = {c.dest for c in action._choices_actions if (c.help or "").strip()}
                missing += [f"{path} {n}" for n in action.choices if n not in shown]
    assert not missing, missing


OPTIONAL_DB = {"rea2seg ask"}


def test_db_and_ignore_mode_are_the_shared_options():
    from core.cli.common import add_common

    ref = argparse.ArgumentParser()
    add_common(ref, ignore_mode=True)
    want = {a.dest: a for a in ref._actions if a.dest in ("db", "ignore_mode")}
    for path, parser in _commands().items():
        for action in parser._actions:
            w = want.get(action.dest)
            if w is None:
                continue
            assert action.option_strings == w.option_strings, path
            assert action.choices == w.choices and action.default == w.default, path
            if action.dest == "db":
                # every command works on a store, except ask, which only saves to one when asked
                assert action.metavar == w.metavar, path
                assert action.required == (path not in OPTIONAL_DB), path


def test_no_help_text_points_at_a_missing_command():
    cmds = _commands()
    bad = []
    for path, parser in cmds.items():
        texts = [parser.description or ""] + [a.help or "" for a in parser._actions]
        for text in texts:
            for tail in text.split("rea2seg ")[1:]:
                word = tail.split()[0].strip("),.;:'\"")
                if f"rea2seg {word}" not in cmds:
                    bad.append(f"{path}: rea2seg {word}")
    assert not bad, bad


def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import sys, contextlib, io, core.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        core.cli.main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(' '.join(m for m in ('torch', 'transformers', 'cv2', 'segment_anything', 'sam2') "
        "if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_help_and_light_commands_import_no_model_library(tmp_path):
    from core.demo import ensure_demo_store

    db = str(ensure_demo_store(tmp_path / "demo.sqlite"))
    sgdr = str(ROOT / "resources" / "demo" / "sgdr.json")
    for argv in (
        ["--help"],
        ["run", "--help"],
        ["stats", "--db", db],
        ["runs", "--db", db],
        ["export", "sgdr", "--db", db, "--out", str(tmp_path / "out.json")],
        ["export", "reasonseg", "--help"],
        ["metrics", "--gt", sgdr, "--pred", sgdr],
    ):
        assert _modules_after(argv) == set(), argv
    # an import decodes each image once to prove it readable (OpenCV, as LISA reads them)
    assert _modules_after(["import", "sgdr", sgdr, "--db", str(tmp_path / "new.sqlite")]) == {"cv2"}


def test_the_model_check_sees_torch_when_a_command_loads_it():
    # the check above can fail: a command that imports torch is seen
    code = "import torch"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('torch' in sys.modules)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.stdout.strip() == "True"


def test_runs_lists_the_stores_runs(tmp_path, capsys):
    import json

    from core.cli import main
    from core.demo import ensure_demo_store
    from core.store import open_store, repo

    db = str(ensure_demo_store(tmp_path / "demo.sqlite"))
    assert main(["runs", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    store = open_store(db)
    with store.session() as s:
        rid = repo.create_run(
            s, name="first try", preset="tiny-random-lisa", config={}, model_ids={}, is_random=True
        )
    store.close()
    assert main(["runs", "--db", db]) == 0
    out = capsys.readouterr().out
    assert (
        f"{rid:>5}" in out
        and "tiny-random-lisa" in out
        and "first try" in out
        and "RANDOM WEIGHTS" in out
    )
    assert main(["runs", "--db", db, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["id"], row["name"], row["samples"], row["is_random"]) == (rid, "first try", 0, True)
    assert main(["runs", "--db", str(tmp_path / "none.sqlite")]) == 2
