"""The distribution: the built wheel runs outside the source tree (resources included), and the
headless core installs and runs without the ``[gui]`` extra (PySide6, pyqtgraph)."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.paths import resource_path

ROOT = Path(__file__).resolve().parents[2]
# What a wheel is built from (setup.py maps resources/ onto rea2seg_resources).
SOURCES = ("core", "rea2seg_gui", "resources", "pyproject.toml", "setup.py", "README.md", "LICENSE")


def _env(**extra: str) -> dict[str, str]:
    """The environment for a child process that must not see this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, **extra}


def _demo_samples() -> int:
    return len(json.loads(resource_path("demo", "sgdr.json").read_text())["samples"])


def test_resources_of_a_checkout_are_its_resources_folder():
    assert resource_path() == ROOT / "resources"
    assert resource_path("prompts").is_dir() and resource_path("demo", "sgdr.json").is_file()


@pytest.mark.slow
def test_the_wheel_installed_in_a_fresh_venv_runs_the_demo_and_prompts(tmp_path):
    # 1. Build the wheel from a copy of the sources (a build in the checkout leaves build/ there).
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(p, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    wheels = tmp_path / "wheels"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
        check=True,
        capture_output=True,
        env=_env(),
        timeout=300,
    )
    (wheel,) = wheels.glob("rea2seg_studio-*.whl")

    # 2. A fresh venv that sees this venv's packages (a plain path in a .pth), but not the
    # editable install of the project (its finder .pth is never executed from there).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    new_site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            env=_env(),
        ).stdout.strip()
    )
    (new_site / "project_venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [*pip, "--python", str(py), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        env=_env(),
        timeout=300,
    )

    # 3. From another folder: the demo store and a prompt, through the installed packages.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _env(REA2SEG_HOME=str(tmp_path / "home"))
    probe = textwrap.dedent(
        """
        import json
        import core
        from core.benchmark.prompts import PROMPTS_DIR, load_prompt
        from core.demo import ensure_demo_store
        from core.store import open_store, review

        path = ensure_demo_store()
        store = open_store(path)
        n = sum(review.counts(store).values())
        store.close()
        print(json.dumps({"core": core.__file__, "prompts": str(PROMPTS_DIR), "store": str(path),
                          "n": n, "tag": load_prompt("spatial_generator").tag}))
        """
    )
    r = subprocess.run(
        [str(py), "-c", probe],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert Path(got["core"]).is_relative_to(new_site)
    assert Path(got["prompts"]) == new_site / "rea2seg_resources" / "prompts"
    assert got["n"] == _demo_samples() > 0
    assert got["tag"].startswith("spatial_generator@v1")

    # The console script the wheel installed reads the same store.
    r = subprocess.run(
        [str(venv / "bin" / "rea2seg"), "stats", "--db", got["store"], "--json"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["total"] == got["n"]


# A process where PySide6 / pyqtgraph cannot be imported, as on a machine that installed the core
# without the [gui] extra.
_NO_QT = textwrap.dedent(
    """
    import sys

    class NoQt:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("PySide6", "shiboken6", "pyqtgraph"):
                raise ImportError(f"{name}: not installed (the [gui] extra is absent)")

    sys.meta_path.insert(0, NoQt())
    sys.argv[0] = "rea2seg"
    """
)


def _without_qt(code: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _NO_QT + code, *argv],
        cwd=cwd,
        env=_env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_core_and_its_command_line_run_without_the_gui_extra(tmp_path):
    rea2seg = "from core.cli import console\nconsole()\n"
    r = _without_qt(rea2seg, "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "usage: rea2seg" in r.stdout
    db = str(tmp_path / "demo.sqlite")
    sgdr = str(resource_path("demo", "sgdr.json"))
    r = _without_qt(rea2seg, "import", "sgdr", sgdr, "--db", db, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _without_qt(rea2seg, "stats", "--db", db, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["total"] == _demo_samples()
    # the blocker does block: the same process cannot import Qt
    r = _without_qt("import pyqtgraph\n", cwd=tmp_path)
    assert r.returncode != 0 and "the [gui] extra is absent" in r.stderr


def test_pre_commit_runs_ruff_ruff_format_and_import_linter():
    yaml = pytest.importorskip("yaml")
    cfg = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in cfg["repos"] for h in repo["hooks"]}
    assert set(hooks) == {"ruff", "ruff-format", "import-linter"}
    assert hooks["import-linter"]["pass_filenames"] is False  # the whole graph, once
    exe = Path(sys.executable).with_name("pre-commit")
    if exe.is_file():
        r = subprocess.run(
            [str(exe), "validate-config", ".pre-commit-config.yaml"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stdout + r.stderr
