"""The project's own promises: README commands, CI entry, and the headless-core boundary."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [b.strip() for b in blocks[:2]]


def test_readme_opens_with_demo_and_test_commands_and_ci_runs_the_second():
    demo, tests = _readme_commands()
    assert demo.startswith("bash scripts/setup.sh") and "rea2seg-gui --demo" in demo
    assert tests.startswith("bash scripts/setup.sh") and "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def test_core_never_imports_qt():
    bad = []
    for f in (ROOT / "core").rglob("*.py"):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if re.match(
                r"\s*(from|import)\s+(PySide6|PyQt5|PyQt6|pyqtgraph|qtpy|rea2seg_gui)\b", line
            ):
                bad.append(f"{f.relative_to(ROOT)}:{n}")
    assert not bad, bad


def test_import_linter_contract_holds():
    exe = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run(
        [str(exe), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "KEPT" in r.stdout
