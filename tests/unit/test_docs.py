"""The front door and the docs site: the README stays short and its links resolve, the generated
command reference is what the parser says today and names every option, and the MkDocs site
builds with ``--strict`` (a broken link, anchor or nav entry fails)."""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _read(rel: str | Path) -> str:
    return (ROOT / rel).read_text(encoding="utf-8")


def test_the_command_reference_is_generated_from_the_parser():
    gen = _gen_docs()
    assert _read(gen.COMMANDS_MD) == gen.commands_page(build_parser()), (
        "docs/reference/commands.md is out of date: run python scripts/gen_docs.py"
    )


def test_the_readme_command_table_is_generated_from_the_parser():
    gen = _gen_docs()
    readme = _read(gen.README)
    assert readme == gen._with_readme_table(readme, gen.readme_table(build_parser())), (
        "README.md's command table is out of date: run python scripts/gen_docs.py"
    )
    table = readme[readme.index(gen.README_START) : readme.index(gen.README_END)]
    top = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for name in top[0].choices:
        assert f"| `rea2seg {name}` |" in table, name


def test_the_check_finds_a_new_option_missing_from_the_reference():
    gen = _gen_docs()
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices["stats"].add_argument("--brand-new", help="an option nobody documented")
    page = gen.commands_page(parser)
    assert page != _read(gen.COMMANDS_MD)
    assert "| `--brand-new BRAND_NEW` | an option nobody documented |" in page


def _sections(page: str) -> dict[str, str]:
    """``{command path: its section}`` of the generated reference."""
    heads = list(re.finditer(r"^#{2,4} `(rea2seg[^`]*)`$", page, flags=re.M))
    ends = [h.start() for h in heads[1:]] + [len(page)]
    return {h.group(1): page[h.end() : end] for h, end in zip(heads, ends, strict=True)}


def test_the_reference_names_every_command_option_and_help():
    gen = _gen_docs()
    sections = _sections(_read(gen.COMMANDS_MD))
    commands = list(gen.walk(build_parser()))
    assert [path for path, _, _ in commands] == list(sections)
    for path, _, parser in commands:
        section = sections[path]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            names = action.option_strings or [action.metavar or action.dest]
            for name in names:
                assert f"`{name}" in section or f"<code>{name}" in section, f"{path}: {name}"
            first_words = gen._cell(" ".join(str(action.help).split()[:4]))
            assert first_words in section, f"{path} {names[0]}: help not shown"
    assert {"rea2seg run", "rea2seg questions generate", "rea2seg export reasonseg"} <= set(
        sections
    )


def test_readme_is_a_short_front_door_whose_links_resolve():
    readme = _read("README.md")
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme + _read("CONTRIBUTING.md"))
    local = [link for link in links if "://" not in link]
    assert "docs/images/app.png" in local and "docs/reference/commands.md" in local
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, missing
    image = ROOT / "docs" / "images" / "app.png"
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size < 300_000


def test_the_docs_home_page_gives_the_readme_commands():
    blocks = re.findall(r"```bash\n(.*?)```", _read("README.md"), flags=re.S)[:2]
    home = re.findall(r"```bash\n(.*?)```", _read("docs/index.md"), flags=re.S)
    assert [b.strip() for b in blocks] == [b.strip() for b in home]


def test_every_docs_page_the_readme_links_is_in_the_site_nav():
    nav = _read("mkdocs.yml")
    readme = _read("README.md")
    for page in re.findall(r"\]\(docs/([^)#]+\.md)", readme):
        assert f": {page}\n" in nav, page


@pytest.mark.docs
def test_the_docs_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs comes with the dev extra (scripts/setup.sh)")
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "reference" / "commands" / "index.html").is_file()


@pytest.mark.docs
def test_a_broken_link_fails_the_strict_build(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs comes with the dev extra (scripts/setup.sh)")
    import shutil

    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    with (tmp_path / "docs" / "store.md").open("a", encoding="utf-8") as f:
        f.write("\nSee [nowhere](no-such-page.md).\n")
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode != 0 and "no-such-page.md" in r.stdout + r.stderr
