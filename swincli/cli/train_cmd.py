"""``swin train`` and ``swin finetune``: one function with one option list, mounted under both names.

The function reads which command ran from ``ctx.command.name``; each name gets its own help text and
examples through :class:`swincli.cli.app.Command`. torch is imported only once a command runs.
"""

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from swincli import api
from swincli.cli.app import Command
from swincli.cli.options import (
    AmpOpt, AttnChunkOpt, AttnChunkStagesOpt, BatchOpt, CheckpointOpt, DeviceOpt, ForceOpt, ModelOpt, SizeOpt,
    WindowOpt, WorkersOpt, domain, in_panel,
)  # fmt: skip

P_DATA, P_SCHED, P_AUG, P_RUN, P_DIST = "Data and model", "Schedule", "Regularisation", "Run", "Memory and scale"

# where a value came from (click's ParameterSource, matched by name: Typer may vendor its own click)
GIVEN = ("COMMANDLINE", "ENVIRONMENT")


def _opt(*names: str, help: str, panel: str, **kw):
    """An option in its help panel; a numeric one gets its domain from :data:`swincli.limits.TRAIN` (shared
    with config files and ``TrainConfig``), so a bad value is a usage error before anything starts."""
    rng = api.limits.TRAIN.get(names[0].lstrip("-").replace("-", "_"))
    kw.update(domain(rng, help) if rng is not None else {"help": help})
    return typer.Option(*names, rich_help_panel=panel, **kw)


def run(
    ctx: typer.Context,
    model: in_panel(ModelOpt, P_DATA) = None,
    data: Annotated[Optional[str], _opt("--data", "-d", help="DIR/{train,val}/<class>/*, one class tree, a torchvision name (cifar10, ...), hf:NAME[:config] (Hugging Face datasets) or wds:SHARDS[::VAL_SHARDS] (webdataset tars, e.g. 'wds:train-{000..099}.tar'). Default: built-in shapes.", panel=P_DATA)] = None,
    checkpoint: in_panel(CheckpointOpt, P_DATA) = None,
    size: in_panel(SizeOpt, P_DATA) = None,
    window: in_panel(WindowOpt, P_DATA) = None,
    val_split: Annotated[Optional[float], _opt("--val-split", help="Hold out this fraction when there is no val/ folder.", panel=P_DATA)] = None,
    image_column: Annotated[Optional[str], _opt("--image-column", help="--data hf:...: the column of images (default: the Image feature).", panel=P_DATA)] = None,
    label_column: Annotated[Optional[str], _opt("--label-column", help="--data hf:...: the column of labels (default: the ClassLabel feature).", panel=P_DATA)] = None,
    epoch_size: Annotated[Optional[int], _opt("--epoch-size", help="--data wds:...: samples an epoch; skips counting the shards at the start (remote pipe:/https shards).", panel=P_DATA)] = None,
    epochs: Annotated[Optional[int], _opt("--epochs", help="Epochs.", panel=P_SCHED)] = None,
    batch_size: in_panel(BatchOpt, P_SCHED) = None,
    lr: Annotated[Optional[float], _opt("--lr", help="Peak learning rate (default: recipe value x total batch / 512).", panel=P_SCHED)] = None,
    min_lr: Annotated[Optional[float], _opt("--min-lr", help="Final learning rate of the cosine (default: recipe value, scaled like --lr).", panel=P_SCHED)] = None,
    warmup_lr: Annotated[Optional[float], _opt("--warmup-lr", help="Learning rate the warm-up starts from (default: recipe value, scaled like --lr).", panel=P_SCHED)] = None,
    warmup_epochs: Annotated[Optional[float], _opt("--warmup-epochs", help="Linear warm-up (capped at a tenth of the run).", panel=P_SCHED)] = None,
    weight_decay: Annotated[Optional[float], _opt("--weight-decay", help="AdamW weight decay (not on norms, biases, position tables).", panel=P_SCHED)] = None,
    layer_decay: Annotated[Optional[float], _opt("--layer-decay", help="Layer-wise lr decay, e.g. 0.8.", panel=P_SCHED)] = None,
    freeze: Annotated[bool, _opt("--freeze", help="Train the head only (linear probe).", panel=P_SCHED)] = False,
    lora: Annotated[Optional[int], _opt("--lora", help="finetune: train rank-R LoRA adapters (plus norms, position bias, head) instead of every weight; needs peft.", panel="LoRA")] = None,
    lora_alpha: Annotated[Optional[float], _opt("--lora-alpha", help="Adapter scale alpha (update x alpha/R; default alpha = R).", panel="LoRA")] = None,
    lora_dropout: Annotated[Optional[float], _opt("--lora-dropout", help="Dropout on the adapters' input (default 0).", panel="LoRA")] = None,
    lora_targets: Annotated[Optional[str], _opt("--lora-targets", help="Comma list of Linear layers to adapt: qkv, proj, fc1, fc2, reduction (default qkv,proj,fc1,fc2).", panel="LoRA")] = None,
    drop_path: Annotated[Optional[float], _opt("--drop-path", help="Stochastic depth rate.", panel=P_AUG)] = None,
    smoothing: Annotated[Optional[float], _opt("--smoothing", help="Label smoothing.", panel=P_AUG)] = None,
    mixup: Annotated[Optional[float], _opt("--mixup", help="Mixup alpha (0 = off).", panel=P_AUG)] = None,
    cutmix: Annotated[Optional[float], _opt("--cutmix", help="CutMix alpha (0 = off).", panel=P_AUG)] = None,
    aa: Annotated[Optional[str], _opt("--aa", help="RandAugment spec (rand-m9-mstd0.5-inc1) or none.", panel=P_AUG)] = None,
    reprob: Annotated[Optional[float], _opt("--reprob", help="Random erasing probability.", panel=P_AUG)] = None,
    crop_scale: Annotated[Optional[float], _opt("--crop-scale", help="Smallest area fraction of the random-resized crop (official 0.08).", panel=P_AUG)] = None,
    clip_grad: Annotated[Optional[float], _opt("--clip-grad", help="Gradient norm clipping (0 = off).", panel=P_AUG)] = None,
    ema: Annotated[Optional[float], _opt("--ema", help="Keep an EMA of the weights with this decay (e.g. 0.9998).", panel=P_AUG)] = None,
    accum_steps: Annotated[int, _opt("--accum-steps", help="Gradient accumulation steps.", panel=P_DIST)] = 1,
    amp: in_panel(AmpOpt, P_DIST) = None,
    grad_checkpointing: Annotated[bool, _opt("--grad-checkpointing", help="Recompute each block's branches in backward.", panel=P_DIST)] = False,
    attn_chunk: in_panel(AttnChunkOpt, P_DIST) = None,
    attn_chunk_stages: in_panel(AttnChunkStagesOpt, P_DIST) = None,
    memory_budget: Annotated[Optional[str], _opt("--memory-budget", help="Pick the cheapest of --grad-checkpointing and --attn-chunk whose estimated peak fits, e.g. 8GiB.", panel=P_DIST)] = None,
    fsdp: Annotated[bool, _opt("--fsdp", help="Shard params, grads, optimizer state (FSDP2) under torchrun.", panel=P_DIST)] = False,
    zero: Annotated[bool, _opt("--zero", help="Shard optimizer state (ZeRO-1) under torchrun.", panel=P_DIST)] = False,
    compile: Annotated[bool, _opt("--compile", help="torch.compile the model.", panel=P_DIST)] = False,
    workers: in_panel(WorkersOpt, P_RUN) = None,
    threads: Annotated[Optional[int], _opt("--threads", help="Torch compute threads (default: the cores no other process keeps busy at the start; saved with the run).", panel=P_RUN)] = None,
    seed: Annotated[int, _opt("--seed", help="Seed: a CPU run is reproducible bit for bit.", panel=P_RUN)] = 0,
    device: in_panel(DeviceOpt, P_RUN) = None,
    output: Annotated[Optional[str], _opt("--output", "-o", help="Run directory (default runs/train/expN).", panel=P_RUN)] = None,
    force: in_panel(ForceOpt, P_RUN) = False,
    resume: Annotated[Optional[str], _opt("--resume", help="Continue the run in this directory.", panel=P_RUN)] = None,
    save_every: Annotated[Optional[int], _opt("--save-every", help="Also save the resume state every N steps.", panel=P_RUN)] = None,
    recipe: Annotated[Optional[str], _opt("--recipe", help="auto (chosen from the data), official, finetune or demo (default: demo without --data, else auto).", panel=P_RUN)] = None,
    max_steps: Annotated[Optional[int], _opt("--max-steps", help="Stop after N optimizer steps.", panel=P_RUN, hidden=True)] = None,
    log: Annotated[Optional[list[str]], _opt("--log", "--log-to", help="Also log the run to tensorboard and/or mlflow (repeat the flag or comma-separate: --log tensorboard,mlflow; under torchrun write --log-to).", panel=P_RUN, metavar="TRACKER")] = None,
    config: Annotated[Optional[Path], _opt("--config", help="YAML/JSON file of options: they apply unless given as flags.", panel=P_RUN)] = None,
    quiet: Annotated[bool, _opt("--quiet", "-q", help="Only the final line.", panel=P_RUN)] = False,
) -> None:
    """Train (``swin train``) or fine-tune (``swin finetune``): the name the command was mounted under picks."""
    _run(ctx, finetune=ctx.command.name == "finetune")


def _run(ctx: typer.Context, finetune: bool) -> None:
    """Options (command line over config file) -> the API; ``--quiet`` goes to the reporter only."""
    from swincli.cli.train_progress import TrainReporter

    options = dict(ctx.params)  # every option of ``run``, by parameter name, as parsed
    config_file = options.pop("config")
    explicit = [k for k in options if (s := ctx.get_parameter_source(k)) is not None and s.name in GIVEN]
    if config_file is not None:
        from_file = _from_config_file(ctx, config_file)
        options.update(from_file)
        explicit += list(from_file)
    quiet = options.pop("quiet")
    command = api.finetune if finetune else api.train
    command(reporter=TrainReporter(quiet=quiet), explicit=explicit, **options)


def _from_config_file(ctx: typer.Context, path: Path | str) -> dict[str, Any]:
    """The file's values for the options not given on the command line (or by the environment).

    Decided by where click says each value came from, not by comparing it with the default: an
    explicit ``--seed 0`` beats ``seed: 3`` in the file.
    """
    known = {p.name for p in ctx.command.params} - {"config"}
    values = api.read_options_file(path)
    for key in values:
        if key not in known:
            raise api.SwinUsageError(f"{path}: unknown option {key!r}")
    return {key: value for key, value in values.items()
            if (source := ctx.get_parameter_source(key)) is None or source.name not in GIVEN}  # fmt: skip


train = Command(
    run,
    help="Train a Swin model from scratch: a recipe chosen from your data (no arguments: a two-minute demo).",
    examples=[
        "swin train",
        "swin train --model swin-t --data ~/datasets/imagenette --epochs 100",
        "swin train --config recipe.yaml --lr 1e-3",
        "torchrun --nproc-per-node 4 -m swincli train --model swinv2-t --data DIR --fsdp",
        "swin train --resume runs/train/exp3",
    ],
)
finetune = Command(
    run,
    help="Fine-tune pretrained weights: new size/window (official transfer rules), new classes, a recipe chosen from your data.",
    examples=[
        "swin finetune -c swinv2-b-192.safetensors --size 384 --window 24 --data DIR",
        "swin finetune --checkpoint best.safetensors --data DIR --layer-decay 0.8",
        "swin finetune -c swin_tiny_patch4_window7_224.pth --data DIR --freeze",
        "swin finetune --model swinv2-b --data DIR --config recipe.yaml",
        "swin finetune --model swinv2-t --data DIR --lora 8",
    ],
)
