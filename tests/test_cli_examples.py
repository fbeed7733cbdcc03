"""Every command line printed in ``--help``, README.md and docs/*.md runs, as typed, in a fresh sandbox.

Examples are collected automatically (tests/examples_sandbox.py says from where), so a new one that
is missing from TABLE fails with "add it to the table". Each runs through the installed ``swin`` in
a shell, in its own working directory with HOME, HF_HOME and SWIN_CACHE inside the sandbox and the
Hub offline; the files it names are built once per session (tests/examples_assets.py) and placed
there. Expected: the exact exit code, no traceback and no "unexpected" message, one ``error:`` line
for a failure, and the files the example writes.

Running them is the slow tier (``pytest -m slow``: a few minutes of subprocesses, torchrun included);
the fast tier checks that each is in TABLE and that each usage synopsis names only options that exist.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch

from examples_assets import Assets
from examples_sandbox import Runner, all_examples, destination, shell_line

CUDA = torch.cuda.is_available()


@dataclass(frozen=True)
class Case:
    """How one example runs here. ``needs``: ``DEST=ASSET[/FILE]`` (DEST under the working directory,
    ``~/`` under HOME, ``$HF_HOME``); ``extra``: appended to keep it short; ``replace``: substitutions
    in the text itself, each one said out loud; ``writes``: files it must leave; ``says``: text
    in its output; ``nodes``: copies run at once (torchrun's multi-node rendezvous on one machine)."""

    needs: tuple[str, ...] = ()
    extra: str = ""
    code: int = 0
    writes: tuple[str, ...] = ()
    says: str = ""
    replace: tuple[tuple[str, str], ...] = ()
    nodes: int = 1
    synopsis: bool = False


SYNOPSIS = Case(synopsis=True)  # a usage line with placeholders: every option it names must exist
STEP = "--epochs 1 --max-steps 1 -b 2"  # one optimizer step, then the usual validation and saving
FAST = "--warmup 0 --iters 1"
DIR = "DIR=dataset"
RUN = "runs/train/exp=run"
BEST = "best.safetensors=run/best.safetensors"
HUB = "$HF_HOME=hub"
DIST = "--size 32 --window 2 --workers 0 --epochs 1 --max-steps 1 -b 1"
TWO = (("--nproc-per-node 4", "--nproc-per-node 2"),)  # 2 processes, not 4, on this 2-core machine

TABLE: dict[str, Case] = {
    # --- models, env
    "swin models list": Case(),
    "swin models list 'swinv2*'": Case(says="swinv2_base_window12to24_192to384"),
    "swin models list 'swinv2*' --pretrained": Case(),
    "swin models list --v1 --format json": Case(says='"name": "swin_tiny_patch4_window7_224"'),
    "swin models list --format csv": Case(says="swin_tiny_patch4_window7_224,swin-t,1,224,7,"),
    "swin models info swin-t": Case(says="28.29M"),
    "swin models info swin-b --size 384 --window 12": Case(says="47.1"),
    "swin models info swinv2-l --format json": Case(says="196739932"),
    "swin env": Case(),
    "swin env --format json": Case(says='"packages"'),
    # --- convert
    "swin convert swin_tiny_patch4_window7_224.pth -o swin-t.safetensors": Case(
        needs=("swin_tiny_patch4_window7_224.pth=swin-t-official.pth",), writes=("swin-t.safetensors",)),
    "swin convert swinv2_tiny_patch4_window8_256.pth -o swinv2-t.safetensors": Case(
        needs=("swinv2_tiny_patch4_window8_256.pth=swinv2-t-official.pth",), writes=("swinv2-t.safetensors",)),
    "swin convert ./hf-swin-base-folder -o swin-b.safetensors": Case(
        needs=("hf-swin-base-folder=hf-swin-b",), writes=("swin-b.safetensors",)),
    "swin convert model.safetensors --to hf -o ./hf-model": Case(
        needs=("model.safetensors=tiny.safetensors",), writes=("hf-model/config.json", "hf-model/model.safetensors")),
    "swin convert model.safetensors --to onnx -o model.onnx": Case(
        needs=("model.safetensors=tiny.safetensors",), writes=("model.onnx",)),
    "swin convert ft.pth -o ft.safetensors --model swinv2_base_window12to24_192to384": Case(
        needs=("ft.pth=swinv2-b-384-official.pth",), writes=("ft.safetensors",)),
    "swin convert swinv2_base_window12_192.safetensors -o b384.safetensors --size 384 --window 24": Case(
        needs=("swinv2_base_window12_192.safetensors=swinv2-b-192.safetensors",), writes=("b384.safetensors",)),
    "swin convert b192.safetensors -o b384.safetensors --size 384 --window 24": Case(
        needs=("b192.safetensors=v2-192.safetensors",), writes=("b384.safetensors",)),
    "swin convert swin-t.safetensors --to hf -o ./swin-t-hf": Case(
        needs=("swin-t.safetensors=swin-t.safetensors",), writes=("swin-t-hf/config.json",)),
    # --- export
    "swin export runs/train/exp/best.safetensors --to onnx": Case(needs=(RUN,), writes=("runs/train/exp/best.onnx",)),
    "swin export --model swinv2-t --to openvino -o swinv2-t.xml": Case(needs=(HUB,), writes=("swinv2-t.xml", "swinv2-t.bin")),
    "swin export best.safetensors --to openvino --int8 --data photos/": Case(
        needs=(BEST, "photos=jpgs"), writes=("best.xml", "best.bin"), says="top-1 agrees with fp32"),
    "swin export best.safetensors --to pt2 --size 384 --window 24": Case(
        needs=(BEST,), replace=(("--size 384 --window 24", "--size 64 --window 4"),), writes=("best.pt2",)),
    "swin export --check": Case(says="executorch"),
    "swin export runs/train/exp/best.safetensors --to openvino": Case(needs=(RUN,), writes=("runs/train/exp/best.xml", "runs/train/exp/best.bin")),
    "swin predict photos/ --checkpoint runs/train/exp/best.onnx": Case(needs=("photos=jpgs", "runs/train/exp=run-exported"), says="img0.jpg"),
    "swin predict photos/ --checkpoint runs/train/exp/best.xml": Case(needs=("photos=jpgs", "runs/train/exp=run-exported"), says="img0.jpg"),
    # --- predict
    "swin predict cat.jpg --model swinv2-b": Case(needs=("cat.jpg=img.jpg", HUB), says="cat.jpg"),
    "swin predict photos/ --checkpoint runs/train/exp/best.safetensors": Case(needs=("photos=jpgs", RUN)),
    "swin predict photos/ --checkpoint runs/train/exp/best.safetensors --format json": Case(
        needs=("photos=jpgs", RUN), says='"top_k"'),
    "find . -name '*.jpg' | swin predict - --format csv -o preds.csv": Case(
        needs=("holiday=jpgs", HUB), writes=("preds.csv",)),
    "swin predict 'shots/*.png' --features -o embeddings.npy": Case(
        needs=("shots=pngs", HUB), writes=("embeddings.npy", "embeddings.npy.paths.txt")),
    "swin predict photos/ --checkpoint runs/train/exp/best.safetensors --explain cams/": Case(
        needs=("photos=jpgs", RUN), writes=("cams/img0.png", "cams/img1.png"), says="heatmap: cams/img0.png"),
    # --- eval
    "swin eval --checkpoint runs/train/exp/best.safetensors --data ~/datasets/imagenette": Case(
        needs=(RUN, "~/datasets/imagenette=dataset"), says="acc1"),
    "swin eval --checkpoint runs/train/exp/best.safetensors --data DIR": Case(needs=(RUN, DIR), says="acc1"),
    "swin eval -c swinv2-b.safetensors -d DIR --size 384 --window 24 --format json": Case(
        needs=("swinv2-b.safetensors=v2-384-ft.safetensors", DIR), says='"acc1"'),
    "swin eval -c runs/train/exp/best.safetensors --data hf:./beans": Case(needs=(RUN, "beans=hf-dataset"), says="acc1"),
    "swin eval -c best.safetensors -d DIR --per-class": Case(needs=(BEST, DIR)),
    "swin eval -c best.safetensors -d DIR --format csv": Case(needs=(BEST, DIR), says="class,index,images,acc1,mistaken_for"),
    "swin eval -c best.safetensors -d DIR --remap": Case(needs=(BEST, "DIR=dataset-extra")),
    "swin eval -c best.safetensors -d DIR --plot confusion.png": Case(
        needs=(BEST, DIR), writes=("confusion.png",), says="mistaken for"),
    # --- train
    "swin train": Case(extra=STEP, writes=("runs/train/exp/best.safetensors",)),
    "swin train --model swin-t --data ~/datasets/imagenette --epochs 100": Case(
        needs=("~/datasets/imagenette=dataset",), extra=STEP, writes=("runs/train/exp/last.safetensors",)),
    "swin train --model swin-nano --data digits/ --size 64 --window 4 --epochs 25 --batch-size 64": Case(
        needs=("digits=dataset",), extra=STEP, says="recipe auto"),
    "swin train --model swin-t --data hf:./beans --epochs 30": Case(
        needs=("beans=hf-dataset",), extra=STEP, writes=("runs/train/exp/best.safetensors",)),
    "swin train --model swin-t --data 'wds:shards/train-{000000..000003}.tar::shards/val-000000.tar' --epochs 30": Case(
        needs=("shards=wds-shards",), extra=STEP, writes=("runs/train/exp/best.safetensors",)),
    "swin train --model swin-t --data 'wds:pipe:cat shards/train-{000000..000003}.tar' --epoch-size 16 --epochs 30": Case(
        needs=("shards=wds-shards",), extra=STEP, writes=("runs/train/exp/best.safetensors",)),
    "swin train --data digits/": Case(needs=("digits=dataset",), extra=STEP, says="recipe auto"),
    "swin train --config recipe.yaml --lr 1e-3": Case(
        needs=("recipe.yaml=recipe.yaml",), extra=STEP, writes=("runs/train/exp/last.safetensors",)),
    "swin train --resume runs/train/exp3": Case(needs=("runs/train/exp3=run",), says="results saved to runs/train/exp3"),
    "swin train --data DIR --log tensorboard": Case(
        needs=(DIR,), extra=STEP, writes=("runs/train/exp/tensorboard/epochs", "runs/train/exp/confusion.png")),
    "swin train --data DIR --log mlflow": Case(
        needs=(DIR,), extra=STEP, writes=("mlruns", "runs/train/exp/mlflow.json"), says="mlflow ui"),
    # --- finetune
    "swin finetune -c swinv2-b-192.safetensors --size 384 --window 24 --data DIR": Case(
        needs=("swinv2-b-192.safetensors=v2-192.safetensors", DIR), extra=STEP,
        writes=("runs/finetune/exp/best.safetensors",)),
    "swin finetune --checkpoint swinv2-b-192.safetensors --size 384 --window 24 --data DIR": Case(
        needs=("swinv2-b-192.safetensors=v2-192.safetensors", DIR), extra=STEP,
        writes=("runs/finetune/exp/best.safetensors",)),
    "swin finetune --checkpoint swinv2_base_window12_192.safetensors --size 384 --window 24 --data DIR": Case(
        needs=("swinv2_base_window12_192.safetensors=swinv2-b-192.safetensors", DIR), extra=STEP,
        writes=("runs/finetune/exp/best.safetensors",)),
    "swin finetune --checkpoint best.safetensors --data DIR --layer-decay 0.8": Case(
        needs=(BEST, DIR), extra=STEP, writes=("runs/finetune/exp/best.safetensors",)),
    "swin finetune -c best.safetensors --data digits/ --size 96": Case(
        needs=(BEST, "digits=dataset"), extra=STEP, says="recipe auto", writes=("runs/finetune/exp/best.safetensors",)),
    "swin finetune -c best.safetensors --data DIR --size 96 --window 6": Case(
        needs=(BEST, DIR), extra=STEP, writes=("runs/finetune/exp/best.safetensors",)),
    "swin finetune -c swin_tiny_patch4_window7_224.pth --data DIR --freeze": Case(
        needs=("swin_tiny_patch4_window7_224.pth=swin-t-official.pth", DIR), extra=STEP,
        writes=("runs/finetune/exp/best.safetensors",)),
    "swin finetune --model swinv2-b --data DIR --config recipe.yaml": Case(
        needs=(HUB, DIR, "recipe.yaml=recipe.yaml"), extra=STEP, writes=("runs/finetune/exp/best.safetensors",)),
    "swin finetune --model swinv2-t --data DIR --lora 8": Case(
        needs=(HUB, DIR), extra=STEP, says="LoRA r=8",
        writes=("runs/finetune/exp/best.safetensors", "runs/finetune/exp/adapter/adapter_model.safetensors")),
    # --- distributed (gloo on CPU)
    "torchrun --nproc-per-node 4 -m swincli train --model swinv2-t --data DIR": Case(
        needs=(DIR,), extra=DIST, replace=TWO, writes=("runs/train/exp/last.safetensors",)),
    "torchrun --nproc-per-node 4 -m swincli train --model swinv2-t --data DIR --fsdp": Case(
        needs=(DIR,), extra=DIST, replace=TWO, writes=("runs/train/exp/last.safetensors",)),
    "torchrun --nproc-per-node 4 -m swincli train --model swinv2-b --data DIR --fsdp": Case(
        needs=(DIR,), extra=DIST, replace=TWO, writes=("runs/train/exp/last.safetensors",)),
    "torchrun --nproc-per-node 4 -m swincli train --model swin-b --data DIR --zero": Case(
        needs=(DIR,), extra=DIST, replace=TWO, writes=("runs/train/exp/last.safetensors",)),
    "torchrun --nproc-per-node 4 -m swincli train --model swin-t --data "
    "'wds:shards/train-{000000..000003}.tar::shards/val-000000.tar'": Case(
        needs=("shards=wds-shards",), extra=DIST, replace=TWO, writes=("runs/train/exp/last.safetensors",)),
    # two "nodes" on this machine meet through c10d at 127.0.0.1, one process each, not 8; "..." is --data DIR
    "torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 -m swincli train ...": Case(
        needs=(DIR,), extra=DIST, nodes=2, writes=("runs/train/exp/last.safetensors",),
        replace=(("HOST", "127.0.0.1"), ("--nproc-per-node 8", "--nproc-per-node 1"), ("...", "--data DIR"))),
    # --- memory tricks at high resolution, run at a toy size
    "swin train --model swinv2-t --size 1024 --window 32 --memory-budget 8GiB --data DIR": Case(
        needs=(DIR,), extra=STEP, says="--memory-budget", writes=("runs/train/exp/last.safetensors",),
        replace=(("--model swinv2-t --size 1024 --window 32", "--model swinv2-nano --size 128 --window 8"),)),
    "swin profile --model swinv2-t --size 768 --window 24 -b 1 --mode train --memory --iters 1 --warmup 0": Case(
        says="Memory tricks", replace=(("--model swinv2-t --size 768 --window 24", "--model swinv2-nano --size 128 --window 8"),)),
    "torchrun --nproc-per-node 2 -m swincli profile --model swinv2-t --size 1024 --window 32 -b 1 --mode train --memory": Case(
        extra=FAST, says="ZeRO-1", replace=(("--model swinv2-t --size 1024 --window 32", "--model swinv2-nano --size 128 --window 8"),)),
    # --- profile
    "swin profile --model swin-t": Case(extra=FAST),
    "swin profile --model swin-t --compare timm": Case(extra=FAST + " -b 1", says="timm"),
    "swin profile --model swinv2-t --compare timm --mode both": Case(extra=FAST + " -b 1", says="train step"),
    "swin profile --model swin-t --attention --plot table5.png": Case(extra=FAST + " -b 1", writes=("table5.png",)),
    "swin profile --device cuda --model swin-b -b 64 --amp bf16 --compile": Case(
        extra=FAST, code=0 if CUDA else 1, says="" if CUDA else "no CUDA GPU"),
    "swin profile --model swin-b --size 384 --window 12 --iters 0 --format json": Case(says='"macs"'),
    # --- usage synopses (docs/cli.md, the first block of each command's page)
    "swin models list [PATTERN] [--v1|--v2] [--pretrained] [--format table|json|csv]": SYNOPSIS,
    "swin models info NAME [--size S|HxW] [--window W|HxW|w1,w2,w3,w4] [--format table|json]": SYNOPSIS,
    "swin env [--format table|json]": SYNOPSIS,
    "swin train [--model NAME] [--data DIR] [--config recipe.yaml] [OPTIONS]": SYNOPSIS,
    "swin finetune -c CHECKPOINT --data DIR [--size S] [--window W] [OPTIONS]": SYNOPSIS,
    "swin eval (-c CHECKPOINT | --model NAME) --data DIR [--per-class] [--plot FILE.png] [--format table|json|csv]": SYNOPSIS,
    "swin eval --checkpoint runs/train/exp/best.safetensors --data DIR [--size S] [--window W] [--per-class] [--remap] "
    "[--plot FILE.png] [--format json]": SYNOPSIS,
    "swin convert SRC -o OUT [--from auto|official|timm|hf|torchvision|swin] [--to swin|official|timm|hf|torchvision|onnx] "
    "[--model NAME] [--size S|HxW] [--window W|w1,w2,w3,w4] [--pretrained-window p1,p2,p3,p4] [--num-classes N] "
    "[--check/--no-check] [--force] [--format table|json]": SYNOPSIS,
    "swin predict INPUTS... [--model NAME] [--checkpoint PATH] [--runtime FORMAT] [--top-k 5] [--size S] [--window W] [--batch-size 32] "
    "[--workers N] [--device cpu|cuda|auto] [--amp auto|bf16|fp16|none] [--format table|json|csv] [--output FILE] "
    "[--features] [--explain DIR] [--explain-method gradcam|gradcam++|scorecam|eigencam] [--explain-layer 1-4] "
    "[--offline] [--revision REV]": SYNOPSIS,
    "swin export [SOURCE] --to onnx|openvino|pt2|tensorrt|executorch [--model NAME] [-o OUT] "
    "[--batch-size N | --dynamic-batch] [--size S] [--window W] [--half | --int8 --data DIR] [--data DIR] "
    "[--device cpu|cuda] [--force] [--offline] [--format table|json]": SYNOPSIS,
    "swin export --check [--format table|json]": SYNOPSIS,
    "swin export [SOURCE] --to onnx|openvino|pt2|tensorrt|executorch [-o OUT] [--batch-size N] [--half | --int8 --data DIR]": SYNOPSIS,
    "swin profile [--model NAME | --checkpoint CK] [--size S] [--window W] [-b 8] [--device cpu|cuda|auto] "
    "[--amp auto|bf16|fp16|none] [--compile] [--mode inference|train|both] [--warmup 5] [--iters 20] [--attention] "
    "[--compare timm] [--memory [--attn-chunk N] [--attn-chunk-stages 1,2|all]] [--runtimes LIST] [--format table|json] "
    "[--plot FILE]": SYNOPSIS,
    "swin profile --model swin-t --runtimes onnx,openvino": Case(
        extra=FAST + " -b 1", says="onnx (ONNX Runtime)",
        replace=(("--model swin-t", "--model swin-nano --size 64 --window 4"),)),
    "swin profile --checkpoint best.safetensors --runtimes all --amp bf16 --format json": Case(
        needs=(BEST,), extra=FAST + " -b 1", says='"runtimes"', replace=(("--runtimes all", "--runtimes onnx,openvino"),)),
}  # fmt: skip

EXAMPLES = all_examples()
SYNOPSES = [e for e in EXAMPLES if TABLE.get(e, Case()).synopsis]
RUNNABLE = [e for e in EXAMPLES if e not in SYNOPSES]


@pytest.fixture(scope="session")
def runner(request, tmp_path_factory):
    """The selected examples, each placed in its sandbox and started in the background, in order."""
    root = tmp_path_factory.mktemp("examples")
    assets, run = Assets(root / "assets"), Runner()
    chosen = [item.callspec.params["example"] for item in request.session.items
              if getattr(item, "function", None) is test_documented_example_runs]  # fmt: skip
    for example in sorted(chosen, key=lambda e: "torchrun" not in str(e)):  # one at a time: start them first
        case = TABLE.get(example)
        if case is None or case.synopsis or example in run.futures:
            continue
        box = root / f"example{len(run.futures)}"
        for need in case.needs:
            dest, asset = need.split("=")
            name, _, inner = asset.partition("/")
            assets.place(name, destination(box, dest), inner)
        run.submit(example, shell_line(example, case.extra, case.replace, case.nodes), box)
    yield run
    run.close()
    shutil.rmtree(root / "assets", ignore_errors=True)


def test_every_documented_example_is_in_the_table():
    missing = [f"{e!r} (shown in {', '.join(EXAMPLES[e])})" for e in EXAMPLES if e not in TABLE]
    assert not missing, f"not in TABLE in {__file__}, add them to the table: {missing}"


@pytest.mark.parametrize("line", SYNOPSES, ids=SYNOPSES)
def test_usage_synopsis_names_only_options_that_exist(line):
    check_synopsis(line)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # the first to finish waits for the torchrun examples, which start first
@pytest.mark.parametrize("example", RUNNABLE, ids=RUNNABLE)
def test_documented_example_runs(example, runner):
    where = ", ".join(EXAMPLES[example])
    case = TABLE.get(example)
    if case is None:
        pytest.fail(f"{example!r} (shown in {where}) is not in TABLE in {__file__}: add it to the table")
    proc, sandbox = runner.result(example)
    said = f"$ {proc.args}\n(shown in {where})\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    assert proc.returncode == case.code, said
    assert "Traceback" not in proc.stderr + proc.stdout and "unexpected" not in proc.stderr.lower(), said
    errors = [row for row in proc.stderr.splitlines() if row.startswith("error:")]
    assert len(errors) == (0 if case.code == 0 else 1), said
    assert case.says in proc.stdout + proc.stderr, said
    for name in case.writes:
        assert destination(sandbox, name).exists(), f"{name} was not written\n{said}"
    shutil.rmtree(sandbox)  # checkpoints of base models add up to gigabytes; a failed example's stays


def check_synopsis(line: str) -> None:
    """A usage line: its command exists, and so does every option it names."""
    command, path = _command(line.split())
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    named = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", line.split(" ".join(path), 1)[1]))
    assert named - known == set(), f"{line!r}: swin {' '.join(path)} has no {sorted(named - known)}"


def _command(words: list[str]):
    """The deepest command of ``swin ...`` that ``words`` name, and its path."""
    import typer

    from swincli.cli.app import build_app

    command, path = typer.main.get_command(build_app()), []
    for word in words[1:]:
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        command, path = sub, [*path, word]
    assert path, f"{' '.join(words[:2])!r} is not a swin command"
    return command, path


def test_table_lists_only_documented_examples():
    stale = sorted(set(TABLE) - set(EXAMPLES))
    assert not stale, f"no longer shown in --help or the docs, remove from TABLE: {stale}"


WALK = """
import sys, typer
from swincli.cli import main
from swincli.cli.app import build_app

def walk(command, path):
    yield path, bool(getattr(command, "commands", None))
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, path + [name])

for path, group in walk(typer.main.get_command(build_app()), []):
    print("RUN", "/".join(path) or "-", "group" if group else "command", main(path + ["--help"]))
print("TORCH", "torch" in sys.modules)
"""


def test_every_command_help_renders_with_examples_and_without_torch():
    """``--help`` of every command and group exits 0; every command shows examples; none imports torch."""
    proc = subprocess.run([sys.executable, "-c", WALK], capture_output=True, text=True, env=dict(os.environ, COLUMNS="160"))
    assert proc.returncode == 0, proc.stderr
    runs = [row.split() for row in proc.stdout.splitlines() if row.startswith("RUN ")]
    assert len(runs) >= 11 and all(code == "0" for *_, code in runs), runs
    sections = proc.stdout.split("Usage: ")
    assert len(sections) == len(runs) + 1
    for (_, name, kind, _), text in zip(runs, sections[1:]):
        assert kind == "group" or "Examples" in text, f"swin {name.replace('/', ' ')} --help shows no examples"
    assert "TORCH False" in proc.stdout
