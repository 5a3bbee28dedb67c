"""User config file and segmenter presets: which MLLM and which SAM, from local paths only.

Config file: TOML at ``$REA2SEG_CONFIG`` or ``~/.config/rea2seg/config.toml``::

    [presets.lisa-7b]
    mllm_path = "/models/lisa-7b"        # LISA-style directory (core.models.lisa)
    sam_checkpoint = "/models/sam.pth"   # optional: default is the SAM inside mllm_path
    sam_model_type = "vit_h"             # segment-anything registry key
    device = "cuda"                      # default "cpu"
    dtype = "bfloat16"                   # default: float32 on CPU, bfloat16 on CUDA
    max_new_tokens = 32                  # optional, overrides the model's rea2seg.json

    [presets.lens-3b]
    mllm_path = "/models/lens-reasonseg-cot"   # Qwen2.5-VL + LENS head (core.models.lens)
    sam2_checkpoint = "/models/sam2_hiera_large.pt"
    sam2_config = "configs/sam2/sam2_hiera_l.yaml"  # optional: guessed from the file name
    device = "cuda"

Presets (:data:`PRESETS`): ``lisa-7b`` (LLaVA + ``[SEG]`` + SAM ViT-H), ``lens-3b``
(Qwen2.5-VL-3B + LENS queries + the original SAM2, App. B), and ``tiny-random-lisa`` /
``tiny-random-lens``: tiny random-init models of the same real classes, built on first use into
``<data dir>/tiny-random/`` (:func:`core.paths.tiny_models_dir`) and loaded back through the same loaders;
their output is noise and is labelled random (``is_random``). ``tiny-random`` is an alias of
``tiny-random-lisa``. ``mini-geometric``: small LISA-style models trained on the synthetic
geometric split by ``rea2seg train miniature`` (:mod:`core.training.miniature`), read from the
bundled ``resources/models/mini-geometric/segmenter`` unless ``mllm_path`` is set.

Public API: :func:`load_prompt_model`, :func:`preset_sam_spec` (→ :class:`SamSpec`, what the SAM
side loads), :func:`load_preset_sam`, :func:`resolve_paths` (validation: ONE
:class:`ModelLoadError` naming every bad file and its setting), :func:`preset_problems`
(the same, as strings), :func:`load_config`, :func:`config_path`, :func:`save_config`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.models.base import ModelLoadError, PromptModel, SamBackend, SamKind
from core.paths import config_path, resource_path, tiny_models_dir


@dataclass(frozen=True)
class Setting:
    """One entry of a preset's config table (``[<table>.<name>]``): ``key``, a ``label`` for
    forms, its ``kind`` (``"dir"``, ``"file"`` or ``"text"``), whether the preset cannot load
    without it (``required``) and an environment variable that stands in for it (``env``)."""

    key: str
    label: str
    kind: str = "text"
    required: bool = False
    env: str | None = None


@dataclass(frozen=True)
class Adapter:
    """A segmentation-MLLM family: how its prompt model loads and which SAM it drives.

    loader: ``"module:function"`` of ``load(path, *, device, is_random, setting, name, **options)
    -> PromptModel`` (imported only when the preset loads). sam_kind: ``"sam"`` (SAM ViT, its
    checkpoint in ``sam_checkpoint`` or inside the MLLM directory) or ``"sam2"`` (``sam2_checkpoint``
    + ``sam2_config``). build_tiny: ``"module:function"`` writing a tiny random-init model directory
    of the real classes (for the family's ``tiny-random-*`` preset). settings: the entries of a
    preset's ``[presets.<name>]`` table that the settings form shows."""

    loader: str
    sam_kind: SamKind
    build_tiny: str
    settings: tuple[Setting, ...] = ()


@dataclass(frozen=True)
class PresetSpec:
    """A segmenter preset: ``name`` (the config table ``[presets.<name>]``), its adapter
    ``family`` (a key of :data:`ADAPTERS`), whether it is a tiny random-weight model, and its
    ``aliases``. ``bundled``: the parts of a :func:`core.paths.resource_path` folder that is the
    preset's ``mllm_path`` when the config sets none; ``make``: the command that makes those
    files; ``label``: what the preset is, for traces and forms; ``stage1``: stage-1 settings
    that replace the paper's defaults for this preset (``(name, value)`` pairs)."""

    name: str
    family: str
    is_random: bool = False
    aliases: tuple[str, ...] = ()
    bundled: tuple[str, ...] = ()
    make: str = ""
    label: str = ""
    stage1: tuple[tuple[str, Any], ...] = ()

    @property
    def adapter(self) -> Adapter:
        return ADAPTERS[self.family]

    @property
    def sam_kind(self) -> SamKind:
        return self.adapter.sam_kind


# The registry: a new model adapter is one module (a loader returning a PromptModel) plus one
# entry here and its presets in PRESET_SPECS.
_DEVICE = Setting("device", "Device (cpu / cuda)")
ADAPTERS: dict[str, Adapter] = {
    "lisa": Adapter(
        "core.models.lisa:load_lisa",
        "sam",
        "core.models.tiny_mllm:build_tiny_lisa",
        (
            Setting("mllm_path", "LISA-style model directory", "dir", required=True),
            Setting("sam_checkpoint", "SAM checkpoint (.pth)", "file"),
            Setting("sam_model_type", "SAM model type (vit_h / vit_l / vit_b)"),
            _DEVICE,
        ),
    ),
    "lens": Adapter(
        "core.models.lens:load_lens",
        "sam2",
        "core.models.tiny_mllm:build_tiny_lens",
        (
            Setting("mllm_path", "LENS (Qwen2.5-VL) model directory", "dir", required=True),
            Setting("sam2_checkpoint", "SAM2 checkpoint (.pt)", "file", required=True),
            Setting("sam2_config", "SAM2 model config (e.g. configs/sam2.1/sam2.1_hiera_l.yaml)"),
            _DEVICE,
        ),
    ),
}
PRESET_SPECS: tuple[PresetSpec, ...] = (
    PresetSpec("lisa-7b", "lisa"),
    PresetSpec("lens-3b", "lens"),
    PresetSpec("tiny-random-lisa", "lisa", is_random=True, aliases=("tiny-random",)),
    PresetSpec("tiny-random-lens", "lens", is_random=True),
    PresetSpec(
        "mini-geometric",
        "lisa",
        bundled=("models", "mini-geometric", "segmenter"),
        make="rea2seg train miniature --out DIR",
        label="small models trained on the synthetic geometric split",
        # the paper's layers 14–30 are LLaVA-7B's; the miniature's LLaVA has 4: average them
        # all (not from the paper)
        stage1=(("layers", None),),
    ),
)
PRESETS = tuple(p.name for p in PRESET_SPECS)
ALIASES = {a: p.name for p in PRESET_SPECS for a in p.aliases}


@dataclass(frozen=True)
class EvaluatorSpec:
    """A stage-2 evaluator preset, ``[evaluator.<name>]`` in the same config file: ``backend``
    names its loader in :data:`core.evaluator.presets.LOADERS` (``"tiny"``, ``"local"``,
    ``"openai"``, ``"mini"``), ``is_random`` marks random weights, ``settings`` its config
    entries. ``bundled``: the parts of a :func:`core.paths.resource_path` folder holding a
    trained evaluator folder that is used unless ``lora_path`` is set; ``make``: the command
    that makes it."""

    name: str
    backend: str
    is_random: bool = False
    settings: tuple[Setting, ...] = ()
    bundled: tuple[str, ...] = ()
    make: str = ""


# The evaluators join the segmenters in this one registry: a new evaluator preset is one entry
# here (and, for a new backend, one loader in core.evaluator.presets).
EVALUATOR_SPECS: tuple[EvaluatorSpec, ...] = (
    EvaluatorSpec("tiny-random", "tiny", is_random=True),
    EvaluatorSpec(
        "internvl3-8b",
        "local",
        settings=(
            Setting("model_path", "InternVL3 -hf directory", "dir", required=True),
            Setting("lora_path", "Evaluator LoRA adapter (optional)", "dir"),
            Setting("device", "Evaluator device"),
        ),
    ),
    EvaluatorSpec(
        "openai",
        "openai",
        settings=(
            Setting(
                "base_url",
                "OpenAI-compatible base URL",
                required=True,
                env="REA2SEG_EVAL_BASE_URL",
            ),
            Setting("model", "Endpoint model name"),
        ),
    ),
    # the evaluator of `rea2seg train miniature`: resources/models/mini-geometric/evaluator
    # unless lora_path names another such folder (core.evaluator.presets._load_mini)
    EvaluatorSpec(
        "mini-geometric",
        "mini",
        settings=(
            Setting("lora_path", "Trained evaluator folder (default: the bundled one)", "dir"),
        ),
        bundled=("models", "mini-geometric", "evaluator"),
        make="rea2seg train miniature --out DIR",
    ),
)
EVALUATOR_PRESETS = tuple(e.name for e in EVALUATOR_SPECS)


def evaluator_spec(name: str) -> EvaluatorSpec:
    """The :class:`EvaluatorSpec` of an evaluator preset (unknown: :class:`ModelLoadError`)."""
    for e in EVALUATOR_SPECS:
        if e.name == name:
            return e
    raise ModelLoadError(
        f"unknown evaluator preset {name!r}; available: {', '.join(EVALUATOR_PRESETS)}"
    )


def settings_fields() -> list[tuple[str, str, str, str]]:
    """Every configurable entry of the registry as ``(table, name, key, label)``: the segmenter
    presets' (``presets``; tiny ones have none), then the evaluators' (``evaluator``)."""
    rows = [
        ("presets", p.name, st.key, st.label)
        for p in PRESET_SPECS
        if not p.is_random
        for st in p.adapter.settings
    ]
    return rows + [
        ("evaluator", e.name, st.key, st.label) for e in EVALUATOR_SPECS for st in e.settings
    ]


def setting_kinds() -> dict[str, str]:
    """``key -> kind`` (``"dir"``, ``"file"``, ``"text"``) over the whole registry."""
    out: dict[str, str] = {}
    for p in PRESET_SPECS:
        out.update({st.key: st.kind for st in p.adapter.settings})
    for e in EVALUATOR_SPECS:
        out.update({st.key: st.kind for st in e.settings})
    return out


def evaluator_problems(
    name: str, config: dict[str, Any] | None = None, *, missing: bool = True
) -> list[str]:
    """Plain-language problems that stop an evaluator preset from loading (``[]`` when none are
    seen without loading it): a required entry not set (and no environment variable for it), a
    path entry naming nothing. ``missing=False`` reports only paths that do not exist."""
    cfg = load_config() if config is None else config
    try:
        spec = evaluator_spec(name)
    except ModelLoadError as exc:
        return [str(exc)]
    section = (cfg.get("evaluator") or {}).get(name) or {}
    problems: list[str] = []
    for st in spec.settings:
        where = f"evaluator.{name}.{st.key}"
        raw = str(section.get(st.key) or "").strip()
        if not raw:
            if missing and st.required and not (st.env and os.environ.get(st.env)):
                alt = f", or ${st.env}" if st.env else ""
                problems.append(f"{name}: {st.key} is not set (setting {where}{alt})")
        elif st.kind in ("dir", "file") and not Path(raw).expanduser().exists():
            problems.append(f"{name}: {st.key} '{raw}' does not exist (setting {where})")
    if missing and spec.bundled and not str(section.get("lora_path") or "").strip():
        bundled = resource_path(*spec.bundled)
        if not (bundled / "adapter_config.json").is_file():
            problems.append(
                f"{name}: its evaluator files are not in '{bundled}'; make them with "
                f"`{spec.make}` (setting evaluator.{name}.lora_path)"
            )
    return problems


SAM2_DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_l.yaml"
TINY_VERSION = "v3"  # bump when the tiny builds change, so stale caches are rebuilt


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """The parsed config (``{}`` when the file does not exist); a malformed file is a
    :class:`ModelLoadError` naming it."""
    p = Path(path).expanduser() if path else config_path()
    if not p.is_file():
        return {}
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{p}: not valid TOML ({exc})") from exc


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{s}"'


def dumps_config(cfg: dict[str, Any]) -> str:
    """TOML text for ``{table: {name: {key: scalar}}}`` (the shape of this config)."""
    lines: list[str] = []
    for table, entries in cfg.items():
        for name, values in entries.items():
            lines.append(f'[{table}."{name}"]')
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v not in (None, "")]
            lines.append("")
    return "\n".join(lines)


def save_config(cfg: dict[str, Any], path: str | Path | None = None) -> Path:
    """Write the config atomically (a temp file renamed over the old one); returns its path."""
    p = Path(path).expanduser() if path else config_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    text = dumps_config(cfg)
    tomllib.loads(text)  # never write a file this program cannot read back
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)
    return p


def canonical_preset(preset: str) -> str:
    """The preset's canonical name (aliases resolved); unknown names are a :class:`ModelLoadError`."""
    name = ALIASES.get(preset, preset)
    if name not in PRESETS:
        raise ModelLoadError(f"unknown preset {preset!r}; available: {', '.join(PRESETS)}")
    return name


def preset_spec(preset: str) -> PresetSpec:
    """The :class:`PresetSpec` of a preset name or alias (unknown: :class:`ModelLoadError`)."""
    name = canonical_preset(preset)
    return next(p for p in PRESET_SPECS if p.name == name)


def preset_stage1(preset: str) -> dict[str, Any]:
    """The stage-1 settings a preset puts in place of the paper's defaults (``{}`` for most,
    and for a name outside :data:`PRESET_SPECS`)."""
    name = ALIASES.get(preset, preset)
    spec = next((p for p in PRESET_SPECS if p.name == name), None)
    return dict(spec.stage1) if spec is not None else {}


def _import(target: str) -> Any:
    from importlib import import_module

    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


# ---------------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class SamSpec:
    """What the SAM side needs to build a preset's SAM.

    kind: ``"sam"`` (segment-anything) or ``"sam2"``.
    checkpoint: a local file (segment-anything or SAM2 state dict, or a tiny-SAM file of
        :mod:`core.models.tiny_sam`) to give ``load_sam_backend(kind, checkpoint, model_cfg,
        device, model_type=..., setting=...)``; ``None`` when SAM's tensors live inside the
        MLLM checkpoint (``weights_dir`` / ``weights_prefix``; read them with
        :meth:`load_state_dict` and build with :func:`build_sam_v1`).
    model_cfg: SAM2 config name (``kind == "sam2"``). model_type: segment-anything registry key.
    setting: the config key (with the config file) that named the checkpoint, for messages.
    """

    kind: SamKind
    checkpoint: Path | None
    model_cfg: str | None = None
    model_type: str = "vit_h"
    setting: str = ""
    weights_dir: Path | None = None
    weights_prefix: str = ""
    is_random: bool = False

    def load_state_dict(self) -> dict[str, Any]:
        """SAM's state dict (library key names), from ``checkpoint`` or from the MLLM weights."""
        import torch

        if self.checkpoint is not None:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
            return (
                state["model"]
                if isinstance(state, dict) and isinstance(state.get("model"), dict)
                else state
            )
        from core.models.lisa import read_lisa_sam_state_dict

        state = read_lisa_sam_state_dict(self.weights_dir) if self.weights_dir else None
        if not state:
            raise ModelLoadError(f"no SAM tensors in '{self.weights_dir}' (setting {self.setting})")
        return state


@dataclass(frozen=True)
class ResolvedPreset:
    """A preset with every path checked. ``mllm_path``: the model directory; ``sam``: its SAM;
    ``options``: loader keyword arguments from the config (``max_new_tokens``, ``dtype``)."""

    preset: str
    family: str  # a key of ADAPTERS
    mllm_path: Path
    sam: SamSpec
    device: str
    is_random: bool
    setting: str
    options: dict[str, Any] = field(default_factory=dict)


def _where(preset: str, key: str) -> str:
    return f"presets.{preset}.{key} in {config_path()}"


def guess_sam2_config(checkpoint: str | Path) -> str:
    """The sam2 config matching a checkpoint's file name (``sam2.1_hiera_large.pt`` →
    ``configs/sam2.1/sam2.1_hiera_l.yaml``, ``sam2_hiera_small.pt`` → ``configs/sam2/sam2_hiera_s.yaml``);
    :data:`SAM2_DEFAULT_CONFIG` when the name says nothing."""
    name = Path(checkpoint).name.lower()
    size = next(
        (
            s
            for pat, s in (
                ("base_plus", "b+"),
                ("b+", "b+"),
                ("large", "l"),
                ("small", "s"),
                ("tiny", "t"),
                ("_l.", "l"),
                ("_s.", "s"),
                ("_t.", "t"),
            )
            if pat in name
        ),
        None,
    )
    if size is None:
        return SAM2_DEFAULT_CONFIG
    if re.search(r"sam2\.1|sam2p1|sam21", name):
        return f"configs/sam2.1/sam2.1_hiera_{size}.yaml"
    return f"configs/sam2/sam2_hiera_{size}.yaml"


def _tiny_dir(preset: str) -> Path:
    return tiny_models_dir() / f"{preset}-{TINY_VERSION}"


def ensure_tiny(preset: str) -> Path:
    """The tiny random model directory of a ``tiny-random-*`` preset, built on first use by its
    adapter's ``build_tiny`` (plus a tiny SAM2 for SAM2 families).

    Built into a temporary folder and renamed into place, so a concurrent reader never sees a
    half-written model; a stale folder of an older :data:`TINY_VERSION` is simply not used."""
    spec = preset_spec(preset)
    target = _tiny_dir(spec.name)
    if (target / "READY").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=target.parent))
    try:
        _import(spec.adapter.build_tiny)(tmp)
        if spec.sam_kind == "sam2":
            from core.models.tiny_sam import save_tiny_sam2

            save_tiny_sam2(tmp / "sam2_tiny.pt")
        (tmp / "READY").write_text("tiny random-init model: output is noise\n")
        try:
            tmp.rename(target)
        except OSError:  # another process won the race
            if not (target / "READY").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _problems(preset: str, config: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """(problems, resolved fields) for a real preset; nothing is loaded."""
    section = dict(config.get("presets", {}).get(preset, {}))
    problems: list[str] = []
    spec = preset_spec(preset)
    if spec.bundled and not str(section.get("mllm_path") or "").strip():
        bundled = resource_path(*spec.bundled)
        if not (bundled / "config.json").is_file():
            problems.append(
                f"{preset}: its model files are not in '{bundled}'; make them with "
                f"`{spec.make}` and copy DIR/models to '{bundled.parent}', or set "
                f"{_where(preset, 'mllm_path')} to DIR/models/segmenter"
            )
            return problems, {"mllm": None, "section": section, "sam": None}
        section["mllm_path"] = str(bundled)

    def path_of(key: str, *, required: bool, want_dir: bool) -> Path | None:
        raw = str(section.get(key) or "").strip()
        if not raw:
            if required:
                problems.append(f"{preset}: {key} is not set (setting {_where(preset, key)})")
            return None
        p = Path(raw).expanduser()
        if not p.exists():
            problems.append(
                f"{preset}: {key} '{raw}' does not exist (setting {_where(preset, key)})"
            )
            return None
        if want_dir and not p.is_dir():
            problems.append(
                f"{preset}: {key} '{raw}' is not a directory (setting {_where(preset, key)})"
            )
            return None
        if not want_dir and not p.is_file():
            problems.append(
                f"{preset}: {key} '{raw}' is not a file (setting {_where(preset, key)})"
            )
            return None
        return p

    mllm = path_of("mllm_path", required=True, want_dir=True)
    out: dict[str, Any] = {"mllm": mllm, "section": section}
    if preset_spec(preset).sam_kind == "sam":
        sam_file = path_of("sam_checkpoint", required=False, want_dir=False)
        out["sam"] = None
        if sam_file is not None:
            out["sam"] = SamSpec(
                "sam",
                sam_file,
                None,
                str(section.get("sam_model_type", "vit_h")),
                _where(preset, "sam_checkpoint"),
            )
        elif mllm is not None and not str(section.get("sam_checkpoint") or "").strip():
            from core.models.lisa import find_lisa_sam

            src = find_lisa_sam(mllm)
            if src is None:
                problems.append(
                    f"{preset}: no SAM weights: '{mllm}' has no sam.pth and no visual_model tensors; set "
                    f"the SAM checkpoint (setting {_where(preset, 'sam_checkpoint')})"
                )
            elif src.kind == "file":
                out["sam"] = SamSpec(
                    "sam",
                    src.path,
                    None,
                    str(section.get("sam_model_type", "vit_h")),
                    _where(preset, "mllm_path"),
                )
            else:
                out["sam"] = SamSpec(
                    "sam",
                    None,
                    None,
                    str(section.get("sam_model_type", "vit_h")),
                    _where(preset, "mllm_path"),
                    weights_dir=src.path,
                    weights_prefix=src.prefix,
                )
    else:
        sam2 = path_of("sam2_checkpoint", required=True, want_dir=False)
        cfg_name = str(section.get("sam2_config") or "").strip() or (
            guess_sam2_config(sam2) if sam2 else None
        )
        out["sam"] = (
            SamSpec("sam2", sam2, cfg_name, setting=_where(preset, "sam2_checkpoint"))
            if sam2
            else None
        )
    return problems, out


def preset_problems(preset: str, config: dict[str, Any] | None = None) -> list[str]:
    """Plain-language problems that stop a preset from loading (``[]`` when it can be loaded).
    Each names the file and the setting. Tiny presets never have problems."""
    cfg = load_config() if config is None else config
    try:
        name = canonical_preset(preset)
    except ModelLoadError as exc:
        return [str(exc)]
    if preset_spec(name).is_random:
        return []
    return _problems(name, cfg)[0]


def resolve_paths(preset: str, config: dict[str, Any] | None = None) -> ResolvedPreset:
    """Check every path a preset needs, without loading anything.

    Raises ONE :class:`ModelLoadError` listing every problem, each naming the file and the
    setting, e.g. ``lisa-7b: mllm_path '/x/y' does not exist (setting presets.lisa-7b.mllm_path
    in ~/.config/rea2seg/config.toml)``. Tiny presets are built here on first use."""
    cfg = load_config() if config is None else config
    name = canonical_preset(preset)
    section = dict(cfg.get("presets", {}).get(name, {}))
    device = str(section.get("device") or "cpu")
    options = {k: section[k] for k in ("max_new_tokens", "dtype") if k in section}
    spec = preset_spec(name)
    if spec.is_random:
        d = ensure_tiny(name)
        if spec.sam_kind == "sam":
            sam = SamSpec("sam", d / "sam.pth", None, "vit_h", f"tiny model in {d}", is_random=True)
        else:
            sam = SamSpec(
                "sam2", d / "sam2_tiny.pt", None, setting=f"tiny model in {d}", is_random=True
            )
        return ResolvedPreset(
            name, spec.family, d, sam, device, True, f"tiny model in {d}", options
        )
    problems, out = _problems(name, cfg)
    if problems:
        raise ModelLoadError(problems[0] if len(problems) == 1 else "; ".join(problems))
    return ResolvedPreset(
        name,
        spec.family,
        out["mllm"],
        out["sam"],
        device,
        False,
        _where(name, "mllm_path"),
        options,
    )


# ---------------------------------------------------------------------------------- loading


def load_prompt_model(
    preset: str, config: dict[str, Any] | None = None, device: str | None = None
) -> PromptModel:
    """The preset's MLLM as a :class:`PromptModel` (LISA-style or LENS), from local paths only.
    ``device`` overrides the preset's ``device`` setting."""
    r = resolve_paths(preset, config)
    dev = device or r.device
    kwargs: dict[str, Any] = {
        "device": dev,
        "is_random": r.is_random,
        "setting": r.setting,
        "name": f"{r.preset}-random" if r.is_random else r.preset,
    }
    if "max_new_tokens" in r.options:
        kwargs["max_new_tokens"] = int(r.options["max_new_tokens"])
    if "dtype" in r.options:
        kwargs["dtype"] = r.options["dtype"]
    return _import(ADAPTERS[r.family].loader)(r.mllm_path, **kwargs)


def preset_sam_spec(preset: str, config: dict[str, Any] | None = None) -> SamSpec:
    """The preset's SAM: kind, checkpoint file (or the MLLM weights holding it), config, setting.

    lisa-7b: ``sam_checkpoint`` if set, else ``sam.pth`` in ``mllm_path``, else the
    ``visual_model`` tensors of ``mllm_path`` (LISA fine-tunes SAM's decoder, so its own SAM is
    the default). lens-3b: ``sam2_checkpoint`` (the original SAM2, App. B) with ``sam2_config``
    or the config its file name implies."""
    return resolve_paths(preset, config).sam


def build_sam_v1(spec: SamSpec) -> Any:
    """segment-anything ``Sam`` for a ``kind == "sam"`` spec: ``sam_model_registry[model_type]``
    with :meth:`SamSpec.load_state_dict`; tiny-SAM files go through :mod:`core.models.tiny_sam`."""
    if spec.kind != "sam":
        raise ModelLoadError(
            f"build_sam_v1 needs a SAM spec, got {spec.kind!r} (setting {spec.setting})"
        )
    if spec.is_random and spec.checkpoint is not None:
        from core.models.tiny_sam import load_tiny_sam

        return load_tiny_sam(spec.checkpoint)
    from segment_anything import sam_model_registry

    if spec.model_type not in sam_model_registry or spec.model_type == "default":
        raise ModelLoadError(
            f"unknown SAM model type {spec.model_type!r}: use vit_h, vit_l or vit_b "
            f"(setting sam_model_type)"
        )
    sam = sam_model_registry[spec.model_type]()
    try:
        sam.load_state_dict(spec.load_state_dict())
    except RuntimeError as exc:
        raise ModelLoadError(
            f"the SAM weights do not fit SAM {spec.model_type} (is sam_model_type right?): "
            f"{str(exc).splitlines()[0]} (setting {spec.setting})"
        ) from exc
    return sam.eval()


def load_preset_sam(
    preset: str, config: dict[str, Any] | None = None, device: str | None = None
) -> SamBackend:
    """The preset's SAM backend: ``load_sam_backend`` for checkpoint files, or a
    :class:`SamV1Backend` over :func:`build_sam_v1` when SAM lives inside the MLLM weights."""
    r = resolve_paths(preset, config)
    spec, dev = r.sam, device or r.device
    if spec.checkpoint is None:
        from core.models.sam_backend import SamV1Backend

        return SamV1Backend(
            build_sam_v1(spec), dev, name=f"sam-{spec.model_type}:{r.mllm_path.name}"
        )
    from core.models.sam_backend import load_sam_backend

    return load_sam_backend(
        spec.kind,
        spec.checkpoint,
        spec.model_cfg,
        dev,
        model_type=spec.model_type,
        setting=spec.setting,
    )
