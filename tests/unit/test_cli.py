from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from core.cli import main
from core.formats.sgdr import read_sgdr, write_sgdr
from core.masks import encode_rle


def test_import_stats_export_metrics_end_to_end(tmp_path, sgdr_file, capsys):
    db = str(tmp_path / "cli.sqlite")
    assert main(["import", "sgdr", str(sgdr_file), "--db", db]) == 0
    assert "added 4" in capsys.readouterr().out
    assert main(["import", "sgdr", str(sgdr_file), "--db", db]) == 0
    assert "added 0, already present 4" in capsys.readouterr().out

    assert main(["stats", "--db", db, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["total"] == 4 and stats["counts"]["multi_step"]["flagged"] == 1
    assert main(["stats", "--db", db]) == 0
    table = capsys.readouterr().out
    assert "geometric" in table and table.strip().splitlines()[-1].split()[-1] == "4"

    out = tmp_path / "export.json"
    assert main(["export", "sgdr", "--db", db, "--out", str(out), "--status", "pending"]) == 0
    assert [s.id for s in read_sgdr(out)[0]] == ["a0", "a1"]

    # predictions: perfect for a0, empty for a1, the rest missing (counted empty)
    gts, _ = read_sgdr(sgdr_file)
    preds = [
        gts[0],
        type(gts[1])(**{**gts[1].to_dict(), "mask": encode_rle(np.zeros((40, 60), bool))}),
    ]
    pred_file = tmp_path / "pred.json"
    write_sgdr(pred_file, preds)
    capsys.readouterr()
    assert main(["metrics", "--gt", str(sgdr_file), "--pred", str(pred_file), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["overall"]["n"] == 4
    # a0 = 1 (up to LISA's epsilon), a1 = 0, b0 = 0, b1 empty/empty = 1
    assert abs(res["overall"]["giou"] - 0.5) < 1e-5
    assert set(res["per_category"]) == {"geometric", "spatial", "discriminative", "multi_step"}
    assert res["per_category"]["multi_step"]["giou"] == 1.0


def test_bad_inputs_give_messages_and_exit_codes(tmp_path, capsys):
    db = str(tmp_path / "x.sqlite")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    assert main(["import", "sgdr", str(bad), "--db", db]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["import", "reasonseg", str(tmp_path / "nodir"), "--db", db]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_console_script_runs_headless(tmp_path, sgdr_file):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "core.cli",
            "import",
            "sgdr",
            str(sgdr_file),
            "--db",
            str(tmp_path / "y.sqlite"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    # the headless CLI never loads Qt
    probe = "import sys, core.cli; core.cli.build_parser(); print(any(m.startswith(('PySide6', 'pyqtgraph')) for m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stderr
