"""The model a run trains: a fresh registry model, pretrained weights moved to the run's size, window
and classes (finetune), or the architecture a resumed run had reached; then the memory options."""

from __future__ import annotations

import torch

from swincli.checkpoint import Preprocessing
from swincli.datasets.build import Data
from swincli import distributed
from swincli.engine.optim import freeze_all_but_head
from swincli.engine.train_config import TrainConfig
from swincli.errors import SwinError
from swincli.models.complexity import window_notes
from swincli.models.sequential_attention import format_stages, parse_stages


def prepare_model(cfg: TrainConfig, finetune: bool, saved: dict | None, data: Data, size: tuple[int, int] | None,
                   rep, ctx: distributed.Dist) -> torch.nn.Module:  # fmt: skip
    """The model on its device, with class names, preprocessing and the memory options applied."""
    if saved is not None:  # the architecture the run had reached (after any resize or new head)
        from swincli.models.config import SwinConfig
        from swincli.models.swin import SwinTransformer

        model, adapted = SwinTransformer(SwinConfig.from_dict(saved["model_config"])), []
    else:
        model, adapted = build_model(cfg, finetune, len(data.classes), size)
    for line in adapted:
        rep.note(line)
    model.class_names = list(data.classes)
    model.preprocessing = Preprocessing(input_size=model.config.image_hw, crop_pct=1.0 if cfg.data is None else 0.875,
                                        mean=data.mean, std=data.std)  # fmt: skip
    if cfg.freeze:
        rep.note(f"--freeze: training the head only ({freeze_all_but_head(model):,} parameters)")
    if cfg.lora:  # after any resize and new head; a resumed run gets them again before its weights are restored
        from swincli.engine.lora import add_adapters

        rep.note(add_adapters(model, cfg))
    if cfg.grad_checkpointing:
        model.set_grad_checkpointing(True)
    apply_memory_tricks(model, cfg)
    model.to(ctx.device)
    return model


def build_model(cfg: TrainConfig, finetune: bool, num_classes: int, size):
    """A fresh registry model, or (finetune) pretrained weights moved to the new size, window and classes."""
    from swincli.models.registry import create_model

    notes = []
    if not finetune:
        model = create_model(cfg.model, num_classes=num_classes, img_size=size, window_size=cfg.window,
                             drop_path_rate=cfg.drop_path)  # fmt: skip
        return model, window_notes(model.config)
    from swincli.loader import load

    model = load(cfg.checkpoint, img_size=size, window_size=cfg.window, num_classes=num_classes, model=cfg.model)
    if not cfg.checkpoint:
        notes.append(f"starting from the published weights of {cfg.model}")
    notes += model.load_notes
    report = model.resize_report
    if report is not None and report.changed:
        (h0, w0), (h1, w1) = report.img_size
        wins = lambda i: ",".join(str(s.window[i][0]) for s in report.stages)  # noqa: E731
        notes.append(f"resized {h0}x{w0} (windows {wins(0)}) -> {h1}x{w1} (windows {wins(1)}) with the official rules")
        notes += report.padding
    model.set_drop_path(cfg.drop_path)
    return model, notes


def apply_memory_tricks(model: torch.nn.Module, cfg: TrainConfig) -> None:
    """--grad-checkpointing and --attn-chunk (in --attn-chunk-stages) on the model, as the config has them now."""
    model.set_grad_checkpointing(cfg.grad_checkpointing)
    if cfg.attn_chunk:
        model.set_attention_chunk(cfg.attn_chunk, parse_stages(cfg.attn_chunk_stages, model.config.num_stages))


def fit_budget(model: torch.nn.Module, cfg: TrainConfig, explicit: list[str], **memory) -> str:
    """--memory-budget: the cheapest memory tricks whose estimated peak fits (:mod:`swincli.memory_plan`), set
    on ``cfg`` and the model; flags given explicitly are kept. Returns the note; refuses when nothing fits."""
    from swincli.memory import gib, parse_size
    from swincli.memory_plan import choose, describe

    budget = parse_size(str(cfg.memory_budget))
    fixed_stages = "attn_chunk_stages" in explicit and cfg.attn_chunk_stages is not None
    plan, smallest = choose(model.config, cfg.batch_size, budget,
                            grad_checkpointing=True if cfg.grad_checkpointing else None,
                            attn_chunk=cfg.attn_chunk or None,
                            stages=parse_stages(cfg.attn_chunk_stages, model.config.num_stages) if fixed_stages else "default",
                            **memory)  # fmt: skip
    if plan is None:
        h, w = model.config.image_hw
        raise SwinError(f"nothing fits --memory-budget {gib(budget)} at batch {cfg.batch_size}, {h}x{w} px: the "
                        f"least, {smallest.flags}, needs about {gib(smallest.estimate.total)}",
                        hint="a smaller --batch-size or --size, or a larger budget")  # fmt: skip
    cfg.grad_checkpointing, cfg.attn_chunk = plan.grad_checkpointing, plan.attn_chunk
    if plan.attn_chunk:
        cfg.attn_chunk_stages = format_stages(plan.chunk_stages)
    apply_memory_tricks(model, cfg)
    return describe(plan, budget)
