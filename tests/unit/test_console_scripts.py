"""The console scripts (``rea2seg``, ``rea2seg-gui``) are small wrappers around ``main(argv)``:
they exit with its status and turn Ctrl+C into status 130 with one line; ``main`` does not
catch ``KeyboardInterrupt``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import core.cli
from core.cli.common import run_console

ROOT = Path(__file__).resolve().parents[2]


def _interrupt(_args):
    raise KeyboardInterrupt


def test_the_scripts_point_at_the_wrappers():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"rea2seg": "core.cli:console", "rea2seg-gui": "rea2seg_gui.app:console"}


def test_main_lets_ctrl_c_through(tmp_path, monkeypatch):
    monkeypatch.setattr(core.cli, "cmd_stats", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        core.cli.main(["stats", "--db", str(tmp_path / "x.sqlite")])


def test_the_wrapper_passes_argv_and_exits_with_the_status(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "argv", ["rea2seg", "stats", "--json"])
    with pytest.raises(SystemExit) as e:
        run_console(lambda argv: seen.append(list(argv)) or 3, "rea2seg")
    assert e.value.code == 3 and seen == [["stats", "--json"]]


def test_the_wrapper_turns_ctrl_c_into_130_and_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(core.cli, "cmd_stats", _interrupt)
    monkeypatch.setattr(sys, "argv", ["rea2seg", "stats", "--db", str(tmp_path / "x.sqlite")])
    with pytest.raises(SystemExit) as e:
        core.cli.console()
    assert e.value.code == 130
    assert capsys.readouterr().err == "rea2seg: interrupted\n"


def test_a_real_sigint_ends_the_command_line_with_130(tmp_path):
    # A command that waits; SIGINT arrives while it runs, as Ctrl+C in a terminal would send it.
    script = textwrap.dedent(
        """
        import sys, time
        import core.cli

        def slow(args):
            print("ready", flush=True)
            time.sleep(60)

        core.cli.cmd_stats = slow
        sys.argv = ["rea2seg", "stats", "--db", "unused.sqlite"]
        core.cli.console()
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err == "rea2seg: interrupted\n"
