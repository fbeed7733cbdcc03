"""One way to get a model: ``load()``. Every command, the training engine and the Python API use it.

- ``load("best.safetensors")``: our checkpoint format;
- ``load("swin_tiny_patch4_window7_224.pth")``, a timm/HF/torchvision file or a Hugging Face folder:
  any layout ``swin convert`` reads, the architecture recognised from the weights, the size, window,
  class names and preprocessing from the sidecar ``swin convert`` wrote beside them (``model=`` names
  them where nothing else does, e.g. a V2 window);
- ``load(model="swinv2-b")``: the published weights that name means, downloaded once and converted
  into our format in the cache; ``pretrained=False`` builds the architecture freshly initialised;

then, optionally, the model moves to ``img_size`` / ``window_size`` (always a target: the size and
window the weights were trained at come from the checkpoint or ``model``) by the official transfer
rules, and gets a head for ``num_classes``. Notes on what was assumed or changed are kept in ``model.load_notes``,
and the resize report in ``model.resize_report``.

A loaded model also takes a LoRA adapter trained for other classes: peft's
``PeftModel.from_pretrained(model, "RUN/adapter")`` loads the adapter's head, and
:func:`fit_head_to_adapter` first rebuilds the model's head to its size (nothing else changes: a
``load_state_dict`` outside a ``PeftModel`` still refuses a head of another size).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from swincli.checkpoint import is_swincli_file, load_model, save_model
from swincli.errors import SwinUsageError

if TYPE_CHECKING:
    from swincli.models.swin import SwinTransformer


def load(
    source: str | os.PathLike | None = None,
    device: str | None = None,
    img_size: Any = None,
    window_size: Any = None,
    num_classes: int | None = None,
    *,
    model: str | None = None,
    pretrained: bool = True,
    revision: str | None = None,
    offline: bool | None = None,
    progress: bool = False,
) -> "SwinTransformer":
    """A model from a checkpoint in any layout (``source``) or a registry name (``model``); module docstring."""
    from swincli.labels import reset_head

    notes: list[str] = []
    if source is not None:
        net = read_checkpoint(source, model, notes)
    elif model is None:
        raise SwinUsageError("nothing to load", hint="pass a checkpoint or a model name")
    elif pretrained:
        net = published(model, revision, offline, progress)
    else:
        from swincli.models.registry import create_model

        net = create_model(model)
    net.resize_report = None
    if img_size is not None or window_size is not None:
        from swincli.models.complexity import window_notes

        net.resize_report = net.set_input_size(img_size, window_size)
        notes.extend(window_notes(net.config))
    if num_classes is not None and num_classes != net.config.num_classes:
        notes.append(reset_head(net, num_classes))
    net.load_notes = notes
    net._register_load_state_dict_pre_hook(fit_head_to_adapter, with_module=True)
    net.eval()  # like torch.hub and timm: a loaded model predicts; training sets train() itself
    return net.to(device) if device else net


PEFT_PREFIX = "base_model.model."  # where a PeftModel keeps the model it adapts


def fit_head_to_adapter(model: "SwinTransformer", state_dict: dict, prefix: str, *args: Any) -> None:
    """Before a ``PeftModel`` loads an adapter into ``model``: a head of another number of classes in the
    adapter replaces the model's (zero-initialised, then loaded; class names dropped, as they belong to the
    old head). ``swincli.engine.lora.load_adapter`` does the same and also restores the adapter's names."""
    head = state_dict.get(prefix + "head.weight")
    if not prefix.endswith(PEFT_PREFIX) or head is None or head.ndim != 2 or head.shape[1] != model.num_features:
        return
    if head.shape[0] != model.config.num_classes:
        model.reset_classifier(head.shape[0])
        model.class_names = None


def read_checkpoint(path: str | os.PathLike, model: str | None = None, notes: list[str] | None = None,
                    sidecar: bool = True) -> "SwinTransformer":  # fmt: skip
    """Weights in any layout, at the size and window they were trained at (``model`` names the architecture of
    foreign weights where their shapes and sidecar cannot tell it; what was assumed instead is added to ``notes``)."""
    if is_swincli_file(path):
        return load_model(path)
    from swincli.convert.detect import detect_layout
    from swincli.convert.importing import import_weights
    from swincli.convert.read import read_source

    source = read_source(path, sidecar)
    net, found, *_ = import_weights(source, detect_layout(source.state, str(path)), model, None, None, None)
    if notes is not None:
        notes.extend(found)
    return net


def published(name: str, revision: str | None = None, offline: bool | None = None, progress: bool = False) -> "SwinTransformer":
    """The model ``name`` means, with its published weights: our cached copy, or downloaded and converted once."""
    from swincli import hub
    from swincli.labels import imagenet_names

    entry, weights = hub.resolve_weights(name)
    full = f"{entry.name}.{weights.tag}"
    cached = hub.converted_path(full, revision)
    if cached.is_file():
        return load_model(cached)
    # the registry describes published weights; a config.json another tool left in the Hub cache is not read
    net = read_checkpoint(hub.download(entry, weights, revision, offline, progress), model=full, sidecar=False)
    if net.class_names is None:
        names = imagenet_names(net.config.num_classes)
        net.class_names = list(names) if names else None
    net.provenance = dict(net.provenance or {}, hub_repo=f"timm/{full}", revision=revision or "main")
    save_model(net, cached)
    return net
