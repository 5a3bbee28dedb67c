"""``rea2seg train sam``: a small segment-anything SAM trained from scratch on a geometric
training split's instance masks, with point and box prompts.

The paper keeps a *pretrained* SAM frozen (§4.2). None can be downloaded here, so the miniature
trains its own: segment-anything's own classes at small size (:func:`core.models.tiny_sam.build_small_sam`),
every weight trained. Per step: ``batch_size`` images, each encoded once, and ``prompts_per_image``
objects of each, prompted by one random interior point or by the object's box (``box_fraction``
of the prompts; boxes must be in the mix, a point-only model fails on boxes). The loss is SAM's
(:mod:`core.training.losses`): focal 20 : Dice 1 plus the IoU head's squared error, on the
single-output mask and on the best of the three multimask outputs. AdamW with a cosine schedule.
None of these choices is from the Rea2Seg paper; they follow SAM's training recipe at small scale.

The result is ``<out>/sam.pth`` in the format :func:`core.models.sam_backend.load_sam_backend`
reads (``{"model": state_dict, "rea2seg_tiny": {... "arch", "trained": true}}``) and a
``MODEL_CARD.md`` that says what it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.training.common import LossCurveCallback, resume_checkpoint
from core.training.generator_data import SceneBank
from core.training.hf import parts_trainer_class, time_budget_callback
from core.training.losses import sam_mask_loss, sam_multimask_loss
from core.training.sam_settings import SamTrainSettings
from core.training.splits import read_training_split

SAM_FILE = "sam.pth"
CARD_FILE = "MODEL_CARD.md"
MIN_OBJECT_PIXELS = 20  # objects hidden below this are not prompted


class SamPromptDataset(torch.utils.data.Dataset):
    """Item ``i``: one scene of the split (``i`` modulo its length) in SAM's input frame — the
    longest-side resize to ``img_size``, zero-padded — with ``prompts_per_image`` objects, each
    with its mask in that frame, one interior point and its box (a pure function of ``i``)."""

    def __init__(self, bank: SceneBank, s: SamTrainSettings, length: int) -> None:
        self.bank, self.s, self.length = bank, s, int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from segment_anything.utils.transforms import ResizeLongestSide

        s = self.s
        rng = np.random.default_rng([int(s.seed), int(i)])
        tr = ResizeLongestSide(s.img_size)
        for k in range(len(self.bank)):
            scene, img, masks = self.bank.get((int(i) + k) % len(self.bank))
            ids = [o.id for o in scene.objects if masks[o.id].sum() >= MIN_OBJECT_PIXELS]
            if ids:
                break
        else:
            raise RuntimeError("no scene of the split has a visible object")
        resized = tr.apply_image(img)
        h, w = resized.shape[:2]
        canvas = np.zeros((s.img_size, s.img_size, 3), np.uint8)
        canvas[:h, :w] = resized
        pick = rng.choice(ids, size=s.prompts_per_image, replace=len(ids) < s.prompts_per_image)
        gts, points, boxes = [], [], []
        for oid in pick:
            m = np.zeros((s.img_size, s.img_size), bool)
            small = tr.apply_image(masks[int(oid)].astype(np.uint8) * 255) > 127
            m[:h, :w] = small
            if not m.any():  # a sliver lost in the resize: fall back to the original pixels
                ys, xs = np.nonzero(masks[int(oid)])
                m[(ys * h // img.shape[0]), (xs * w // img.shape[1])] = True
            ys, xs = np.nonzero(m)
            j = int(rng.integers(len(ys)))
            points.append([xs[j] + 0.5, ys[j] + 0.5])  # pixel centre, SAM's input frame
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            gts.append(m)
        is_box = rng.random(s.prompts_per_image) < s.box_fraction
        return {
            "images": torch.from_numpy(canvas).permute(2, 0, 1).contiguous(),
            "input_hw": torch.tensor([h, w]),
            "gt": torch.from_numpy(np.stack(gts)),
            "points": torch.tensor(points, dtype=torch.float32),
            "boxes": torch.tensor(boxes, dtype=torch.float32),
            "is_box": torch.from_numpy(is_box),
        }


class SamTrainer(nn.Module):
    """A segment-anything ``Sam`` with the training forward: encoder once per image, then every
    prompt decoded in single-output and multimask mode; ``forward`` returns the loss and parts."""

    def __init__(self, sam: nn.Module) -> None:
        super().__init__()
        self.sam = sam

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().contiguous() for k, v in self.state_dict().items()}

    def decode(
        self, feats: torch.Tensor, points: torch.Tensor, boxes: torch.Tensor, is_box: torch.Tensor
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """One image's P prompts → [(low-res logits (P, M, s, s), iou (P, M))] for M = 1 and 3.
        A point prompt (with SAM's padding point) and a box prompt are both two sparse tokens,
        so all P prompts go through the decoder together."""
        sam = self.sam
        labels = torch.ones(points.shape[0], 1, dtype=torch.int, device=points.device)
        sp_pt, dense = sam.prompt_encoder(points=(points[:, None], labels), boxes=None, masks=None)
        sp_box, _ = sam.prompt_encoder(points=None, boxes=boxes, masks=None)
        sparse = torch.where(is_box[:, None, None], sp_box, sp_pt)
        pe = sam.prompt_encoder.get_dense_pe()
        return [
            sam.mask_decoder(
                image_embeddings=feats,
                image_pe=pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multi,
            )
            for multi in (False, True)
        ]

    def forward(
        self,
        images: torch.Tensor,
        input_hw: torch.Tensor,
        gt: torch.Tensor,
        points: torch.Tensor,
        boxes: torch.Tensor,
        is_box: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        sam = self.sam
        x = (images.float() - sam.pixel_mean) / sam.pixel_std
        for i, (h, w) in enumerate(input_hw.tolist()):
            x[i, :, h:, :] = 0
            x[i, :, :, w:] = 0
        feats = sam.image_encoder(x)
        size = sam.image_encoder.img_size
        parts: dict[str, list[torch.Tensor]] = {}
        for b in range(images.shape[0]):
            target = gt[b].float()
            for low, iou in self.decode(feats[b : b + 1], points[b], boxes[b], is_box[b]):
                logits = F.interpolate(low, (size, size), mode="bilinear", align_corners=False)
                if low.shape[1] == 1:
                    got, tag = sam_mask_loss(logits[:, 0], target, iou[:, 0]), "single"
                else:
                    got, tag = sam_multimask_loss(logits, target, iou), "multi"
                k = target.shape[0]
                parts.setdefault("loss", []).append(got["loss"] * k)
                for name in ("focal", "dice", "iou_mse"):
                    parts.setdefault(f"{tag}_{name}", []).append(got[name].detach() * k)
        n = float(gt.shape[0] * gt.shape[1])
        return {k: torch.stack(v).sum() / n for k, v in parts.items()}


def evaluate_points(sam: nn.Module, bank: SceneBank, n_scenes: int = 50, seed: int = 0) -> dict:
    """Held-out check: one random interior point per visible object of the first ``n_scenes``
    scenes → SAM's single-output mask through ``SamPredictor`` → IoU with the instance mask.
    Returns ``{"objects", "miou", "over_0.7", "miou_box"}`` (the box prompt scored likewise)."""
    from segment_anything import SamPredictor

    pred = SamPredictor(sam.eval())
    rng = np.random.default_rng(seed)
    ious, box_ious = [], []
    for i in range(min(n_scenes, len(bank))):
        scene, img, masks = bank.get(i)
        pred.set_image(img)
        for o in scene.objects:
            m = masks[o.id]
            if m.sum() < MIN_OBJECT_PIXELS:
                continue
            ys, xs = np.nonzero(m)
            j = int(rng.integers(len(ys)))
            with torch.no_grad():
                pm, _, _ = pred.predict(
                    np.array([[xs[j], ys[j]]]), np.array([1]), multimask_output=False
                )
                bm, _, _ = pred.predict(
                    box=np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]),
                    multimask_output=False,
                )
            for out, acc in ((pm[0], ious), (bm[0], box_ious)):
                inter, union = (out & m).sum(), (out | m).sum()
                acc.append(inter / union if union else 1.0)
    a = np.array(ious) if ious else np.zeros(0)
    return {
        "objects": int(a.size),
        "miou": float(a.mean()) if a.size else 0.0,
        "over_0.7": float((a > 0.7).mean()) if a.size else 0.0,
        "miou_box": float(np.mean(box_ious)) if box_ious else 0.0,
    }


def save_sam(sam: nn.Module, s: SamTrainSettings, path: str | Path, info: dict[str, Any]) -> Path:
    """Write the trained SAM as a checkpoint :func:`core.models.sam_backend.load_sam_backend`
    loads (not random), and a model card beside it."""
    from core.models.tiny_sam import TINY_KEY

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "sam", "img_size": int(s.img_size), "arch": dict(s.arch), "trained": True}
    state = {k: v.detach().cpu().contiguous() for k, v in sam.state_dict().items()}
    torch.save({"model": state, TINY_KEY: meta}, path)
    n_params = sum(p.numel() for p in sam.parameters())
    card = [
        "# Small SAM trained from scratch on the geometric split",
        "",
        "The paper keeps a pretrained SAM frozen; no pretrained SAM can be downloaded here, so this",
        "SAM (segment-anything's own classes at small size) was trained from random weights by",
        "`rea2seg train sam` on the instance masks of a geometric training split, with point and",
        "box prompts. It knows only CLEVR-like rendered scenes.",
        "",
        f"- parameters: {n_params:,}; input {s.img_size} px; architecture {json.dumps(s.arch)}",
        f"- training split seed {info.get('split', {}).get('seed')} (disjoint from evaluation seeds)",
        f"- steps: {info.get('steps')}; settings in training.json",
    ]
    if "held_out" in info:
        h = info["held_out"]
        card.append(
            f"- held-out (another training seed, {h['objects']} objects): mIoU {h['miou']:.3f} "
            f"from one point, {h['over_0.7']:.0%} of objects above 0.7, box prompt {h['miou_box']:.3f}"
        )
    (path.parent / CARD_FILE).write_text("\n".join(card) + "\n", encoding="utf-8")
    (path.parent / "training.json").write_text(json.dumps(info, indent=1, default=str))
    return path


def _collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def train_sam(
    split_dir: str | Path,
    out_dir: str | Path,
    settings: SamTrainSettings | None = None,
    *,
    resume: bool = False,
    device: str | None = None,
    held_out: str | Path | None = None,
    progress_bar: bool = True,
) -> Path:
    """Train a small SAM on a geometric training split (module docstring); returns
    ``<out_dir>/sam.pth``. ``held_out``: another training split folder scored after training
    (:func:`evaluate_points`), recorded in the model card."""
    from transformers import TrainingArguments

    from core.models.tiny_sam import build_small_sam

    s = settings or SamTrainSettings()
    split = read_training_split(split_dir)
    out = Path(out_dir)
    cuda = torch.cuda.is_available() and device != "cpu"
    sam = build_small_sam(s.img_size, s.arch, seed=s.seed % 2**31)
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=s.batch_size,
        learning_rate=s.lr,
        warmup_steps=s.warmup_steps,
        lr_scheduler_type="cosine",
        max_steps=s.max_steps,
        weight_decay=s.weight_decay,
        logging_steps=s.logging_steps,
        save_steps=s.save_steps,
        save_total_limit=s.save_total_limit,
        seed=s.seed % 2**31,
        use_cpu=not cuda,
        dataloader_num_workers=s.workers,
        remove_unused_columns=False,
        # text-only batches leave the connection module unused, point-only ones SAM's box
        # embeddings: DDP must allow that
        ddp_find_unused_parameters=True,
        report_to=[],
        disable_tqdm=not progress_bar,
    )
    length = s.max_steps * s.batch_size * max(int(args.world_size), 1)
    trainer = parts_trainer_class()(
        model=SamTrainer(sam),
        args=args,
        train_dataset=SamPromptDataset(SceneBank(split_dir), s, length),
        data_collator=_collate,
        callbacks=[LossCurveCallback(out)]
        + ([time_budget_callback(s.max_minutes)] if s.max_minutes > 0 else []),
    )
    ckpt = resume_checkpoint(out) if resume else None
    if resume and ckpt is None:
        raise ValueError(f"--resume: no checkpoint-N folder in '{out}'")
    trainer.train(resume_from_checkpoint=ckpt)
    info: dict[str, Any] = {
        "split": split,
        "settings": s.to_dict(),
        "steps": int(trainer.state.global_step),
        "resumed_from": ckpt,
    }
    if held_out is not None and trainer.args.should_save:
        read_training_split(held_out)
        info["held_out"] = evaluate_points(sam.cpu(), SceneBank(held_out))
    path = out / SAM_FILE
    if trainer.args.should_save:
        save_sam(sam, s, path, info)
    return path
