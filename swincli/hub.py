"""Published weights by name: resolve a model name to a weight tag, fetch it from the Hugging Face Hub,
and say where our converted copy is kept (:func:`swincli.loader.load` converts it once).

``swinv2-b`` -> the best ImageNet-1k weight of that model size
(``swinv2_base_window12to24_192to384.ms_in22k_ft_in1k``) -> ``timm/<arch>.<tag>/model.safetensors``
through ``huggingface_hub`` (its cache, ``HF_HUB_OFFLINE``, revisions, resumable downloads) -> converted
from timm's layout -> ``~/.cache/swincli/weights/<arch>.<tag>.safetensors``, which later runs load
directly.
"""

from __future__ import annotations

import os
from pathlib import Path

from swincli.errors import SwinError
from swincli.models.registry import ModelEntry, Weights, aliases, get_entry, list_models, split_name

HUB_FILE = "model.safetensors"


def weights_cache() -> Path:
    return Path(os.environ.get("SWIN_CACHE", Path.home() / ".cache" / "swincli")) / "weights"


def _family(entry: ModelEntry) -> tuple:
    c = entry.config
    return c["version"], c["embed_dim"], tuple(c["depths"]), tuple(c["num_heads"])


def resolve_weights(name: str) -> tuple[ModelEntry, Weights]:
    """The (architecture, weight) a name means: ``arch.tag`` exactly; an alias -> the best ImageNet-1k
    weight of its model size; a canonical name -> that architecture's default weight."""
    arch, tag = split_name(name.strip())
    entry = get_entry(arch)
    if tag is not None:
        from swincli.models.registry import get_weights

        return entry, get_weights(name)
    if arch.lower() in aliases():
        family = [e for e in list_models() if _family(e) == _family(entry)]
        best = [(w.top1, e.name, e, w) for e in family for w in e.weights if w.num_classes == 1000 and w.top1 and w.hub]
        if best:
            _, _, e, w = max(best, key=lambda t: (t[0], t[1]))
            return e, w
    if entry.default_weights is None:
        raise SwinError(f"{entry.name} has no published weights", hint="train it with `swin train`, or pass --checkpoint")
    return entry, entry.default_weights


def weight_map() -> dict[str, str]:
    """Every alias and canonical name with published weights -> the ``arch.tag`` it loads."""
    out = {}
    for name in sorted(aliases()) + [e.name for e in list_models(pretrained=True)]:
        try:
            entry, w = resolve_weights(name)
        except SwinError:
            continue
        out[name] = f"{entry.name}.{w.tag}"
    return out


def converted_path(full_name: str, revision: str | None = None) -> Path:
    """Where our converted copy of the published weights ``arch.tag`` (at ``revision``) is kept."""
    return weights_cache() / (full_name + (f"@{revision}" if revision else "") + ".safetensors")


def download(entry: ModelEntry, weights: Weights, revision: str | None = None, offline: bool | None = None,
             progress: bool = True) -> Path:  # fmt: skip
    """timm's file of these published weights, from the Hugging Face cache or downloaded once."""
    full = f"{entry.name}.{weights.tag}"
    if not weights.hub:
        raise SwinError(f"{full} is an official release that is not on the Hugging Face Hub",
                        hint="download it from the official model zoo, then `swin convert FILE -o model.safetensors`")  # fmt: skip
    return _download(f"timm/{full}", revision, offline, progress)


def _download(repo_id: str, revision: str | None, offline: bool | None, progress: bool) -> Path:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    except ImportError:  # pragma: no cover - a runtime dependency
        raise SwinError("downloading weights needs huggingface_hub", hint="python -m pip install huggingface_hub") from None
    if offline is None:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    (enable_progress_bars if progress else disable_progress_bars)()
    # read the cache location now, not when huggingface_hub was imported
    cache = os.environ.get("HF_HUB_CACHE") or (str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None)
    try:
        return Path(hf_hub_download(repo_id, HUB_FILE, revision=revision, local_files_only=offline, cache_dir=cache))
    except Exception as exc:  # noqa: BLE001 - hub errors: offline/not cached, 404, network
        kind = type(exc).__name__
        if offline or "LocalEntryNotFound" in kind or "OfflineMode" in kind:
            raise SwinError(
                f"weights {repo_id}/{HUB_FILE} are not in the Hugging Face cache and downloads are off",
                hint=f"download them where you have internet (`hf download {repo_id} {HUB_FILE}`) and copy the cache, "
                f"or `swin convert FILE -o model.safetensors` and pass --checkpoint",
            ) from None
        if "RepositoryNotFound" in kind or "EntryNotFound" in kind or "RevisionNotFound" in kind:
            raise SwinError(f"{repo_id}@{revision or 'main'} has no {HUB_FILE} on the Hub ({kind})") from None
        raise SwinError(f"could not download {repo_id}/{HUB_FILE} ({kind}: {str(exc)[:120]})",
                        hint="check the network, or run with HF_HUB_OFFLINE=1 to use the cache only") from None
