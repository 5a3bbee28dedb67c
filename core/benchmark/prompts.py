"""The question-generation prompts as versioned text files in ``resources/prompts/``
(installed: ``rea2seg_resources/prompts``, found by ``core.paths.resource_path``).

Each file is ``<name>.v<N>.txt``: a header of ``# key: value`` lines (``prompt``, ``version``,
``figure``, ``source``, ``role``), a ``---`` line, then the prompt text. The paper's prompts
(App. C, Figures S2–S5) are quoted exactly; prompts the paper does not give are labelled "not
from the paper" in their ``source``. The version (``name@vN``) is stored with every question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.paths import resource_path

PROMPTS_DIR = resource_path("prompts")
_FILE = re.compile(r"^(?P<name>[a-z0-9_]+)\.v(?P<version>\d+)\.txt$")


class PromptError(LookupError):
    """A prompt file that is missing or malformed."""


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    figure: str
    source: str
    text: str

    @property
    def tag(self) -> str:
        """``name@vN (Figure S3)``: what is stored with a generated question."""
        fig = f" (Figure {self.figure})" if self.figure.startswith("S") else ""
        return f"{self.name}@v{self.version}{fig}"

    def format(self, **values: str) -> str:
        """The text with ``{key}`` fields filled in (only the given keys; other braces stay)."""
        out = self.text
        for k, v in values.items():
            out = out.replace("{" + k + "}", v)
        return out


def parse_prompt_file(path: Path) -> Prompt:
    m = _FILE.match(path.name)
    if m is None:
        raise PromptError(f"{path.name}: prompt files are named <name>.v<N>.txt")
    raw = path.read_text(encoding="utf-8")
    head, sep, body = raw.partition("\n---\n")
    if not sep:
        raise PromptError(f"{path}: no '---' line between the header and the text")
    meta = {}
    for line in head.splitlines():
        key, _, value = line.lstrip("# ").partition(":")
        meta[key.strip()] = value.strip()
    if meta.get("prompt") != m["name"] or meta.get("version") != f"v{m['version']}":
        raise PromptError(f"{path}: header prompt/version do not match the file name")
    return Prompt(
        m["name"],
        int(m["version"]),
        meta.get("figure", ""),
        meta.get("source", ""),
        body.rstrip("\n"),
    )


def load_prompt(name: str, version: int | None = None, directory: Path | None = None) -> Prompt:
    """The prompt ``name`` at ``version`` (default: the newest version present)."""
    d = directory or PROMPTS_DIR
    found = sorted(
        (int(m["version"]), p)
        for p in d.glob(f"{name}.v*.txt")
        if (m := _FILE.match(p.name)) and m["name"] == name
    )
    if version is not None:
        found = [(v, p) for v, p in found if v == version]
    if not found:
        raise PromptError(
            f"no prompt {name!r}" + (f" version {version}" if version else "") + f" in {d}"
        )
    return parse_prompt_file(found[-1][1])


def all_prompts(directory: Path | None = None) -> list[Prompt]:
    d = directory or PROMPTS_DIR
    return [parse_prompt_file(p) for p in sorted(d.glob("*.v*.txt"))]
