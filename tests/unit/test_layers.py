"""core's layer contract (pyproject.toml, import-linter): it holds, it can break, and the docs'
architecture page shows the same order."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _layers() -> list[str]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [
        c for c in cfg["contracts"] if c["type"] == "layers" and c.get("containers") == ["core"]
    ]
    assert contract["containers"] == ["core"] and contract["exhaustive"] is True
    return contract["layers"]


def _lint(root: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT), "--config", str(config), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_layer_contract_is_kept():
    r = _lint(ROOT, ROOT / "pyproject.toml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "core is layered: imports only run down KEPT" in r.stdout


def test_every_core_module_is_placed_in_a_layer():
    placed = {name.strip() for layer in _layers() for name in layer.split("|")}
    present = {p.stem for p in (ROOT / "core").glob("*.py") if p.stem != "__init__"}
    present |= {p.parent.name for p in (ROOT / "core").glob("*/__init__.py")}
    assert placed == present


def test_an_upward_import_and_an_unplaced_module_break_the_contract(tmp_path):
    for pkg in ("core", "rea2seg_gui"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "core" / "formats" / "upward.py").write_text("import core.store\n")
    (tmp_path / "core" / "newthing.py").write_text("X = 1\n")
    text = (ROOT / "pyproject.toml").read_text()
    config = tmp_path / "pyproject.toml"
    config.write_text(text[text.index("[tool.importlinter]") :])
    r = _lint(tmp_path, config)
    assert r.returncode != 0
    assert "core is layered: imports only run down BROKEN" in r.stdout
    assert "core.formats.upward -> core.store" in r.stdout
    assert "core.newthing" in r.stdout  # not placed in any layer


def test_docs_list_the_layers_in_the_contract_order():
    page = (ROOT / "docs" / "architecture.md").read_text()
    section = page[page.index("## The layers of `core/`") :]
    section = section[: section.index("\n## ", 1)]
    pos = [section.find(f"`{layer}`") for layer in _layers()]
    assert -1 not in pos and pos == sorted(pos), list(zip(_layers(), pos, strict=True))
