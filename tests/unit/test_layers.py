"""The layer contracts (pyproject.toml, import-linter) of core and of the GUI: they hold, they can
break, every module is placed, and the docs' architecture page shows core's order."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _layers(container: str = "core") -> list[str]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [
        c for c in cfg["contracts"] if c["type"] == "layers" and c.get("containers") == [container]
    ]
    assert contract["containers"] == [container] and contract["exhaustive"] is True
    return contract["layers"]


def _children(package: Path) -> set[str]:
    """The modules and subpackages directly inside ``package``."""
    present = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    return present | {p.parent.name for p in package.glob("*/__init__.py")}


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
    assert "BROKEN" not in r.stdout and r.stdout.count(" KEPT") == len(GUI_CONTAINERS) + 2


def test_every_core_module_is_placed_in_a_layer():
    placed = {name.strip() for layer in _layers() for name in layer.split("|")}
    assert placed == _children(ROOT / "core")


GUI_CONTAINERS = ("rea2seg_gui", "rea2seg_gui.controllers", "rea2seg_gui.panels")


def test_every_gui_module_is_placed_in_a_layer():
    # the GUI's contract covers every module: its top-level modules and, inside controllers/
    # and panels/, each of theirs ("a : b" siblings may import each other, "a | b" may not)
    for container in GUI_CONTAINERS:
        placed = {n.strip() for layer in _layers(container) for n in re.split(r"[|:]", layer)}
        assert placed == _children(ROOT / container.replace(".", "/")), container
    packages = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "rea2seg_gui").rglob("__init__.py")
    }
    assert packages == set(GUI_CONTAINERS)  # a new subpackage needs a contract of its own


def test_an_upward_import_and_an_unplaced_module_break_the_contract(tmp_path):
    for pkg in ("core", "rea2seg_gui"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "core" / "formats" / "upward.py").write_text("import core.store\n")
    (tmp_path / "core" / "newthing.py").write_text("X = 1\n")
    (tmp_path / "rea2seg_gui" / "panels" / "upward.py").write_text("import rea2seg_gui.canvas\n")
    overlays = tmp_path / "rea2seg_gui" / "overlays.py"
    overlays.write_text(overlays.read_text() + "\nimport rea2seg_gui.panels\n")
    text = (ROOT / "pyproject.toml").read_text()
    config = tmp_path / "pyproject.toml"
    config.write_text(text[text.index("[tool.importlinter]") :])
    r = _lint(tmp_path, config)
    assert r.returncode != 0
    assert "core is layered: imports only run down BROKEN" in r.stdout
    assert "core.formats.upward -> core.store" in r.stdout
    assert "core.newthing" in r.stdout  # not placed in any layer
    assert "GUI layers: the window wires controllers" in r.stdout
    assert "rea2seg_gui.overlays -> rea2seg_gui.panels" in r.stdout
    assert "rea2seg_gui.panels.upward" in r.stdout  # not placed in the panels' layers


def test_docs_list_the_layers_in_the_contract_order():
    page = (ROOT / "docs" / "architecture.md").read_text()
    section = page[page.index("## The layers of `core/`") :]
    section = section[: section.index("\n## ", 1)]
    pos = [section.find(f"`{layer}`") for layer in _layers()]
    assert -1 not in pos and pos == sorted(pos), list(zip(_layers(), pos, strict=True))
