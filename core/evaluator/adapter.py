"""What an evaluator adapter declares about the prompt it was trained on, and the check both
backends run before any sample.

An adapter directory (a PEFT LoRA for the local backend, or the adapter a server loads for the
OpenAI-compatible one) holds :data:`ADAPTER_FILE` beside its weights::

    {"prompt_format": "rea2seg-v2-cot-tiles12", "system": "<the system turn>",
     "max_patches": 12, "cot": true, "written_by": "rea2seg export evaluator-train"}

``prompt_format`` is the id of :func:`core.evaluator.prompt.prompt_format`; the other keys repeat
what it says, for people. The trainer writes it with :func:`write_adapter_declaration` (the same
format id its export carries); the backends read it with :func:`read_adapter_declaration` and
refuse with :class:`PromptFormatError` when what they would send differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.evaluator.prompt import PROMPT_VERSION, SYSTEM, parse_prompt_format, prompt_format
from core.fileio import atomic_write
from core.models.base import ModelLoadError

ADAPTER_FILE = "rea2seg_adapter.json"


class PromptFormatError(ModelLoadError, ValueError):
    """An evaluator adapter trained on another prompt format than the one it would be run on
    (a :class:`ModelLoadError` for loaders' callers, a ``ValueError`` for stage 2's)."""


def write_adapter_declaration(directory: str | Path, fmt: str, **extra: Any) -> Path:
    """Write :data:`ADAPTER_FILE` into ``directory`` (created if missing) for format id ``fmt``;
    ``extra`` keys (e.g. ``trained_on``) are kept as given. Returns the file's path."""
    version, cot, tiles = parse_prompt_format(fmt)
    d = Path(directory).expanduser()
    d.mkdir(parents=True, exist_ok=True)
    body = {
        "prompt_format": fmt,
        "system": SYSTEM if version == PROMPT_VERSION else None,
        "max_patches": tiles,
        "cot": cot,
        **extra,
    }
    path = d / ADAPTER_FILE
    atomic_write(path, json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    return path


def read_adapter_declaration(directory: str | Path | None) -> str | None:
    """The ``prompt_format`` an adapter directory declares; ``None`` when it has no
    :data:`ADAPTER_FILE`. A malformed file raises :class:`PromptFormatError`."""
    if directory is None or str(directory).strip() == "":
        return None
    path = Path(directory).expanduser() / ADAPTER_FILE
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        fmt = body["prompt_format"]
        parse_prompt_format(fmt)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise PromptFormatError(f"{path}: not a readable adapter declaration ({exc})") from None
    except ValueError as exc:
        raise PromptFormatError(f"{path}: {exc}") from None
    return str(fmt)


def declared_format(
    configured: str | None, adapter_dir: str | Path | None, *, setting: str
) -> str | None:
    """The format an evaluator declares: its adapter directory's file, or the ``prompt_format``
    setting; both given and different is an error (the file wins nothing: fix one of them)."""
    from_file = read_adapter_declaration(adapter_dir)
    if configured:
        try:
            parse_prompt_format(configured)
        except ValueError as exc:
            raise PromptFormatError(f"{exc} (setting {setting})") from None
    if from_file and configured and from_file != configured:
        raise PromptFormatError(
            f"the adapter '{adapter_dir}' declares prompt format {from_file} in {ADAPTER_FILE} "
            f"but {setting} says {configured}; remove or correct the setting"
        )
    return from_file or (configured or None)


def check_prompt_format(
    declared: str | None, max_patches: int, cot: bool | None, *, who: str
) -> None:
    """Refuse (:class:`PromptFormatError`) when an adapter that declares ``declared`` would be
    sent another prompt: another prompt version or tile budget, or (``cot`` given) the other
    chain-of-thought choice. ``None`` declared: nothing to check (a base model)."""
    if not declared:
        return
    version, trained_cot, tiles = parse_prompt_format(declared)
    if version != PROMPT_VERSION:
        raise PromptFormatError(
            f"{who} was trained on prompt format {declared} (version {version}); this build "
            f"sends version {PROMPT_VERSION} ({prompt_format(trained_cot, max_patches)}): "
            "re-export the training data and retrain the adapter"
        )
    if tiles is not None and tiles != int(max_patches):
        raise PromptFormatError(
            f"{who} was trained on prompt format {declared} ({tiles} tiles per group) but is set "
            f"to max_patches = {max_patches}; set max_patches = {tiles}"
        )
    if cot is not None and bool(cot) != trained_cot:
        raise PromptFormatError(
            f"{who} was trained on prompt format {declared}, not "
            f"{prompt_format(bool(cot), max_patches)}; run it with"
            f"{'' if trained_cot else 'out'} chain of thought"
        )
