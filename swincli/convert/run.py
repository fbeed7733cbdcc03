"""``convert()``: any supported layout in, any layout out, logits unchanged.

The path is always: read -> recognise the layout -> rename into our (the official) layout -> infer
and build the model strictly -> optionally check against the source library -> write the target
layout (atomically) -> optionally check the written file in the target library -> rename into place.
Nothing is written when any step fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swincli._version import __version__
from swincli.checkpoint import Preprocessing, load_model, save_model
from swincli.labels import reset_head
from swincli.convert import check as checks
from swincli.convert.detect import LAYOUTS, NAMES, detect_layout
from swincli.convert.hf_layout import hf_config, to_hf
from swincli.convert.importing import import_weights, size_window
from swincli.convert.official_layout import from_official, to_official
from swincli.convert.read import Source, read_source, read_weights
from swincli.convert.sidecar import sidecar_path, swin_sidecar, timm_config, write_json
from swincli.convert.timm_layout import to_timm
from swincli.convert.torchvision_layout import to_torchvision
from swincli.convert.write import hf_preprocessor, write_hf_files, write_state
from swincli.errors import SwinError, SwinUsageError
from swincli.fileio import atomic_dir, atomic_file, check_writable_target

TARGETS = ("swin", "official", "timm", "hf", "torchvision", "onnx")
SIDECAR_TARGETS = ("official", "timm", "torchvision")  # file layouts with no place for size, window, names


@dataclass
class ConvertReport:
    source: str
    source_layout: str
    output: str
    target: str
    architecture: dict[str, Any]
    tensors: int
    dropped: int
    notes: list[str] = field(default_factory=list)
    check: dict[str, Any] | None = None
    resize: dict[str, Any] | None = None
    onnx_check: dict[str, Any] | None = None  # the written file run by ONNX Runtime (swincli.export.verify)
    sidecar: str | None = None  # where size, window, class names and preprocessing went (foreign file layouts)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def convert(
    src: str | Path,
    out: str | Path,
    *,
    from_layout: str = "auto",
    to: str = "swin",
    model: str | None = None,
    img_size: Any = None,
    window_size: Any = None,
    pretrained_window_sizes: Any = None,
    num_classes: int | None = None,
    check: bool | None = None,
    force: bool = False,
) -> ConvertReport:
    """Convert ``src`` to ``out``. ``check=None`` checks when the other side's library is installed."""
    src, out = Path(src), Path(out)
    if to not in TARGETS:
        raise SwinUsageError(f"unknown target {to!r}", hint=f"choose one of {', '.join(TARGETS)}")
    if from_layout != "auto" and from_layout not in LAYOUTS:
        raise SwinUsageError(f"unknown source layout {from_layout!r}", hint=f"choose auto or one of {', '.join(LAYOUTS)}")
    if src.exists() and out.exists() and out.resolve() == src.resolve():
        raise SwinError("the output would overwrite the source", hint="choose another output path")
    check_writable_target(out, force, folder=_folder_output(out, to))  # before any work: exists, wrong kind, unwritable
    if to in SIDECAR_TARGETS and not _folder_output(out, to):
        check_writable_target(sidecar_path(out), force)  # OUT.json: the size, window, names the weights cannot carry
    source = read_source(src)
    layout = "swin" if source.metadata.get("format") == "swincli" else detect_layout(source.state, str(src))
    if from_layout not in ("auto", layout):
        raise SwinError(f"{src} looks like a {NAMES[layout]} checkpoint, not {NAMES[from_layout]}", hint="use --from auto")

    resize_to = None
    if layout == "swin":
        if model is not None or pretrained_window_sizes is not None:
            raise SwinError(
                "--model and --pretrained-window describe foreign weights; a swincli checkpoint carries its own",
                hint="use --size/--window to resize it (pretrained windows are then set automatically)",
            )
        net = load_model(src)
        notes: list[str] = []
        dropped = 0
        if img_size is not None or window_size is not None:
            resize_to = (img_size, window_size)
    else:
        net, notes, dropped, resize_to, guessed = import_weights(source, layout, model, img_size, window_size, pretrained_window_sizes)
    report = ConvertReport(str(src), layout, str(out), to, {}, len(net.state_dict()), dropped, notes)
    if layout != "swin":  # checked before any head or size change, against the source as it is
        report.check = _check_source(net, source, layout, check)
        if report.check and report.check.get("failed"):
            differ = f"converted logits differ from {report.check['library']}'s by {report.check['max_rel_diff']:.2e} (relative)"
            if guessed:  # the weights do not record their size/window and the guess was wrong: the user knows them
                raise SwinError(f"{differ} at the guessed {size_window(net.config)}; nothing was written",
                                hint="pass the --size and --window the weights were trained with, or --model NAME")  # fmt: skip
            raise SwinError(f"{differ}; nothing was written", hint="please report this with `swin env`")
    if num_classes is not None and num_classes != net.config.num_classes:
        report.notes.append(reset_head(net, num_classes))
    if resize_to is not None:
        from swincli.models.complexity import window_notes

        report.resize = net.set_input_size(*resize_to).to_dict()
        report.notes.extend(window_notes(net.config))
    report.architecture = _architecture(net)
    _write(net, out, to, report, check, force)
    return report


def _check_source(net, source: Source, layout: str, check: bool | None) -> dict[str, Any] | None:
    if check is False:
        return None
    if skipped := _cannot_check(layout, net.config, check):
        return skipped
    library = checks.LIBRARY[layout]
    state = from_official(source.state) if layout == "official" else source.state
    hf_dir = source.path if source.path.is_dir() else None
    reference = checks.reference_model(layout, net.config, state, hf_dir)
    diff = checks.compare(net, reference, net.config, layout)
    note = "timm loads official files with its own filter; it equals the official code" if layout == "official" else ""
    return {"library": library, "max_rel_diff": diff, "failed": diff > checks.TOLERANCE, "note": note}


def _write(net, out: Path, to: str, report: ConvertReport, check: bool | None, force: bool) -> None:
    if to == "swin":
        save_model(net, out, provenance={"converted_by": f"swincli {__version__}"})
        return
    if to == "onnx":
        from swincli.export.exporter import export_model
        from swincli.export.formats import FORMATS

        fmt = FORMATS["onnx"]
        fmt.require("write")
        if check is not False:
            fmt.require("run")
        report.onnx_check = export_model(net, out, fmt, source=report.source, check=check is not False).verification
        return
    state = net.state_dict()
    if to == "hf":
        config = hf_config(net.config, net.class_names)
        prep = hf_preprocessor(net.preprocessing or Preprocessing.for_config(net.config))
        with atomic_dir(out, replace=force) as tmp:
            write_hf_files(tmp, to_hf(state, net.config.version), config, prep)
            report.check = _check_target(net, "hf", tmp, check)
        return
    target = {"official": lambda: to_official(state, net), "timm": lambda: to_timm(state),
              "torchvision": lambda: to_torchvision(state, net)}[to]()  # fmt: skip
    if _folder_output(out, to):  # timm's Hub layout, which timm.create_model("local-dir:OUT") opens
        with atomic_dir(out, replace=force) as tmp:
            write_state(tmp / "model.safetensors", target, safetensors=True)
            write_json(tmp / "config.json", timm_config(net))
            report.check = _check_target(net, to, tmp / "model.safetensors", check)
        report.sidecar = str(out / "config.json")
        return
    with atomic_file(out) as tmp:
        write_state(tmp, target, wrap="model" if to == "official" else None, safetensors=out.suffix == ".safetensors")
        report.check = _check_target(net, to, tmp, check)
        with atomic_file(sidecar_path(out)) as side:  # in place just before the weights: never weights without it
            write_json(side, timm_config(net) if to == "timm" else swin_sidecar(net, to, out.name))
    report.sidecar = str(sidecar_path(out))


def _folder_output(out: Path, to: str) -> bool:
    """hf always writes a folder; timm does for an OUT without an extension (or an existing folder)."""
    return to == "hf" or (to == "timm" and (not out.suffix or out.is_dir()))


def _check_target(net, to: str, path: Path, check: bool | None) -> dict[str, Any] | None:
    if check is False:
        return None
    if skipped := _cannot_check(to, net.config, check):
        return skipped
    library = checks.LIBRARY[to]
    hf_dir = path if path.is_dir() else None
    state = {} if hf_dir else read_weights(path)[0]
    reference = checks.reference_model(to, net.config, state, hf_dir)
    diff = checks.compare(net, reference, net.config, to)
    if diff > checks.TOLERANCE:
        raise SwinError(
            f"{library} computes different logits from the written file ({diff:.2e} relative); nothing was written",
            hint="please report this with `swin env`",
        )
    return {"library": library, "max_rel_diff": diff, "note": f"the written file, loaded by {library}"}


def _cannot_check(layout: str, config, check: bool | None) -> dict[str, Any] | None:
    """None if the other library can check this model; else a "not checked" record (an error with --check)."""
    library = checks.LIBRARY[layout]
    reason = checks.why_not(layout, config) or (None if checks.available(layout) else f"{library} is not installed")
    if reason is None:
        return None
    if check:
        raise SwinError(f"cannot check against {library}: {reason}", hint="run with --no-check to skip the check")
    return {"library": library, "max_rel_diff": None, "note": f"{reason}; not checked"}


def _architecture(net) -> dict[str, Any]:
    c = net.config
    layout = c.layout()
    return {
        "version": c.version,
        "img_size": list(c.image_hw),
        "embed_dim": c.embed_dim,
        "depths": list(c.depths),
        "num_heads": list(c.num_heads),
        "windows": [st.window[0] if st.window[0] == st.window[1] else list(st.window) for st in layout],
        "pretrained_windows": [st.pretrained_window[0] for st in layout]
        if c.version == 2 and any(st.pretrained_window != (0, 0) for st in layout)
        else None,
        "num_classes": c.num_classes,
        "params": sum(p.numel() for p in net.parameters()),
        "class_names": bool(net.class_names),
    }
