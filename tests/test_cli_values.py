"""Every bad value has an answer: each numeric option of each command, ranges in config files, device
names, checkpoint metadata, windows larger than the map, and runs too big for the memory there is.

Every numeric option gets every value of ``BAD`` from its own conversion and domain check (the click
parameter's ``process_value``, as the parser calls it): a usage error naming the option, or the value
is accepted and the command itself must answer it (``--size 0`` is a string until the command reads
it; ``--workers 0`` is in the domain). Those, and a sample of the refused ones, run through ``main()``.

The runs through ``main()`` use ``SWIN_MEMORY_LIMIT=1`` (one byte): a value that is valid gets past
parsing and the settings checks and is then refused by the memory check before the first batch, so
no case starts real work.
"""

import errno
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import typer

from helpers import CLASS_NAMES
from swincli.cli import main
from swincli.cli.app import build_app

BAD = ("0", "-1", "nan", "inf", "1e12")
STRING_NUMERIC = {"size", "window", "pretrained_window"}
# (command, option, value) that are inside the domain and finish without work to refuse
FINISHES = {
    ("convert", "num_classes", "0"),  # a headless model (features only) is a valid conversion
    ("profile", "iters", "0"),  # counts parameters and MACs only
}
COMMANDS = typer.main.get_command(build_app())


@pytest.fixture(scope="module")
def assets(tiny_checkpoint, few_colours):
    """The tiny checkpoint (classes blue, green, red), a class folder and one of its images."""
    return tiny_checkpoint, few_colours, few_colours / "val" / CLASS_NAMES[0] / "0.png"


def _numeric_options():
    """(command path, parameter name, flag) for every int/float option and the string-typed numeric ones."""
    out = []

    def walk(cmd, path):
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, path + [name])
        for p in getattr(cmd, "params", []) if not hasattr(cmd, "commands") else []:
            annotation = getattr(getattr(p, "type_descriptor", None), "annotation", None)
            if getattr(p, "opts", None) and p.opts[0].startswith("--") and (
                annotation in (int, float) or p.name in STRING_NUMERIC
            ):
                out.append((tuple(path), p.name, p.opts[0]))

    walk(COMMANDS, [])
    return out


OPTIONS = _numeric_options()
IDS = [f"{' '.join(p)} {f}" for p, _, f in OPTIONS]


def _parameter(path: tuple, option: str):
    """The click command at ``path`` and its parameter ``option``."""
    command = COMMANDS
    for name in path:
        command = command.commands[name]
    return command, next(p for p in command.params if p.name == option)


def refusal(path: tuple, option: str, value: str) -> str | None:
    """The usage error the option's own conversion and domain check give ``value`` on the command line
    (the message ``main()`` prints after ``error:``), or None when the option accepts it."""
    command, param = _parameter(path, option)
    ctx = typer.Context(command, info_name=path[-1])
    try:
        param.process_value(ctx, value)  # what the parser runs: the type's conversion, then the callback
    except typer.BadParameter as exc:  # anything else is a crash, and fails the test with its traceback
        exc.param = exc.param or param
        return exc.format_message()
    return None


def names_value(message: str, value: str) -> bool:
    """Whether ``message`` quotes ``value`` as typed or as the number it was read as (``-1`` -> ``-1.0``)."""
    forms = {value, repr(float(value))}
    if math.isfinite(float(value)):
        forms.add(str(int(float(value))))
    return any(form in message for form in forms)


def _base(path: tuple, option: str, assets, out: Path) -> list[str]:
    """The least each command needs to get past parsing (minus the option under test)."""
    ckpt, data, img = (str(a) for a in assets)
    base = {
        ("train",): ["--data", data, "-o", str(out / "run"), "--max-steps", "1", "--workers", "0", "-q"],
        ("finetune",): ["-c", ckpt, "--data", data, "-o", str(out / "ft"), "--max-steps", "1", "--workers", "0", "-q"],
        ("predict",): [img, "-c", ckpt, "--workers", "0"],
        ("eval",): ["-c", ckpt, "-d", data, "--workers", "0"],
        ("profile",): ["-c", ckpt, "--iters", "1", "--warmup", "0"],
        ("convert",): [ckpt, "-o", str(out / "out.safetensors"), "--force", "--no-check"],
        ("export",): [ckpt, "--to", "onnx", "-o", str(out / "out.onnx")],
        ("models", "info"): ["swin-nano"],
    }[path]
    flag = "--" + option.replace("_", "-")
    while flag in base:  # the option under test replaces the base's own value
        i = base.index(flag)
        del base[i : i + 2]
    return [*path, *base]


def through_main(path, option, flag, value, assets, out: Path, capsys) -> tuple[int, str]:
    """``swin PATH ... FLAG VALUE`` in this process under a one-byte memory limit: (exit code, last error line)."""
    out.mkdir(parents=True, exist_ok=True)
    code = main([*_base(path, option, assets, out), flag, value])
    printed, err = capsys.readouterr()
    assert "unexpected" not in err and "Traceback" not in err, err
    assert not (out / "run").exists() and not (out / "ft").exists()
    if (path[-1], option, value) in FINISHES:
        assert code == 0, err
        return code, ""
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert code in (1, 2) and last.startswith("error: "), (code, printed, err)
    if code == 1:  # a domain error found once the model is known, or a valid value stopped by the memory check
        assert "needs about" in last or "too small" in last or "larger than" in last or "alternatives" in last or (
            "describe foreign weights" in last), last
    return code, last


def test_the_walk_finds_every_numeric_option():
    found = {(p, name) for p, name, _ in OPTIONS}
    assert {(("train",), "lr"), (("finetune",), "epochs"), (("predict",), "top_k"), (("eval",), "batch_size"),
            (("profile",), "iters"), (("convert",), "num_classes"), (("models", "info"), "size")} <= found  # fmt: skip
    assert len(OPTIONS) > 60


@pytest.mark.parametrize("path,option,flag", OPTIONS, ids=IDS)
def test_every_numeric_option_answers_every_bad_value(path, option, flag, assets, tmp_path, capsys, monkeypatch):
    """Each value of BAD: refused by the option itself (a usage error naming the option, and the value where
    the shared domain check words it: Typer's own conversion errors do not), or accepted there and answered
    by the command (run through ``main()``)."""
    accepted = []
    for value in BAD:
        message = refusal(path, option, value)
        if message is None:
            accepted.append(value)
            continue
        assert f"'{flag}'" in message and "Traceback" not in message, (value, message)
        if "must be" in message:  # the shared domain check's wording, which quotes the value
            assert names_value(message, value), (value, message)
    monkeypatch.setenv("SWIN_MEMORY_LIMIT", "1")
    monkeypatch.chdir(tmp_path)
    for value in accepted:
        through_main(path, option, flag, value, assets, tmp_path / f"v{BAD.index(value)}", capsys)


def _sample() -> list[tuple]:
    """One refused (option, value) per command, chosen with a fixed seed: the parser's own path, end to end."""
    rng, chosen = random.Random(18), {}
    cases = [(p, o, f, v) for p, o, f in OPTIONS for v in BAD]
    for path, option, flag, value in rng.sample(cases, len(cases)):
        if path not in chosen and refusal(path, option, value) is not None:
            chosen[path] = (path, option, flag, value)
    return sorted(chosen.values())


SAMPLE = _sample()


@pytest.mark.parametrize("path,option,flag,value", SAMPLE, ids=[f"{' '.join(p)} {f} {v}" for p, _, f, v in SAMPLE])
def test_a_refused_value_is_exit_2_and_one_line_through_the_cli(path, option, flag, value, assets, tmp_path, capsys,
                                                                monkeypatch):  # fmt: skip
    monkeypatch.setenv("SWIN_MEMORY_LIMIT", "1")
    monkeypatch.chdir(tmp_path)
    code, last = through_main(path, option, flag, value, assets, tmp_path, capsys)
    assert code == 2 and last.startswith("error: ") and f"'{flag}'" in last, last
    assert last[len("error: "):].startswith(refusal(path, option, value)), last


@pytest.mark.parametrize(
    "args,code,words",
    [
        (["train", "--size", "5"], 1, "use at least 32x32"),
        (["train", "--lr", "-1"], 2, "'--lr': must be a finite number in (0, 10], got -1.0"),
        (["train", "--lr", "nan"], 2, "got nan"),
        (["train", "--workers", "-1"], 2, "'--workers'"),
        (["train", "--device", "tpu"], 2, "unknown device 'tpu'"),
        (["train", "--amp", "fp8"], 2, "'--amp': must be auto, bf16, fp16 or none, got 'fp8'"),
        (["predict", "x.png", "-b", "0"], 2, "'--batch-size'"),
        (["predict", "x.png", "-k", "-1"], 2, "'--top-k'"),
        (["predict", "x.png", "-j", "-1"], 2, "'--workers'"),
        (["predict", "x.png", "--amp", "fp8"], 2, "'--amp': must be auto, bf16, fp16 or none, got 'fp8'"),
        (["eval", "-c", "x", "-d", "y", "--format", "xml"], 2, "'--format': must be table, json or csv, got 'xml'"),
        (["env", "--format", "csv"], 2, "--format csv is not available here (hint: choose table or json)"),
        (["eval", "-c", "x", "-d", "y", "-b", "0"], 2, "'--batch-size'"),
        (["profile", "-b", "0"], 2, "'--batch-size'"),
        (["profile", "--iters", "-1"], 2, "'--iters'"),
        (["models", "info", "swin-t", "--size", "100000"], 2, "larger than 1536"),
        (["train", "--batch-size", str(10**9)], 2, "'--batch-size'"),
        (["train", "--epochs", str(10**12)], 2, "'--epochs'"),
    ],
)
def test_reported_bad_values(args, code, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got = main(args)
    err = capsys.readouterr().err
    assert got == code and words in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("command", [["train"], ["predict", "x.png"], ["profile"]])
def test_cuda_without_a_gpu(command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--device", "cuda:3"]) == 1
    err = capsys.readouterr().err
    assert "no CUDA GPU is available" in err and "--device cpu" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "name,text,words",
    [
        ("recipe.yaml", "epochs: ten\n", "recipe.yaml: epochs must be an integer, got 'ten'"),
        ("recipe.yaml", "lr: nan\n", "recipe.yaml: lr must be a finite number in (0, 10], got nan"),
        ("recipe.yaml", "size: 100000\n", "recipe.yaml: size 100000 is larger than 1536"),
        ("recipe.yaml", "grad-checkpointing: 2\n", "grad_checkpointing must be true or false"),
        ("recipe.json", '{"batch_size": 0}', "recipe.json: batch_size must be an integer from 1 to 65536, got 0"),
        ("recipe.json", '{"workers": "two"}', "recipe.json: workers must be an integer, got 'two'"),
    ],
)
def test_config_file_values_are_checked_like_flags(name, text, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(text)
    assert main(["train", "--config", name]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err


def _corrupt(ckpt: Path, out: Path, section: str, key: str, value) -> Path:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(ckpt), "pt") as fh:
        meta = dict(fh.metadata())
    data = json.loads(meta[section])
    data[key] = value
    meta[section] = json.dumps(data)
    save_file(load_file(str(ckpt)), str(out), metadata=meta)
    return out


@pytest.mark.parametrize(
    "section,key,value,words",
    [
        ("config", "mlp_ratio", math.nan, "mlp_ratio must be a finite number"),
        ("config", "depths", [2, 2, 10**9, 2], "depths must be an integer from 1 to 64, got 1000000000"),
        ("config", "img_size", 100000, "img_size must be an integer from 1 to 1536, got 100000"),
        ("config", "num_heads", ["4"] * 4, "num_heads must be an integer, got '4'"),
        ("preprocessing", "crop_pct", 0, "crop_pct must be a finite number in (0, 1], got 0"),
        ("preprocessing", "crop_pct", -1, "crop_pct must be a finite number in (0, 1], got -1"),
        ("preprocessing", "std", [0.0, 0.2, 0.2], "std must be a finite number in (0, 1e+06], got 0.0"),
        ("preprocessing", "interpolation", "lanczos9", "interpolation must be one of bicubic, bilinear, nearest"),
    ],
)
def test_checkpoint_metadata_is_checked_field_by_field(section, key, value, words, assets, tmp_path, capsys):
    ckpt, _, img = assets
    bad = _corrupt(ckpt, tmp_path / "bad.safetensors", section, key, value)
    assert main(["predict", str(img), "-c", str(bad), "--workers", "0"]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and words in err and err.count("\n") == 1, err


def test_a_read_only_output_is_one_line(assets, tmp_path, capsys, monkeypatch):
    _, data, _ = assets
    out = tmp_path / "ro" / "run"
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    code = main(["train", "--data", str(data), "--size", "32", "--window", "2", "-b", "2", "--workers", "0",
                 "--max-steps", "1", "-o", str(out), "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and f"{out}: Read-only file system" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("number", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_any_refused_write_is_one_line_naming_the_path(number, capsys, monkeypatch):
    """main() maps the file-system refusals a user fixes by choosing another path, wherever they come from."""
    import swincli.api

    def refuse():
        raise OSError(number, "refused", "/mnt/ro/out.json")

    monkeypatch.setattr(swincli.api, "environment", refuse)
    code = main(["env"])
    err = capsys.readouterr().err
    assert code == 1 and "/mnt/ro/out.json" in err and "refused" in err and "unexpected" not in err, err
    assert err.count("\n") == 1


def test_window_larger_than_the_map_is_clipped_with_a_note(assets, capsys):
    ckpt, _, img = assets
    assert main(["predict", str(img), "-c", str(ckpt), "--window", "1000", "--workers", "0", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert "window larger than the feature map, clipped to it (stage 1 1000 -> 8" in err
    assert json.loads(out)["top_k"]


def test_window_1000_on_a_big_map_is_refused_before_it_starts(tmp_path, capsys, monkeypatch):
    """The reported case: swin-t at 224 px with --window 1000 attends over 56x56 tokens per window."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SWIN_MEMORY_LIMIT", "16G")
    code = main(["train", "--model", "swin-t", "--size", "224", "--window", "1000", "--max-steps", "1"])
    out, err = capsys.readouterr()
    last = err.strip().splitlines()[-1]
    assert code == 1 and "needs about" in last and "16.0 GiB is allowed by SWIN_MEMORY_LIMIT" in last, err
    assert "--batch-size" in last and "--grad-checkpointing" in last
    assert "clipped to it (stage 1 1000 -> 56" in out and not (tmp_path / "runs").exists()  # notes: stdout


MEASURE = """
import json, os, sys
import torch
import torch.nn.functional as F
from swincli.memory import estimate
from swincli.models.registry import create_model
torch.set_num_threads(1)
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
torch.randn(8, 8) @ torch.randn(8, 8)
base = rss()
train, window, batch = sys.argv[1] == "train", int(sys.argv[2]), int(sys.argv[3])
m = create_model("swin-nano", img_size=64, window_size=window, num_classes=10)
x = torch.randn(batch, 3, 64, 64)
if train:
    opt = torch.optim.AdamW(m.parameters())
    F.cross_entropy(m.train()(x), torch.zeros(batch, dtype=torch.long)).backward()
    opt.step()
else:
    with torch.inference_mode():
        m.eval()(x)
with open("/proc/self/status") as fh:  # VmHWM: this image's peak (ru_maxrss keeps the forking parent's)
    peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) * 1024 - base
print(json.dumps([peak, estimate(m.config, batch, train=train).total]))
"""


@pytest.mark.parametrize("mode,window,batch", [("train", 4, 16), ("infer", 1000, 16)])
def test_the_estimate_is_above_the_measured_peak_but_not_absurdly(mode, window, batch):
    proc = subprocess.run([sys.executable, "-c", MEASURE, mode, str(window), str(batch)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    peak, estimated = json.loads(proc.stdout)
    assert peak <= estimated <= 4 * peak, (peak, estimated)
