"""LoRA fine-tuning (``swin finetune --lora R``): low-rank adapters on the block's Linear layers, with peft.

Why: fine-tuning every weight of a SwinV2-B needs gradients and AdamW state for 88M parameters (12
bytes each on top of the weights); LoRA trains a rank-R update ``W + (alpha/R) B A`` of chosen Linear
layers, a few percent of the parameters, and the pretrained weights stay frozen.

What trains (:func:`trainable_extra`, besides the adapters ``lora_A``/``lora_B``):

- the classification head (new classes start from a zero head);
- every LayerNorm's weight and bias (patch embedding, blocks, patch merging, final norm);
- the position bias: V1's relative position bias tables, V2's continuous-position-bias MLP, and V2's
  attention logit scales (a resized window changes what these must produce).

Everything else is frozen: patch embedding, the adapted Linear layers' own weights and biases, V2's
q/v biases, patch merging's reduction (unless it is a target), an absolute position embedding.

The adapters are injected in place with ``peft.inject_adapter_in_model``: the model stays our
``SwinTransformer`` (``config``, ``class_names``, ``set_grad_checkpointing`` ... unchanged), only the
targeted Linear layers become peft ``lora.Linear`` wrappers. The resume state simply holds the whole
state dict (frozen base included: a resized model cannot be rebuilt from anywhere else). The run's
``best``/``last.safetensors`` are merged (``W + delta``) into a plain model on the side, so every other
command reads them as usual; ``RUN/adapter/`` holds the adapter alone in peft's layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from swincli.engine.train_config import LR_FIELDS, TrainConfig
from swincli.errors import SwinError, SwinUsageError
from swincli.wording import plural

if TYPE_CHECKING:
    import torch
    from torch import nn

    from swincli.memory import PeakMemory

DEFAULT_TARGETS = ("qkv", "proj", "fc1", "fc2")
AVAILABLE = ("qkv", "proj", "fc1", "fc2", "reduction")  # the Linear layers of blocks and patch merging
LR_FACTOR = 10.0  # default lr under --lora: this times the recipe's (see docs/training.md, tests/test_lora.py)
ADAPTER_DIR = "adapter"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
PEFT_PREFIX = "base_model.model."  # keys as PeftModel.save_pretrained writes them
LORA_FLAGS = ("lora_alpha", "lora_dropout", "lora_targets")


def require_peft() -> None:
    """peft is an optional dependency: one line naming the extra when it is missing."""
    try:
        import peft  # noqa: F401
    except ImportError:
        raise SwinError("--lora needs the peft library, which is not installed",
                        hint="pip install 'swincli[lora]'") from None  # fmt: skip


def parse_targets(text: str | None) -> list[str]:
    """``qkv,proj`` -> ``["qkv", "proj"]``, each one of :data:`AVAILABLE` (checked before any work)."""
    names = [t.strip() for t in (text or ",".join(DEFAULT_TARGETS)).split(",") if t.strip()]
    unknown = [n for n in names if n not in AVAILABLE]
    if not names or unknown:
        what = f"{', '.join(unknown)} matches no Linear layer" if unknown else "names no layer"
        raise SwinUsageError(f"--lora-targets {text!r}: {what} of the Swin blocks",
                             hint=f"choose from the Linear layers {', '.join(AVAILABLE)}")  # fmt: skip
    return list(dict.fromkeys(names))


def check_options(cfg: "TrainConfig", finetune: bool) -> None:
    """The usage errors of a new run, before any data or weights are read."""
    if cfg.lora is None:
        given = [f"--{k.replace('_', '-')}" for k in LORA_FLAGS if getattr(cfg, k) is not None]
        if given:
            raise SwinUsageError(f"{', '.join(given)} without --lora R", hint="add --lora 8 (the adapters' rank)")
        return
    if not finetune:
        raise SwinUsageError("--lora adapts pretrained weights: swin train starts from random ones",
                             hint="use swin finetune --model NAME (or -c CK) --lora R")  # fmt: skip
    if cfg.freeze:
        raise SwinUsageError("--lora and --freeze are alternatives",
                             hint="--freeze trains the head only; --lora trains adapters, norms and the head")  # fmt: skip
    if cfg.fsdp:
        raise SwinUsageError("--lora with --fsdp is not supported",
                             hint="LoRA's trainable state is small: use DDP (the default under torchrun) or --zero")  # fmt: skip
    parse_targets(cfg.lora_targets)
    require_peft()


def apply_defaults(cfg: "TrainConfig", given: set[str]) -> None:
    """After the recipe: LoRA's own settings, and LR_FACTOR x the recipe's learning rates unless given.

    A zero-initialised B makes the adapters' first update tiny; at the full-fine-tuning lr they barely
    move in a short run (tests/test_lora.py measures it), so the default is ten times the recipe's.
    """
    if cfg.lora is None:
        return
    cfg.lora_alpha = float(cfg.lora) if cfg.lora_alpha is None else cfg.lora_alpha
    cfg.lora_dropout = 0.0 if cfg.lora_dropout is None else cfg.lora_dropout
    cfg.lora_targets = ",".join(parse_targets(cfg.lora_targets))
    scaled = [k for k in LR_FIELDS if k not in given and getattr(cfg, k) is not None]
    for key in scaled:
        setattr(cfg, key, getattr(cfg, key) * LR_FACTOR)
    if "lr" in scaled:
        cfg.notes.append(f"--lora: lr {cfg.lr:.1e}, {LR_FACTOR:g}x the recipe's (adapters start at zero); --lr overrides")


# ---------------------------------------------------------------------- the model
def target_names(model: "nn.Module", targets: list[str]) -> list[str]:
    """Full names of the model's Linear layers whose last name part is one of ``targets``."""
    from torch import nn

    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in targets
             and n != "head" and ".cpb_mlp." not in n]  # fmt: skip
    if not names:
        raise SwinUsageError(f"--lora-targets {','.join(targets)} matches no Linear layer of this model",
                             hint=f"choose from {', '.join(AVAILABLE)}")  # fmt: skip
    return names


def lora_config(cfg: "TrainConfig", names: list[str]):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout or 0.0,
                      target_modules=names, bias="none")  # fmt: skip


def trainable_extra(name: str, module_is_norm: bool) -> bool:
    """The parameters besides the adapters that train (see the module docstring)."""
    return (module_is_norm or name.startswith("head.") or ".cpb_mlp." in name
            or name.endswith((".logit_scale", ".relative_position_bias_table")))  # fmt: skip


def add_adapters(model: "nn.Module", cfg: "TrainConfig") -> str:
    """Inject the adapters in place and set ``requires_grad``; returns the note naming what trains."""
    require_peft()
    from peft import inject_adapter_in_model

    names = target_names(model, parse_targets(cfg.lora_targets))
    inject_adapter_in_model(lora_config(cfg, names), model)
    trained = trained_names(model)
    for name, p in model.named_parameters():
        p.requires_grad_(name in trained)
    adapters, trainable, total = counts(model)
    layers = plural(len(names), "Linear layer")
    return (f"--lora {cfg.lora} (alpha {cfg.lora_alpha:g}, dropout {cfg.lora_dropout:g}) on {layers} "
            f"({cfg.lora_targets}): training {trainable:,} of {total:,} parameters ({100 * trainable / total:.2f}%: "
            f"{adapters:,} in adapters, the rest head, norms and position bias)")  # fmt: skip


def trained_names(model: "nn.Module") -> set[str]:
    """The parameters a LoRA run trains, by name (also for an EMA copy, whose parameters have no gradients)."""
    from torch import nn

    norms = {n for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)}
    return {name for name, _ in model.named_parameters()
            if "lora_" in name or trainable_extra(name, name.rsplit(".", 1)[0] in norms)}  # fmt: skip


def counts(model: "nn.Module") -> tuple[int, int, int]:
    """(adapter parameters, trainable parameters, parameters of the merged model)."""
    adapters = trainable = total = 0
    for name, p in model.named_parameters():
        if "lora_" in name:
            adapters += p.numel()
        else:
            total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return adapters, trainable, total


def merged(model: "nn.Module") -> "nn.Module":
    """A plain model (on the CPU) computing what the adapted ``model`` computes: ``W + (alpha/R) B A`` per
    layer. The training model is not touched: the merged weights are new tensors."""
    import torch
    from peft.tuners.lora import LoraLayer

    from swincli.checkpoint import build_model

    layers = {n: m for n, m in model.named_modules() if isinstance(m, LoraLayer)}
    state = {}
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if ".lora_" not in key:
                state[key.replace(".base_layer.", ".")] = value.detach().cpu()
        for name, layer in layers.items():
            delta = sum(layer.get_delta_weight(a) for a in layer.active_adapters)
            state[f"{name}.weight"] = (layer.get_base_layer().weight + delta).detach().cpu()
    plain = build_model(model.config, state, "the LoRA merge")
    plain.class_names, plain.preprocessing = model.class_names, model.preprocessing
    plain.provenance = dict(getattr(model, "provenance", None) or {})
    return plain


# ---------------------------------------------------------------------- the adapter folder
CLASSES_KEY = "swincli.class_names"  # in the adapter weights' metadata: the classes its head was trained for


def adapter_base(cfg: "TrainConfig") -> str | None:
    """What the adapter adapts, for ``base_model_name_or_path``: the checkpoint (absolute, when it is a local
    file) or the published model's name."""
    if cfg.checkpoint:
        path = Path(cfg.checkpoint).expanduser()
        return str(path.resolve()) if path.exists() else cfg.checkpoint
    return cfg.model


def save_adapter(model: "nn.Module", folder: Path, base: str | None = None) -> None:
    """``folder/adapter_config.json`` + ``adapter_model.safetensors`` in peft's layout (what
    ``PeftModel.save_pretrained`` writes), holding the adapters and the other trained tensors. The config
    names the ``base``; the weights' metadata the classes, so a loader can rebuild the head for them."""
    import copy
    import json

    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    from swincli.fileio import atomic_dir

    config = copy.copy(model.peft_config["default"])  # inject_adapter_in_model keeps it on the model
    config.base_model_name_or_path = base
    state = {PEFT_PREFIX + k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    trained = trained_names(model)
    for name, p in model.named_parameters():
        if name in trained and "lora_" not in name:
            state[PEFT_PREFIX + name] = p.detach().cpu().contiguous()
    meta = {"format": "pt", CLASSES_KEY: json.dumps(list(model.class_names or []))}
    with atomic_dir(folder, replace=True) as tmp:
        save_file(state, str(tmp / ADAPTER_WEIGHTS), metadata=meta)
        config.save_pretrained(str(tmp))


def adapter_classes(folder: str | Path) -> list[str] | None:
    """The class names an adapter's head was trained for (None: an adapter saved before they were recorded)."""
    import json

    from safetensors import safe_open

    with safe_open(str(Path(folder) / ADAPTER_WEIGHTS), "pt") as fh:
        names = (fh.metadata() or {}).get(CLASSES_KEY)
    return json.loads(names) if names else None


def load_adapter(model: "nn.Module", folder: str | Path) -> "nn.Module":
    """Inject the adapter of a LoRA run (``RUN/adapter``) into ``model`` and load its weights (in place).
    ``model``: the run's base (``base_model_name_or_path`` in the adapter's config) at the run's size and
    window; a head for other classes is rebuilt for the adapter's, which it then loads with their names."""
    require_peft()
    from peft import LoraConfig, inject_adapter_in_model
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        config = LoraConfig.from_pretrained(str(folder))
        state = load_file(str(folder / ADAPTER_WEIGHTS))
        names = adapter_classes(folder)
    except (OSError, ValueError) as exc:
        raise SwinError(f"{folder} is not a LoRA adapter folder ({str(exc)[:80]})",
                        hint=f"pass RUN/{ADAPTER_DIR} of a swin finetune --lora run") from None  # fmt: skip
    _fit_head(model, state.get(PEFT_PREFIX + "head.weight"), names)
    inject_adapter_in_model(config, model)
    own = {k: v for k, v in model.state_dict().items()}
    loaded = {}
    for key, value in state.items():
        name = key[len(PEFT_PREFIX):] if key.startswith(PEFT_PREFIX) else key
        if ".lora_" in name:  # peft drops the adapter's name from saved keys
            part, rest = name.split(".lora_", 1)
            kind, leaf = rest.split(".", 1)
            name = f"{part}.lora_{kind}.default.{leaf}"
        if name not in own or own[name].shape != value.shape:
            base = f" ({config.base_model_name_or_path})" if config.base_model_name_or_path else ""
            raise SwinError(f"{folder}: {name} does not fit this model",
                            hint=f"load the run's base{base} at the run's --size and --window first")  # fmt: skip
        loaded[name] = value
    model.load_state_dict(loaded, strict=False)
    return model


def _fit_head(model: "nn.Module", head: "torch.Tensor | None", names: list[str] | None) -> None:
    """Give ``model`` the head the adapter trained (its rows; the weights come with the adapter) and its names."""
    if head is None or head.ndim != 2 or head.shape[1] != model.num_features:
        return
    if model.config.num_classes != head.shape[0]:
        model.reset_classifier(head.shape[0])
        model.class_names = None
    if names and len(names) == head.shape[0]:
        model.class_names = list(names)


# ---------------------------------------------------------------------- memory and the summary
def memory_estimates(model: "nn.Module", cfg: "TrainConfig", amp: bool) -> tuple[int, int]:
    """Estimated bytes the training steps add at their peak, above the weights (and EMA copy) loaded before them:
    (this LoRA run, full fine-tuning of the same model). The summary measures the same quantity."""
    from swincli.memory import estimate

    _, trainable, _ = counts(model)
    chunk, stages = model.attention_chunk()
    kw = dict(train=True, amp=amp, grad_checkpointing=cfg.grad_checkpointing, attn_chunk=chunk, chunk_stages=stages,
              weights=False)  # fmt: skip
    return (estimate(model.config, cfg.batch_size, trainable=trainable, **kw).total,
            estimate(model.config, cfg.batch_size, **kw).total)  # fmt: skip


def memory_note(model: "nn.Module", cfg: "TrainConfig", amp: bool) -> str:
    est_lora, est_full = memory_estimates(model, cfg, amp)
    return (f"--lora: the training steps add an estimated {_gib(est_lora)} at batch {cfg.batch_size} above the loaded "
            f"weights (full fine-tuning of this model: {_gib(est_full)})")  # fmt: skip


def summary(model: "nn.Module", cfg: "TrainConfig", amp: bool, measured: "PeakMemory | None") -> dict[str, Any]:
    """What the final summary reports: trainable parameters, and the peak memory the training steps added
    (``measured``, :class:`swincli.memory.PeakMemory`) against its estimate and full fine-tuning's."""
    adapters, trainable, total = counts(model)
    est_lora, est_full = memory_estimates(model, cfg, amp)
    return {"rank": cfg.lora, "adapter_params": adapters, "trainable_params": trainable, "total_params": total,
            "trainable_pct": 100 * trainable / total, "peak_bytes": measured.added if measured else None,
            "peak_measured_by": measured.how if measured else None,
            "estimated_peak_bytes": est_lora, "estimated_full_finetune_bytes": est_full}  # fmt: skip


def describe(s: dict[str, Any]) -> str:
    """The summary as one line."""
    peak = (f"{_gib(s['peak_bytes'])} ({s['peak_measured_by']})" if s.get("peak_bytes") is not None
            else "not measured on this system")  # fmt: skip
    return (f"LoRA r={s['rank']}: {s['trainable_params']:,} trainable of {s['total_params']:,} parameters "
            f"({s['trainable_pct']:.2f}%); memory the training steps added at their peak: {peak}, estimated "
            f"{_gib(s['estimated_peak_bytes'])}, {_gib(s['estimated_full_finetune_bytes'])} for full fine-tuning")  # fmt: skip


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
