"""The option vocabulary: every option more than one command takes, defined once, with one meaning.

A command declares ``model: ModelOpt = None`` and gets the same flags, help text, domain check and
default policy as every other command that has a model. The policies:

- ``--model NAME``: an architecture by name or alias (``swin models list``). Alone, it loads that name's
  published weights (predict, eval, finetune, profile with ``--pretrained``) or builds it (train);
  beside ``--checkpoint`` it names the architecture of foreign weights whose shapes cannot tell it.
  Neither given: the command's default model, named in a note.
- ``-c/--checkpoint FILE``: weights in any layout swin reads (ours, official, timm, Hugging Face, torchvision),
  or, where the command runs a model (predict, eval), a file ``swin export`` wrote.
- ``--runtime FORMAT``: what runs an exported ``--checkpoint`` (default: its suffix's: .onnx ONNX Runtime,
  .xml OpenVINO, .pt2 AOTInductor, .pte ExecuTorch, .engine TensorRT).
- ``--device``: cpu, cuda, cuda:N, mps or auto (the default: cuda when there is one).
- ``--amp``: auto (the default: bf16 on a GPU that supports it, fp32 elsewhere), bf16, fp16 or none.
- ``-b/--batch-size``, ``-j/--workers``: a number in its domain; workers default to what the free
  cores allow (0: load in the main process).
- ``-o/--output`` and ``-f/--force``: outputs are written under a temporary name and renamed when
  complete; an existing one is replaced only with ``--force``, and only if swin wrote it.
- ``--format table|json|csv``: a table for people, JSON or CSV for programs (``--json`` is a hidden
  alias of ``--format json``).
- ``--plot FILE.png``: a figure, an output like any other (refused if it exists, unless ``--force``).
- ``--attn-chunk N`` and ``--attn-chunk-stages 1,2|all``: sequential attention, N windows at a time in
  the named stages (default the first two, as the paper); train and finetune run with it, profile
  ``--memory`` measures it.

Numeric options get their domain from :mod:`swincli.limits` (shared with config files and the
Python API) through :func:`domain`, checked by a callback so that nan and inf never pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from swincli.api import limits


def domain(rng: "limits.Range", help: str) -> dict[str, Any]:
    """``typer.Option`` keywords for a numeric option: the domain appended to ``help``, checked by a
    callback (not Typer's ``min``/``max``: those let inf through and word their errors without the value)."""
    return {"help": f"{help} [{rng.short()}]", "callback": _checker(rng)}


def _checker(rng: "limits.Range") -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        """A usage error (exit 2) naming the option; nan and inf never pass."""
        if value is not None:
            why = rng.problem(value)
            if why:
                raise typer.BadParameter(why)
        return value

    return check


def examples(*lines: str) -> str:
    """An epilog listing example invocations, rendered under the command's help."""
    body = "\n\n".join(f"  [bold]$ {line}[/bold]" for line in lines)
    return f"[b]Examples[/b]\n\n{body}"


BY_EXTENSION = {".csv": "csv", ".json": "json", ".jsonl": "json"}


AMP_CHOICES = ("auto", "bf16", "fp16", "none")
FORMAT_CHOICES = ("table", "json", "csv")


def choice(*choices: str) -> dict[str, Any]:
    """``typer.Option`` keywords for a word from ``choices``: case-insensitive, completed by the shell, and a
    bad one is a usage error worded like every other (``--amp must be auto, bf16, fp16 or none, got 'fp8'``)."""

    def check(ctx: typer.Context, param: Any, value: str | None) -> str | None:
        if value is None:
            return None
        if value.lower() not in choices:
            raise typer.BadParameter(f"must be {', '.join(choices[:-1])} or {choices[-1]}, got {value!r}")
        return value.lower()

    return {"callback": check, "metavar": "[" + "|".join(choices) + "]",
            "autocompletion": lambda incomplete: [c for c in choices if c.startswith(incomplete)]}  # fmt: skip


ModelArg = Annotated[str, typer.Argument(help="Model name or alias, e.g. swin-t or swinv2_base_window8_256.")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Model name or alias (swin models list). Alone: its published weights; beside "
    "--checkpoint: the architecture of those weights. Neither: the command's default model, named in a note.")]  # fmt: skip
CheckpointOpt = Annotated[Optional[str], typer.Option(
    "--checkpoint", "-c", help="Weights in any layout swin reads: ours, official, timm, Hugging Face, torchvision.")]  # fmt: skip
RuntimeOpt = Annotated[Optional[str], typer.Option(
    "--runtime", help="Run an exported --checkpoint with this runtime: onnx, openvino, pt2, executorch or tensorrt "
    "(default: the file suffix's).")]  # fmt: skip
SizeOpt = Annotated[Optional[str], typer.Option("--size", help="Image size: S or HxW (e.g. 384, 256x320).")]
WindowOpt = Annotated[
    Optional[str], typer.Option("--window", help="Window: W, HxW, or per stage (e.g. 12 or 12,12,12,6).")
]
DeviceOpt = Annotated[Optional[str], typer.Option(
    "--device", help="cpu, cuda, cuda:N, mps or auto (default: cuda when there is one).")]  # fmt: skip
AmpOpt = Annotated[Optional[str], typer.Option(
    "--amp", help="Mixed precision: auto (bf16 on a GPU that supports it, fp32 elsewhere), bf16, fp16 or none.",
    **choice(*AMP_CHOICES))]  # fmt: skip
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size", "-b", **domain(limits.BATCH, "Images per batch (per process)."))]
WorkersOpt = Annotated[Optional[int], typer.Option(
    "--workers", "-j", **domain(limits.WORKERS, "Data loading processes (default: what the free cores allow; 0: none)."))]  # fmt: skip
OutputFileOpt = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="Write to this file: complete or not at all (a temporary name, renamed at the end).")]  # fmt: skip
ForceOpt = Annotated[bool, typer.Option(
    "--force", "-f", help="Replace an existing output that swin wrote (nothing else is ever replaced).")]  # fmt: skip
FormatOpt = Annotated[Optional[str], typer.Option(
    "--format", help="table (for people), json or csv (for programs).", **choice(*FORMAT_CHOICES))]  # fmt: skip
JsonAlias = Annotated[bool, typer.Option("--json", hidden=True, help="Same as --format json.")]
PlotOpt = Annotated[Optional[Path], typer.Option(
    "--plot", help="Also draw a PNG figure into this file (refused if it exists, unless --force).")]  # fmt: skip
AttnChunkOpt = Annotated[Optional[int], typer.Option(
    "--attn-chunk", **domain(limits.TRAIN["attn_chunk"], "Sequential attention: N windows at a time, recomputed in backward (bounds attention memory)."))]
AttnChunkStagesOpt = Annotated[Optional[str], typer.Option(
    "--attn-chunk-stages", help="Stages --attn-chunk applies to: 1,2 (default, as the paper) or all.")]


def in_panel(option: Any, panel: str) -> Any:
    """The same shared option, listed under ``panel`` in a command's ``--help`` (train groups its many options)."""
    import copy
    from typing import get_args

    kind, info = get_args(option)[:2]
    info = copy.copy(info)
    info.rich_help_panel = panel
    return Annotated[kind, info]


def pick_format(given: str | None, as_json: bool, choices: tuple[str, ...] = FORMAT_CHOICES,
                output: Path | None = None) -> str:  # fmt: skip
    """The one output format: ``--format`` or its ``--json`` alias, else what the ``-o`` file's extension says
    (``.csv``, ``.json``, ``.jsonl``), else a table. A format the command cannot print is a usage error."""
    from swincli.api import SwinUsageError

    fmt = given
    if as_json:
        if fmt not in (None, "json"):
            raise SwinUsageError(f"--json contradicts --format {fmt}", hint="--json is --format json; give one")
        fmt = "json"
    implied = BY_EXTENSION.get(output.suffix.lower()) if output is not None else None
    if fmt is not None and implied is not None and fmt != implied:
        raise SwinUsageError(f"--format {fmt} contradicts the name {output.name}",
                             hint=f"drop --format: a {output.suffix} file gets {implied}; or rename the file")  # fmt: skip
    fmt = fmt or implied or "table"
    if fmt not in choices:
        raise SwinUsageError(f"--format {fmt} is not available here", hint=f"choose {' or '.join(choices)}")
    return fmt


def amp_value(amp: str | None) -> str:
    """``--amp`` as the API takes it: the default policy spelled out."""
    return amp or "auto"
