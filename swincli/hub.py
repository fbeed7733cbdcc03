"""Published weights by name: resolve a model name to a weight tag, fetch it from the Hugging Face Hub,
and say where our converted copy is kept (:func:`swincli.loader.load` converts it once).

``swinv2-b`` -> the architecture the alias names (``swinv2_base_window8_256``, the same one ``create_model``
and ``swin models info`` use) -> its default weight, the best ImageNet-1k one (``ms_in1k``) ->
``timm/<arch>.<tag>/model.safetensors`` through ``huggingface_hub`` (its cache, ``HF_HUB_OFFLINE``, revisions,
resumable downloads) -> converted from timm's layout -> ``~/.cache/swincli/weights/<arch>.<tag>.safetensors``,
which later runs load directly. An alias has one meaning everywhere: the best weights of another
architecture of the same size are loaded by their canonical name.
"""

from __future__ import annotations

import os
from pathlib import Path

from swincli.errors import SwinError
from swincli.models.registry import ModelEntry, Weights, aliases, get_entry, list_models, split_name

HUB_FILE = "model.safetensors"


def weights_cache() -> Path:
    return Path(os.environ.get("SWIN_CACHE", Path.home() / ".cache" / "swincli")) / "weights"


def resolve_weights(name: str) -> tuple[ModelEntry, Weights]:
    """The (architecture, weight) a name means: ``arch.tag`` exactly; an alias or canonical name -> that
    architecture's default weight (what ``swin models info NAME`` marks as loaded by ``--model NAME``)."""
    from swincli.models.registry import get_weights

    entry = get_entry(name)
    if split_name(name.strip())[1] is not None:
        return entry, get_weights(name.strip())
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


PROBE_TIMEOUT_S = 3.0


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def unreachable(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None if a TCP connection to the Hub (or the proxy for it) opens within ``timeout``, else why not.

    huggingface_hub retries a refused connection for half a minute and then reports a cache miss; a probe
    first tells "no network" apart in seconds. DNS runs in a thread so a hung resolver cannot stall it.
    """
    import threading
    import urllib.request
    from urllib.parse import urlsplit

    url = urlsplit(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        via = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = via.hostname or "", via.port or 8080
    result: list[str | None] = []

    def connect() -> None:
        import socket

        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(None)
        except OSError as exc:
            result.append(f"{host}:{port}: {exc.strerror or type(exc).__name__}" if not isinstance(exc, TimeoutError)
                          else f"{host}:{port}: no answer in {timeout:g} s")  # fmt: skip

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + 1)
    return result[0] if result else f"{host}:{port}: name lookup did not finish in {timeout:g} s"


def _offline_error(repo_id: str) -> SwinError:
    return SwinError(
        f"weights {repo_id}/{HUB_FILE} are not in the Hugging Face cache and downloads are off "
        "(HF_HUB_OFFLINE=1 / --offline)",
        hint=f"download them where you have internet (`hf download {repo_id} {HUB_FILE}`) and copy the cache, "
        f"or `swin convert FILE -o model.safetensors` and pass --checkpoint",
    )


def _unreachable_error(repo_id: str, why: str) -> SwinError:
    return SwinError(
        f"cannot reach the Hugging Face Hub ({why}) to download {repo_id}/{HUB_FILE}, and it is not in the cache",
        hint="check the network or proxy (HTTPS_PROXY, HF_ENDPOINT), or copy a Hugging Face cache that has it "
        "and run with HF_HUB_OFFLINE=1",
    )


def _download(repo_id: str, revision: str | None, offline: bool | None, progress: bool) -> Path:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    except ImportError:  # pragma: no cover - a runtime dependency
        raise SwinError("downloading weights needs huggingface_hub", hint="python -m pip install huggingface_hub") from None
    if offline is None:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    (enable_progress_bars if progress else disable_progress_bars)()
    # read the cache location and endpoint now, not when huggingface_hub was imported
    cache = os.environ.get("HF_HUB_CACHE") or (str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None)

    def get(local_only: bool) -> Path:
        return Path(hf_hub_download(repo_id, HUB_FILE, revision=revision, local_files_only=local_only, cache_dir=cache,
                                    endpoint=_endpoint()))  # fmt: skip

    why = None if offline else unreachable(_endpoint())
    try:
        return get(offline or why is not None)
    except Exception as exc:  # noqa: BLE001 - mapped below: offline, unreachable, not found, other HTTP
        error = hub_error(exc, repo_id, revision, offline, why)
    raise error from None


def hub_error(exc: BaseException, repo_id: str, revision: str | None, offline: bool, why: str | None) -> SwinError:
    """huggingface_hub's exception as one of: offline and not cached, Hub unreachable, not found, other."""
    names = {k.__name__ for e in (exc, exc.__cause__) if e is not None for k in type(e).__mro__}
    status = getattr(getattr(exc.__cause__ or exc, "response", None), "status_code", None)
    if offline or "OfflineModeIsEnabled" in names:
        return _offline_error(repo_id)
    if why is not None:
        return _unreachable_error(repo_id, why)
    if names & {"RepositoryNotFoundError", "RevisionNotFoundError", "RemoteEntryNotFoundError"} or status == 404:
        what = "revision" if "RevisionNotFoundError" in names else "repository or file"
        return SwinError(f"{repo_id}@{revision or 'main'}/{HUB_FILE} was not found on the Hub (no such {what})",
                         hint="check the name and --revision (`swin models list --pretrained` lists them)")  # fmt: skip
    if "LocalEntryNotFoundError" in names and exc.__cause__ is not None and status is None:
        cause = exc.__cause__
        return _unreachable_error(repo_id, f"{type(cause).__name__}: {str(cause)[:100]}")
    detail = f"HTTP {status}" if status else f"{type(exc).__name__}: {str(exc)[:120]}"
    return SwinError(f"could not download {repo_id}/{HUB_FILE} ({detail})",
                     hint="check the network, or run with HF_HUB_OFFLINE=1 to use the cache only")  # fmt: skip
